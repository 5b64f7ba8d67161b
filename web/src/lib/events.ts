import type { EventEnvelope } from "../api/types";
import { incidentKey } from "./incidentKeys";

function s(value: unknown): string {
  return typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
}

export function incidentIdOf(event: Pick<EventEnvelope, "aggregate_id" | "data">): string | undefined {
  const id = event.data?.incident_id;
  return typeof id === "string" ? id : undefined;
}

/** One line for the live ticker. */
export function describeEvent(event: EventEnvelope): string {
  const d = event.data ?? {};
  const id = incidentIdOf(event);
  // Incident events (version 2) carry the incident's snapshot as `data.incident`.
  const incident = (d.incident ?? d) as Record<string, unknown>;
  const key = s(incident.key) || incidentKey(id) || "An incident";
  switch (event.type) {
    case "incident.created":
      return `${key} opened (${s(incident.severity)}): ${s(incident.title)}`;
    case "incident.state_changed":
      return `${key} moved ${s(d.from_state)} → ${s(d.to_state)}`;
    case "incident.updated":
      return `${key} updated: ${Object.keys((d.changes as object) ?? {}).join(", ") || "fields"}`;
    case "incident.note_added":
      return `${key}: note added`;
    case "hypothesis.generated":
      return `${key}: ${Array.isArray(d.hypotheses) ? d.hypotheses.length : ""} hypotheses ready (generation ${s(d.generation) || 1})`;
    case "evidence.collected":
      return `${key}: ${Array.isArray(d.items) ? d.items.length : ""} pieces of evidence collected`;
    case "hypothesis.regeneration_requested":
      return `${key}: fresh hypotheses requested`;
    case "hypothesis.feedback_recorded":
      return `${key}: hypothesis #${s(d.rank)} marked ${s(d.verdict)}`;
    case "alert.attached":
      return `${key}: alert ${s(d.alertname)} ${s(d.status)}`;
    case "alert.correlated":
      return `${key}: alert ${s(d.alertname)} joined by rule “${s(d.rule_name)}”`;
    case "deploy.recorded":
      return `Deploy of ${s(d.service_name)} ${s(d.version)} to ${s(d.environment)}`;
    case "user.invited":
      return `${s(d.email) || "Someone"} invited as ${s(d.role)}`;
    case "user.activated":
      return `${s(d.full_name) || "A new member"} joined`;
    case "user.role_changed":
      return `A member's role changed from ${s(d.from_role)} to ${s(d.to_role)}`;
    case "user.deactivated":
      return `A member was deactivated`;
    case "user.reactivated":
      return `A member was reactivated`;
    case "integration_key.created":
      return `Integration key “${s(d.name)}” created`;
    case "integration_key.revoked":
      return `An integration key was revoked`;
    default:
      return event.type.replace(/[._]/g, " ");
  }
}

/** Query keys an event makes stale. */
export function staleKeys(event: EventEnvelope): unknown[][] {
  const id = incidentIdOf(event) ?? event.aggregate_id;
  const type = event.type;
  if (type.startsWith("incident.") || type === "alert.attached" || type === "alert.correlated") {
    return [["incidents"], ["incident", id], ["timeline", id], ["metrics"]];
  }
  if (type.startsWith("hypothesis.") || type === "evidence.collected") {
    return [
      ["hypotheses", id],
      ["timeline", id],
    ];
  }
  // On-call's escalation and page events are on the incident's timeline (`data.incident_id`).
  if (type.startsWith("escalation.") || type.startsWith("page.")) return [["timeline", id]];
  // Postmortem events carry `data.incident_id`; so do follow-ups (whose aggregate is the follow-up).
  if (type.startsWith("postmortem.")) return [["postmortem", id]];
  if (type.startsWith("follow_up."))
    return [
      ["follow-ups", id],
      ["follow-ups", "all"],
    ];
  if (type.startsWith("user.")) return [["users"], ["me"]];
  if (type.startsWith("integration_key.")) return [["keys"]];
  if (type.startsWith("webhook") || type.startsWith("integration.")) return [["webhooks"]];
  return [];
}
