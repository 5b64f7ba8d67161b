// The public API's shapes, by the names the console uses. Every one comes from ./openapi.ts, which is
// generated from the gateway's OpenAPI document (docs/openapi.json) by `scripts/generate.sh`; a test
// fails when it is stale. Only the live feed's messages, which the document does not describe (a
// websocket), are written here.
import {
  channelKindValues,
  keyScopeValues,
  layerSpecTime_zoneValues,
  rotationTypeValues,
  weekdayValues,
  incidentStateValues,
  notifiedEventValues,
  roleValues,
  severityValues,
  type components,
} from "./openapi";

type Schemas = components["schemas"];

export type Severity = Schemas["Severity"];
export const SEVERITIES = severityValues;

export type IncidentState = Schemas["IncidentState"];
export const STATES = incidentStateValues;

export type Role = Schemas["Role"];
export const ROLES = roleValues;

export type KeyScope = Schemas["KeyScope"];
export const KEY_SCOPES = keyScopeValues;

export type UserView = Schemas["UserView"];
export type TenantView = Schemas["TenantView"];
export type SessionRead = Schemas["SessionRead"];
export type UserRead = Schemas["UserRead"];
export type MeRead = Schemas["MeRead"];

/** A cursor page of the API (`IncidentPage`, `UserPage`, ...). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type InviteRead = Schemas["InviteRead"];
export type IntegrationKeyRead = Schemas["IntegrationKeyRead"];
export type IntegrationKeySecretRead = Schemas["IntegrationKeySecretRead"];
export type IncidentRead = Schemas["IncidentRead"];
export type IncidentCreate = Schemas["IncidentCreate"];
export type HypothesisRead = Schemas["HypothesisRead"];
export type EvidenceItemRead = Schemas["EvidenceItemRead"];
export type HypothesesRead = Schemas["HypothesesRead"];
export type TimelineEntryRead = Schemas["TimelineEntryRead"];
export type PostmortemRead = Schemas["PostmortemRead"];
export type CitationRead = Schemas["CitationRead"];
export type FollowUpRead = Schemas["FollowUpRead"];
export type FollowUpList = Schemas["FollowUpList"];
export type FollowUpPage = Schemas["FollowUpPage"];
export type DurationStats = Schemas["DurationStats"];
export type DayCount = Schemas["DayCountRead"];
export type IncidentMetricsRead = Schemas["IncidentMetricsRead"];
export type HypothesisMetricsRead = Schemas["HypothesisMetricsRead"];
export type EngineAccuracyRead = Schemas["EngineAccuracyRead"];
export type ReliabilityRead = Schemas["ReliabilityRead"];

/** Every error answer: `{"error": {"code", "message", "details"}}`. */
export type ErrorBody = Schemas["ErrorResponse"];
export type ErrorCode = Schemas["ApiErrorCode"];

export type WebhookEvent = Schemas["NotifiedEvent"];
export const WEBHOOK_EVENTS = notifiedEventValues;
export type WebhookRead = Schemas["WebhookRead"];
export type WebhookSecretRead = Schemas["WebhookSecretRead"];
export type WebhookDeliveryRead = Schemas["WebhookDeliveryRead"];

/** One event on the live feed (`/api/v1/stream`); `data` is per type (see docs/events.md). */
export interface EventEnvelope {
  kind: "event";
  seq: number;
  id: string;
  type: string;
  version: number;
  occurred_at: string;
  tenant_id: string;
  aggregate_id: string;
  aggregate_version?: number | null;
  actor: string;
  correlation_id?: string | null;
  causation_id?: string | null;
  data: Record<string, unknown>;
}

export type SilenceRead = Schemas["SilenceRead"];
/** What a new silence is made of (the schema's own type also states "services or matchers"). */
export type SilenceCreate = Omit<SilenceRead, "id" | "state" | "next_change_at" | "created_by" | "created_at">;
export type JsonSourceRead = Schemas["JsonSourceRead"];
export type CorrelationRuleRead = Schemas["CorrelationRuleRead"];
export type CorrelationRuleCreate = Schemas["CorrelationRuleCreate"];
export type CorrelationPreviewRead = Schemas["CorrelationPreviewRead"];
export type JsonMapping = Schemas["JsonMapping"];
export type MappingPreviewRead = Schemas["MappingPreviewRead"];

// ---- on-call (/api/v1/schedules, /api/v1/escalation-policies, /api/v1/routing, ...)
export type ScheduleRead = Schemas["ScheduleRead"];
export type ScheduleCreate = Schemas["ScheduleCreate"];
export type LayerSpec = Schemas["LayerSpec"];
export type RestrictionSpec = Schemas["RestrictionSpec"];
export type RotationType = Schemas["RotationType"];
export const ROTATIONS = rotationTypeValues;
export type Weekday = Schemas["Weekday"];
export const WEEKDAYS = weekdayValues;
export type TimeZoneName = LayerSpec["time_zone"];
export const TIME_ZONES = layerSpecTime_zoneValues;
export type OverrideRead = Schemas["OverrideRead"];
export type OverrideCreate = Schemas["OverrideCreate"];
export type ShiftRead = Schemas["ShiftView"];
export type ShiftPage = Schemas["ShiftPage"];
export type OnCallRead = Schemas["OnCallRead"];
export type PolicyRead = Schemas["PolicyRead"];
export type PolicyCreate = Schemas["PolicyCreate"];
export type StepSpec = Schemas["StepSpec"];
export type TargetSpec = Schemas["TargetSpec"];
export type RuleSpec = Schemas["RuleSpec"];
export type PolicyWarning = Schemas["PolicyWarning"];
export type TeamRead = Schemas["TeamRead"];
export type TeamCreate = Schemas["TeamCreate"];
export type TeamUpdate = Schemas["TeamUpdate"];
export type TeamWarning = Schemas["TeamWarning"];
export type RoutingRead = Schemas["RoutingRead"];
export type RoutingUpdate = Schemas["RoutingUpdate"];
export type ContactMethodRead = Schemas["ContactMethodRead"];
export type ContactMethodSecretRead = Schemas["ContactMethodSecretRead"];
export type ChannelKind = Schemas["ChannelKind"];
export const CHANNEL_KINDS = channelKindValues;
export type CalendarFeedRead = Schemas["CalendarFeedRead"];
