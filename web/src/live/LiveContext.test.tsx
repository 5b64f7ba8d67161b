import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { AuthProvider, useAuth } from "../auth/AuthContext";
import { SessionStore } from "../auth/session";
import { GRANT } from "../test/utils";
import { LiveProvider, useLive } from "./LiveContext";

class Socket {
  static last: Socket | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    Socket.last = this;
    setTimeout(() => this.onopen?.(), 0);
  }
  send() {}
  close() {}
  push(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

function Hypotheses() {
  const { api } = useAuth();
  const { state } = useLive();
  const query = useQuery({
    queryKey: ["hypotheses", "i-1"],
    queryFn: ({ signal }) => api.get<{ status: string }>("/api/v1/incidents/i-1/hypotheses", undefined, signal),
  });
  return (
    <p>
      {state} {query.data?.status ?? "loading"}
    </p>
  );
}

describe("LiveProvider", () => {
  it("reads again when an event arrives while the first load is still on its way", async () => {
    const answers: ((status: string) => void)[] = [];
    const fetch = ((_url: string, init?: RequestInit) =>
      new Promise<Response>((resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
        answers.push((status) => resolve(new Response(JSON.stringify({ status, items: [] }), { status: 200 })));
      })) as typeof globalThis.fetch;
    const session = new SessionStore(localStorage);
    session.set(GRANT);
    const api = new ApiClient(session, { fetch, locks: null });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <AuthProvider api={api}>
          <LiveProvider WebSocketImpl={Socket as unknown as typeof WebSocket}>
            <Hypotheses />
          </LiveProvider>
        </AuthProvider>
      </QueryClientProvider>,
    );
    await waitFor(() => expect(Socket.last).not.toBeNull());
    // /auth/me and the hypotheses are on their way; the feed connects.
    await waitFor(() => expect(answers.length).toBeGreaterThanOrEqual(2));
    Socket.last!.push({ kind: "ready", since: null, live_from: 5 });
    await screen.findByText(/live/);
    const before = answers.length;
    // The worker's answer lands on the feed while the first read (which saw "pending") is in flight.
    Socket.last!.push({
      kind: "event",
      seq: 6,
      type: "hypothesis.generated",
      aggregate_id: "i-1",
      data: { incident_id: "i-1" },
    });
    await waitFor(() => expect(answers.length).toBeGreaterThan(before));
    for (const answer of answers.splice(0)) answer("ready");
    expect(await screen.findByText("live ready")).toBeInTheDocument();
  });
});
