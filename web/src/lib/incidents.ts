import type { IncidentState, Role, Severity } from "../api/types";

/** The lifecycle's allowed moves (incidents/domain.py): forward moves may skip; resolved reopens. */
export const ALLOWED_MOVES: Record<IncidentState, IncidentState[]> = {
  detected: ["acknowledged", "investigating", "resolved"],
  acknowledged: ["investigating", "resolved"],
  investigating: ["resolved"],
  resolved: ["investigating"],
};

export function allowedMoves(state: IncidentState): IncidentState[] {
  return ALLOWED_MOVES[state] ?? [];
}

/** The verb on a state button. */
export function moveLabel(from: IncidentState, to: IncidentState): string {
  if (from === "resolved" && to === "investigating") return "Reopen";
  return { detected: "Detected", acknowledged: "Acknowledge", investigating: "Investigate", resolved: "Resolve" }[to];
}

export const STATE_LABEL: Record<IncidentState, string> = {
  detected: "Detected",
  acknowledged: "Acknowledged",
  investigating: "Investigating",
  resolved: "Resolved",
};

export const SEVERITY_LABEL: Record<Severity, string> = {
  critical: "Critical",
  high: "High",
  medium: "Medium",
  low: "Low",
};

const RANK: Record<Role, number> = { viewer: 0, responder: 1, admin: 2, owner: 3 };

export function atLeast(role: Role | undefined | null, needed: Role): boolean {
  return role !== undefined && role !== null && RANK[role] >= RANK[needed];
}

/** Roles a caller may hand out: admins invite responders and viewers; owners anyone. */
export function assignableRoles(role: Role | undefined | null): Role[] {
  if (role === "owner") return ["owner", "admin", "responder", "viewer"];
  if (role === "admin") return ["responder", "viewer"];
  return [];
}

export const SERVICE_PATTERN = /^[A-Za-z0-9._:/-]+$/;

export interface IncidentDraft {
  title: string;
  description: string;
  service_name: string;
  severity: string;
}

/** Client-side checks mirroring the API's (the API checks again and its 422 is shown too). */
export function validateIncident(draft: IncidentDraft): Partial<Record<keyof IncidentDraft, string>> {
  const errors: Partial<Record<keyof IncidentDraft, string>> = {};
  const title = draft.title.trim();
  const service = draft.service_name.trim();
  if (!title) errors.title = "A title is required.";
  else if (title.length > 200) errors.title = "At most 200 characters.";
  if (draft.description.length > 10_000) errors.description = "At most 10,000 characters.";
  if (!service) errors.service_name = "A service is required.";
  else if (service.length > 100) errors.service_name = "At most 100 characters.";
  else if (!SERVICE_PATTERN.test(service)) errors.service_name = "Letters, digits and . _ : / - only (no spaces).";
  if (!["critical", "high", "medium", "low"].includes(draft.severity)) errors.severity = "Pick a severity.";
  return errors;
}

/** Only http(s) links are followed: evidence comes from outside (alerts, deploys, an LLM). */
export function safeLink(link: string | null | undefined): string | null {
  if (!link) return null;
  try {
    const url = new URL(link);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}
