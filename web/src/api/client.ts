// The one way the console talks to the gateway: JSON over fetch, the bearer token attached,
// a silent refresh on 401 (once, shared by every request in flight and coordinated across tabs),
// and errors as ApiError with the API's {"error": {code, message, details}}.
import type { StoredSession } from "../auth/session";
import { SessionStore } from "../auth/session";
import type { ErrorBody, SessionRead } from "./types";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** Field errors of a 422, by field name (the last element of each `loc`). */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    if (Array.isArray(this.details)) {
      for (const item of this.details as { loc?: unknown[]; msg?: string }[]) {
        const loc = Array.isArray(item?.loc) ? item.loc : [];
        const field = loc.length ? String(loc[loc.length - 1]) : "";
        if (field && item.msg && !out[field]) out[field] = item.msg;
      }
    }
    return out;
  }
}

export type Query = Record<string, string | number | boolean | string[] | null | undefined>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  /** Send the bearer token (and refresh it on 401). Off for login, register and refresh. */
  auth?: boolean;
  signal?: AbortSignal;
}

/** How long before its expiry an access token is renewed instead of used. */
const RENEW_MARGIN_MS = 30_000;

export function toQueryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) params.set(name, value.join(","));
    } else params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

interface LockLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export class ApiClient {
  private refreshing: Promise<boolean> | null = null;

  constructor(
    public session: SessionStore,
    private opts: {
      baseUrl?: string;
      fetch?: typeof fetch;
      locks?: LockLike | null;
      now?: () => number;
    } = {},
  ) {}

  private get fetchImpl(): typeof fetch {
    return this.opts.fetch ?? ((...args) => fetch(...args));
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, { query, signal });
  }

  post<T>(path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", path, { ...opts, body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path, {});
  }

  /** An access token good for at least a little while, renewed first if it is about to expire. */
  async token(): Promise<string | null> {
    const current = this.session.get();
    if (!current) return null;
    if (current.expiresAt - this.now > RENEW_MARGIN_MS) return current.accessToken;
    return (await this.refresh(current.accessToken)) ? (this.session.get()?.accessToken ?? null) : null;
  }

  /**
   * Renews the session with its refresh token. `stale` is the access token that failed: if another
   * request or tab has renewed it meanwhile, that renewal is used instead of spending the new
   * refresh token. Resolves false (and ends the session as expired) when the API refuses.
   */
  refresh(stale?: string | null): Promise<boolean> {
    if (!this.refreshing) {
      const run = () => this.doRefresh(stale ?? null);
      const locks =
        this.opts.locks !== undefined
          ? this.opts.locks
          : typeof navigator !== "undefined" && "locks" in navigator
            ? (navigator.locks as unknown as LockLike)
            : null;
      this.refreshing = (locks ? locks.request("sre-copilot-refresh", run) : run()).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(stale: string | null): Promise<boolean> {
    const current: StoredSession | null = this.session.reload();
    if (!current) return false;
    if (stale && current.accessToken !== stale && current.expiresAt - this.now > RENEW_MARGIN_MS) {
      return true; // someone else renewed it already
    }
    if (!current.refreshToken) {
      this.session.end("expired");
      return false;
    }
    let response: Response;
    try {
      response = await this.send("POST", "/api/v1/auth/refresh", {
        body: { refresh_token: current.refreshToken },
      });
    } catch {
      return false; // the network, not the session: keep it and let the caller report the outage
    }
    if (response.ok) {
      this.session.set((await response.json()) as SessionRead);
      return true;
    }
    if (response.status < 500 && response.status !== 429) this.session.end("expired");
    return false;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const auth = opts.auth !== false;
    let token = auth ? await this.token() : null;
    if (auth && !token) throw new ApiError(401, "session_expired", "Your session has expired. Sign in again.");
    let response = await this.sendOrThrow(method, path, opts, token);
    if (response.status === 401 && auth) {
      if (!(await this.refresh(token))) {
        throw new ApiError(401, "session_expired", "Your session has expired. Sign in again.");
      }
      token = this.session.get()?.accessToken ?? null;
      response = await this.sendOrThrow(method, path, opts, token);
      if (response.status === 401) {
        this.session.end("expired");
        throw new ApiError(401, "session_expired", "Your session has expired. Sign in again.");
      }
    }
    if (!response.ok) throw await errorOf(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async sendOrThrow(
    method: string,
    path: string,
    opts: RequestOptions,
    token: string | null,
  ): Promise<Response> {
    try {
      return await this.send(method, path, opts, token);
    } catch (error) {
      if ((error as Error)?.name === "AbortError") throw error;
      throw new ApiError(0, "network_error", "Cannot reach the SRE Copilot server. Check your connection.");
    }
  }

  private send(method: string, path: string, opts: RequestOptions, token: string | null = null): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    return this.fetchImpl(`${this.opts.baseUrl ?? ""}${path}${toQueryString(opts.query)}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: Partial<ErrorBody> | null = null;
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    body = null;
  }
  const err = body?.error;
  if (err && typeof err.message === "string") {
    return new ApiError(response.status, err.code ?? "error", err.message, err.details);
  }
  const retry = response.headers.get("Retry-After");
  const message =
    response.status === 429
      ? `Too many attempts. Try again${retry ? ` in ${retry} seconds` : " later"}.`
      : `The server answered ${response.status}.`;
  return new ApiError(response.status, "http_error", message);
}

/** The API's message for an error, or a plain one. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}
