// The websocket live feed (/api/v1/stream): authenticates with a first {"type":"auth"} message (so
// the token never sits in a URL), remembers the last sequence seen and resumes from it with
// `?since=` after any drop, re-authenticates on 4401 and reconnects at once on 4408.
import type { EventEnvelope } from "../api/types";

export type FeedState = "idle" | "connecting" | "live" | "reconnecting" | "unauthorized";

export interface ReadyInfo {
  /** True when this connection resumed from a sequence (events replayed, nothing missed). */
  resumed: boolean;
  liveFrom: number;
}

export interface FeedOptions {
  /** ws(s)://host/api/v1/stream */
  url: string;
  /** A valid access token (renewed first if it is about to expire), or null when signed out. */
  getToken: () => Promise<string | null>;
  /** Renew the session after the server refused `stale`: false when it cannot be renewed (signed
   *  out), a rejection when the server could not be reached. */
  reauthenticate: (stale: string) => Promise<boolean>;
  WebSocketImpl?: typeof WebSocket;
  /** Delays before reconnect attempts 1, 2, 3... (milliseconds); the last repeats. */
  backoff?: number[];
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_TOO_SLOW = 4408;

type Handler<T> = (value: T) => void;

export class LiveFeed {
  state: FeedState = "idle";
  lastSeq: number | null = null;
  private ws: WebSocket | null = null;
  private stopped = true;
  private attempts = 0;
  private authFailures = 0;
  private timer: unknown = null;
  private eventHandlers = new Set<Handler<EventEnvelope>>();
  private stateHandlers = new Set<Handler<FeedState>>();
  private readyHandlers = new Set<Handler<ReadyInfo>>();

  constructor(private opts: FeedOptions) {}

  onEvent(fn: Handler<EventEnvelope>): () => void {
    this.eventHandlers.add(fn);
    return () => this.eventHandlers.delete(fn);
  }

  onState(fn: Handler<FeedState>): () => void {
    this.stateHandlers.add(fn);
    return () => this.stateHandlers.delete(fn);
  }

  onReady(fn: Handler<ReadyInfo>): () => void {
    this.readyHandlers.add(fn);
    return () => this.readyHandlers.delete(fn);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try {
        ws.close(1000, "bye");
      } catch {
        // already closed
      }
    }
    this.setState("idle");
  }

  /** Reconnect now rather than at the next back-off step (the browser came back online). */
  nudge(): void {
    if (!this.stopped && this.state === "reconnecting" && !this.ws) {
      this.cancelTimer();
      void this.connect();
    }
  }

  private setState(state: FeedState): void {
    if (state === this.state) return;
    this.state = state;
    for (const fn of [...this.stateHandlers]) fn(state);
  }

  private cancelTimer(): void {
    if (this.timer !== null) (this.opts.clearTimer ?? clearTimeout)(this.timer as never);
    this.timer = null;
  }

  private schedule(): void {
    const steps = this.opts.backoff ?? [500, 1000, 2000, 5000, 10000];
    const delay = steps[Math.min(this.attempts, steps.length - 1)];
    this.attempts += 1;
    this.setState("reconnecting");
    this.cancelTimer();
    this.timer = (this.opts.setTimer ?? setTimeout)(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    if (this.state !== "reconnecting") this.setState("connecting");
    let token: string | null;
    try {
      token = await this.opts.getToken();
    } catch {
      this.schedule();
      return;
    }
    if (this.stopped) return;
    if (!token) {
      this.setState("unauthorized");
      return;
    }
    const url = this.lastSeq === null ? this.opts.url : `${this.opts.url}?since=${this.lastSeq}`;
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(url);
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    const used = token;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: used }));
    ws.onmessage = (message: MessageEvent) => this.receive(message.data);
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      void this.closed(event.code, used);
    };
  }

  private receive(raw: unknown): void {
    let message: { kind?: string; seq?: number; live_from?: number; since?: number | null };
    try {
      message = JSON.parse(String(raw));
    } catch {
      return;
    }
    if (message.kind === "ready") {
      const resumed = message.since !== null && message.since !== undefined;
      if (this.lastSeq === null) this.lastSeq = message.live_from ?? 0;
      this.attempts = 0;
      this.authFailures = 0;
      this.setState("live");
      const info = { resumed, liveFrom: message.live_from ?? 0 };
      for (const fn of [...this.readyHandlers]) fn(info);
    } else if (message.kind === "event" && typeof message.seq === "number") {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) return;
      this.lastSeq = message.seq;
      for (const fn of [...this.eventHandlers]) fn(message as unknown as EventEnvelope);
    }
  }

  private async closed(code: number, used: string): Promise<void> {
    if (code === CLOSE_UNAUTHORIZED) {
      this.authFailures += 1;
      this.setState("reconnecting");
      // Twice in a row with a renewed token means the session itself is gone.
      let renewed: boolean;
      try {
        renewed = this.authFailures <= 2 && (await this.opts.reauthenticate(used));
      } catch {
        // The renewal itself could not reach the server: try again later, session intact.
        if (!this.stopped) this.schedule();
        return;
      }
      if (this.stopped) return;
      if (!renewed) {
        this.setState("unauthorized");
        return;
      }
      void this.connect();
    } else if (code === CLOSE_TOO_SLOW) {
      this.setState("reconnecting");
      void this.connect();
    } else {
      this.schedule();
    }
  }
}
