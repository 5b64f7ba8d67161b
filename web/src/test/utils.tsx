import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router";
import { ApiClient } from "../api/client";
import { AuthProvider } from "../auth/AuthContext";
import { SessionStore } from "../auth/session";
import type { SessionRead } from "../api/types";

export const GRANT: SessionRead = {
  access_token: "access-1",
  token_type: "bearer",
  expires_in: 900,
  refresh_token: "rt_1",
  refresh_expires_in: 1209600,
  user: { id: "u_1", email: "john@acme.example", full_name: "John Doe", role: "owner", tenant_id: "t_1" },
  tenant: { id: "t_1", name: "Acme Corp", slug: "acme-corp" },
};

export interface FakeCall {
  method: string;
  url: string;
  body: unknown;
  auth: string | null;
}

export type Responder = (call: FakeCall) => { status: number; body?: unknown } | undefined;

/** A fetch that answers from `respond` and records every call. */
export function fakeFetch(respond: Responder) {
  const calls: FakeCall[] = [];
  const fn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const call: FakeCall = {
      method: init?.method ?? "GET",
      url: String(input),
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      auth: headers.Authorization ?? null,
    };
    calls.push(call);
    const answer = respond(call) ?? { status: 404, body: { error: { code: "not_found", message: "not found" } } };
    return new Response(answer.status === 204 ? null : JSON.stringify(answer.body ?? {}), {
      status: answer.status,
      headers: { "Content-Type": "application/json" },
    });
  }) as typeof fetch;
  return { fetch: fn, calls };
}

export function signedInClient(fetchImpl: typeof fetch, grant: SessionRead = GRANT): ApiClient {
  const store = new SessionStore(localStorage);
  store.set(grant);
  return new ApiClient(store, { fetch: fetchImpl, locks: null });
}

export function renderWithApp(ui: ReactElement, api: ApiClient, route = "/") {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queryClient}>
      <MemoryRouter initialEntries={[route]}>
        <AuthProvider api={api}>{ui}</AuthProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
