// The public API's shapes, as gateway/schemas.py declares them (see /openapi.json).

export const SEVERITIES = ["critical", "high", "medium", "low"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const STATES = ["detected", "acknowledged", "investigating", "resolved"] as const;
export type IncidentState = (typeof STATES)[number];

export const ROLES = ["owner", "admin", "responder", "viewer"] as const;
export type Role = (typeof ROLES)[number];

export const KEY_SCOPES = ["alerts:write", "deploys:write"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export interface UserView {
  id: string;
  email: string;
  full_name: string;
  role: Role;
  tenant_id: string;
}

export interface TenantView {
  id: string;
  name: string;
  slug: string;
}

export interface SessionRead {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  refresh_token?: string | null;
  refresh_expires_in?: number | null;
  user: UserView;
  tenant: TenantView;
}

export interface UserRead {
  id: string;
  email: string;
  full_name: string;
  role: Role;
  status: "invited" | "active" | "deactivated";
  created_at: string;
}

export interface MeRead {
  user: UserRead;
  role: Role;
  tenant: TenantView;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface InviteRead {
  user: UserRead;
  invite_token: string;
  invite_expires_at: string;
}

export interface IntegrationKeyRead {
  id: string;
  name: string;
  scopes: KeyScope[];
  created_by: string;
  created_at: string;
  revoked_at?: string | null;
}

export interface IntegrationKeySecretRead extends IntegrationKeyRead {
  key: string;
}

export interface IncidentRead {
  id: string;
  key: string;
  number: number;
  title: string;
  description: string;
  service_name: string;
  severity: Severity;
  state: IncidentState;
  version: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  acknowledged_at?: string | null;
  resolved_at?: string | null;
  assignee_id?: string | null;
  root_cause?: string | null;
  related_incident_id?: string | null;
}

export interface IncidentCreate {
  title: string;
  description: string;
  service_name: string;
  severity: Severity;
}

export interface HypothesisRead {
  rank: number;
  claim: string;
  description: string;
  confidence: number;
  evidence: string[];
  engine: string;
  /** Responders' verdicts on this hypothesis of this generation. */
  feedback?: { confirmed: number; rejected: number };
}

export interface EvidenceItemRead {
  kind: string;
  summary: string;
  source: string;
  time?: string | null;
  link?: string | null;
}

export interface HypothesesRead {
  status: "pending" | "ready";
  engine?: string | null;
  generation?: number | null;
  trigger?: string | null;
  fallback_reason?: string | null;
  generated_at?: string | null;
  items: HypothesisRead[];
  evidence?: EvidenceItemRead[];
}

export interface TimelineEntryRead {
  id: string;
  seq: number;
  kind: string;
  actor: string;
  at: string;
  data: Record<string, unknown>;
}

export interface DurationStats {
  count: number;
  mean_seconds: number | null;
  p50_seconds: number | null;
  p90_seconds: number | null;
}

export interface DayCount {
  day: string;
  count: number;
}

export interface IncidentMetricsRead {
  created_from: string;
  created_to: string;
  total: number;
  by_state: Record<string, number>;
  by_severity: Record<string, number>;
  time_to_acknowledge: DurationStats;
  time_to_resolve: DurationStats;
  // Added for the console: incidents open now (whatever their age) and incidents created per day.
  open?: { total: number; by_state: Record<string, number>; by_severity: Record<string, number> };
  created_per_day?: DayCount[];
}

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

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export const WEBHOOK_EVENTS = ["incident.created", "incident.state_changed", "hypothesis.generated"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookRead {
  id: string;
  kind: "slack" | "generic";
  name: string;
  url: string;
  event_types: WebhookEvent[];
  enabled: boolean;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface WebhookSecretRead extends WebhookRead {
  secret: string | null;
}

export interface WebhookDeliveryRead {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  incident_id: string | null;
  status: "pending" | "succeeded" | "failed";
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
}
