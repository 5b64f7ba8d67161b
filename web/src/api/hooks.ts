import { useQuery } from "@tanstack/react-query";
import { useAuth } from "../auth/AuthContext";
import { rememberIncidents } from "../lib/incidentKeys";
import { atLeast } from "../lib/incidents";
import type { Query } from "./client";
import type {
  HypothesesRead,
  HypothesisMetricsRead,
  IncidentMetricsRead,
  IncidentRead,
  IntegrationKeyRead,
  Page,
  TimelineEntryRead,
  UserRead,
} from "./types";

export function useIncidents(query: Query, enabled = true) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["incidents", query],
    queryFn: async ({ signal }) => {
      const page = await api.get<Page<IncidentRead>>("/api/v1/incidents", query, signal);
      rememberIncidents(page.items);
      return page;
    },
    enabled,
    placeholderData: (previous) => previous,
  });
}

export function useIncident(id: string) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["incident", id],
    queryFn: async ({ signal }) => {
      const incident = await api.get<IncidentRead>(`/api/v1/incidents/${encodeURIComponent(id)}`, undefined, signal);
      rememberIncidents([incident]);
      return incident;
    },
  });
}

export function useTimeline(id: string) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["timeline", id],
    queryFn: ({ signal }) =>
      api.get<{ items: TimelineEntryRead[] }>(
        `/api/v1/incidents/${encodeURIComponent(id)}/timeline`,
        undefined,
        signal,
      ),
  });
}

export function useHypotheses(id: string) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["hypotheses", id],
    queryFn: ({ signal }) =>
      api.get<HypothesesRead>(`/api/v1/incidents/${encodeURIComponent(id)}/hypotheses`, undefined, signal),
  });
}

export function useMetrics(days: number) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["metrics", days],
    queryFn: ({ signal }) => {
      const from = new Date(Date.now() - days * 86_400_000);
      from.setUTCHours(0, 0, 0, 0);
      return api.get<IncidentMetricsRead>("/api/v1/metrics/incidents", { created_from: from.toISOString() }, signal);
    },
  });
}

/** How well each engine's hypotheses matched the confirmed causes of incidents resolved in the window. */
export function useHypothesisMetrics(days: number) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["metrics", "hypotheses", days],
    queryFn: ({ signal }) => {
      const from = new Date(Date.now() - days * 86_400_000);
      from.setUTCHours(0, 0, 0, 0);
      return api.get<HypothesisMetricsRead>(
        "/api/v1/metrics/hypotheses",
        { resolved_from: from.toISOString() },
        signal,
      );
    },
  });
}

/** Every user of the organisation (admins and owners only: the API refuses others). */
export function useUsers() {
  const { api, role } = useAuth();
  return useQuery({
    queryKey: ["users"],
    queryFn: async ({ signal }) => {
      const all: UserRead[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<UserRead> = await api.get<Page<UserRead>>("/api/v1/users", { limit: 200, cursor }, signal);
        all.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor && all.length < 2000);
      return all;
    },
    enabled: atLeast(role, "admin"),
    staleTime: 60_000,
  });
}

export function useKeys() {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["keys"],
    queryFn: ({ signal }) => api.get<Page<IntegrationKeyRead>>("/api/v1/integration-keys", { limit: 200 }, signal),
  });
}

/** A person's display name: "You", a colleague's name (when the caller may list users), or a label. */
export function usePeople(): (id: string | null | undefined) => string {
  const { session } = useAuth();
  const users = useUsers();
  const names = new Map((users.data ?? []).map((u) => [u.id, u.full_name]));
  return (id) => {
    if (!id) return "Unassigned";
    if (id === session?.user.id) return "You";
    if (id === "ai_worker") return "AI worker";
    if (id === "system") return "System";
    if (id.startsWith("k_")) return "Integration key";
    return names.get(id) ?? `Teammate ${id.slice(-6)}`;
  };
}
