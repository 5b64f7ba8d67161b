// The signed-in session, kept in localStorage so a reload or a second tab stays signed in.
// Refresh tokens are single use and a reused one ends the whole login, so tabs must never refresh
// with the same token twice: the API client refreshes under a Web Lock and re-reads storage inside it.
import type { SessionRead, TenantView, UserView } from "../api/types";

export interface StoredSession {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch milliseconds when the access token stops working. */
  expiresAt: number;
  user: UserView;
  tenant: TenantView;
}

/** Why the session ended: the person signed out, or it could not be renewed. */
export type EndReason = "logout" | "expired";

type Listener = (session: StoredSession | null, reason: EndReason | null) => void;

const KEY = "sre-copilot.session";

export class SessionStore {
  private current: StoredSession | null;
  private listeners = new Set<Listener>();
  private lastEnd: EndReason | null = null;

  constructor(
    private storage: Storage | null = typeof localStorage === "undefined" ? null : localStorage,
    private now: () => number = Date.now,
  ) {
    this.current = this.read();
    if (typeof window !== "undefined") {
      // Another tab signed in, refreshed or signed out.
      window.addEventListener("storage", (e) => {
        if (e.key !== KEY) return;
        const next = this.read();
        const reason = next === null && this.current !== null ? "logout" : null;
        this.current = next;
        this.emit(reason);
      });
    }
  }

  get(): StoredSession | null {
    return this.current;
  }

  /** Reads storage again (another tab may have rotated the tokens) and returns the session. */
  reload(): StoredSession | null {
    const fresh = this.read();
    if (fresh?.accessToken !== this.current?.accessToken) {
      this.current = fresh;
      this.emit(null);
    }
    return this.current;
  }

  get endReason(): EndReason | null {
    return this.lastEnd;
  }

  set(grant: SessionRead): StoredSession {
    const session: StoredSession = {
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token ?? null,
      expiresAt: this.now() + grant.expires_in * 1000,
      user: grant.user,
      tenant: grant.tenant,
    };
    this.current = session;
    this.lastEnd = null;
    this.write(session);
    this.emit(null);
    return session;
  }

  end(reason: EndReason): void {
    this.current = null;
    this.lastEnd = reason;
    this.write(null);
    this.emit(reason);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(reason: EndReason | null): void {
    for (const listener of [...this.listeners]) listener(this.current, reason);
  }

  private read(): StoredSession | null {
    try {
      const raw = this.storage?.getItem(KEY);
      if (!raw) return null;
      const parsed = JSON.parse(raw) as StoredSession;
      return typeof parsed?.accessToken === "string" && parsed.user && parsed.tenant ? parsed : null;
    } catch {
      return null;
    }
  }

  private write(session: StoredSession | null): void {
    try {
      if (session) this.storage?.setItem(KEY, JSON.stringify(session));
      else this.storage?.removeItem(KEY);
    } catch {
      // Private mode or a full quota: the session still lives in memory for this tab.
    }
  }
}
