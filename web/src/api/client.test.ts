import { describe, expect, it } from "vitest";
import { SessionStore } from "../auth/session";
import { fakeFetch, GRANT } from "../test/utils";
import { ApiClient, ApiError, toQueryString } from "./client";

const REFRESHED = { ...GRANT, access_token: "access-2", refresh_token: "rt_2" };

function client(respond: Parameters<typeof fakeFetch>[0], now = () => Date.now()) {
  const { fetch, calls } = fakeFetch(respond);
  const session = new SessionStore(localStorage, now);
  session.set(GRANT);
  return { api: new ApiClient(session, { fetch, locks: null, now }), calls, session };
}

describe("ApiClient", () => {
  it("sends the bearer token and answers the JSON body", async () => {
    const { api, calls } = client(() => ({ status: 200, body: { items: [], next_cursor: null } }));
    expect(await api.get("/api/v1/incidents", { state: ["detected", "acknowledged"], limit: 5 })).toEqual({
      items: [],
      next_cursor: null,
    });
    expect(calls[0].url).toBe("/api/v1/incidents?state=detected%2Cacknowledged&limit=5");
    expect(calls[0].auth).toBe("Bearer access-1");
  });

  it("renews a refused access token once, silently, and repeats the request", async () => {
    const { api, calls, session } = client((call) => {
      if (call.url === "/api/v1/auth/refresh") return { status: 200, body: REFRESHED };
      return call.auth === "Bearer access-2" ? { status: 200, body: { ok: true } } : { status: 401, body: {} };
    });
    expect(await api.get("/api/v1/auth/me")).toEqual({ ok: true });
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/me", "/api/v1/auth/refresh", "/api/v1/auth/me"]);
    expect(calls[1].body).toEqual({ refresh_token: "rt_1" });
    expect(calls[1].auth).toBeNull();
    expect(session.get()?.refreshToken).toBe("rt_2");
  });

  it("spends the single-use refresh token once for every request refused at the same time", async () => {
    const { api, calls } = client((call) => {
      if (call.url === "/api/v1/auth/refresh") return { status: 200, body: REFRESHED };
      return call.auth === "Bearer access-2" ? { status: 200, body: { ok: true } } : { status: 401, body: {} };
    });
    await Promise.all([api.get("/a"), api.get("/b"), api.get("/c")]);
    expect(calls.filter((c) => c.url === "/api/v1/auth/refresh")).toHaveLength(1);
  });

  it("renews before sending when the access token is about to expire", async () => {
    let now = 1_000_000;
    const { api, calls } = client(
      (call) => (call.url === "/api/v1/auth/refresh" ? { status: 200, body: REFRESHED } : { status: 200, body: {} }),
      () => now,
    );
    now += 890_000; // 10 s left of 900
    await api.get("/api/v1/incidents");
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/refresh", "/api/v1/incidents"]);
    expect(calls[1].auth).toBe("Bearer access-2");
  });

  it("ends the session as expired when the refresh token is refused", async () => {
    const { api, session } = client((call) =>
      call.url === "/api/v1/auth/refresh"
        ? { status: 401, body: { error: { code: "unauthorized", message: "invalid refresh token" } } }
        : { status: 401, body: {} },
    );
    const ended: (string | null)[] = [];
    session.subscribe((_s, reason) => ended.push(reason));
    await expect(api.post("/api/v1/incidents", { title: "x" })).rejects.toMatchObject({
      status: 401,
      code: "session_expired",
    });
    expect(session.get()).toBeNull();
    expect(session.endReason).toBe("expired");
    expect(ended).toContain("expired");
    expect(localStorage.getItem("sre-copilot.session")).toBeNull();
  });

  it("keeps the session when the refresh cannot reach the server", async () => {
    const { fetch } = fakeFetch(() => ({ status: 401, body: {} }));
    const session = new SessionStore(localStorage);
    session.set(GRANT);
    let first = true;
    const flaky = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input) === "/api/v1/auth/refresh") throw new TypeError("Failed to fetch");
      if (first) {
        first = false;
        return fetch(input, init);
      }
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    const api = new ApiClient(session, { fetch: flaky, locks: null });
    await expect(api.get("/x")).rejects.toBeInstanceOf(ApiError);
    expect(session.get()?.accessToken).toBe("access-1");
    await expect(api.get("/x")).rejects.toMatchObject({ code: "network_error" });
  });

  it("turns the API's error body into an ApiError with field errors", async () => {
    const { api } = client(() => ({
      status: 422,
      body: {
        error: {
          code: "validation_error",
          message: "invalid request",
          details: [{ loc: ["body", "service_name"], msg: "String should match pattern" }],
        },
      },
    }));
    const error = await api.post("/api/v1/incidents", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).fieldErrors()).toEqual({ service_name: "String should match pattern" });
  });

  it("re-reads storage before refreshing, so a tab never spends a token another tab already used", async () => {
    const { api, calls, session } = client((call) =>
      call.auth === "Bearer access-2" ? { status: 200, body: { ok: true } } : { status: 401, body: {} },
    );
    // Another tab renewed the session meanwhile (same storage).
    const other = new SessionStore(localStorage);
    other.set(REFRESHED);
    expect(session.get()?.accessToken).toBe("access-1");
    expect(await api.get("/api/v1/auth/me")).toEqual({ ok: true });
    expect(calls.some((c) => c.url === "/api/v1/auth/refresh")).toBe(false);
  });
});

describe("toQueryString", () => {
  it("drops empty values and joins lists", () => {
    expect(toQueryString({ a: "", b: undefined, c: null, d: [], e: ["x", "y"], f: 0 })).toBe("?e=x%2Cy&f=0");
    expect(toQueryString({})).toBe("");
  });
});
