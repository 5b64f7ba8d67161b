// Incident ids to their human keys (INC-12), learnt from every incident the console has read or
// seen created on the live feed, so the ticker can say "INC-12" for an event that carries only an id.
import type { IncidentRead } from "../api/types";

const keys = new Map<string, string>();

export function rememberIncidents(items: Pick<IncidentRead, "id" | "key">[]): void {
  for (const item of items) keys.set(item.id, item.key);
}

export function incidentKey(id: string | undefined | null): string | undefined {
  return id ? keys.get(id) : undefined;
}
