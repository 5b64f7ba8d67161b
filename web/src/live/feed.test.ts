import { describe, expect, it, vi } from "vitest";
import { LiveFeed, type FeedState } from "./feed";

class FakeSocket {
  static all: FakeSocket[] = [];
  sent: string[] = [];
  closed: { code?: number } | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close(code?: number) {
    this.closed = { code };
  }
  // what the server does
  open() {
    this.onopen?.();
  }
  message(payload: object) {
    this.onmessage?.({ data: JSON.stringify(payload) });
  }
  serverClose(code: number) {
    this.onclose?.({ code });
  }
}

function setup(reauthenticate = vi.fn(async () => true)) {
  FakeSocket.all = [];
  let token = "t1";
  const timers: (() => void)[] = [];
  const feed = new LiveFeed({
    url: "ws://host/api/v1/stream",
    getToken: async () => token,
    reauthenticate,
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    setTimer: (fn) => timers.push(fn),
    clearTimer: () => undefined,
  });
  const states: FeedState[] = [];
  const events: number[] = [];
  feed.onState((s) => states.push(s));
  feed.onEvent((e) => events.push(e.seq));
  return { feed, states, events, timers, setToken: (t: string) => (token = t), reauthenticate };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const event = (seq: number) => ({ kind: "event", seq, type: "incident.created", data: {}, aggregate_id: "a" });

describe("LiveFeed", () => {
  it("authenticates with a first message, goes live on ready and keeps the last sequence", async () => {
    const { feed, states, events } = setup();
    feed.start();
    await tick();
    const ws = FakeSocket.all[0];
    expect(ws.url).toBe("ws://host/api/v1/stream");
    ws.open();
    expect(JSON.parse(ws.sent[0])).toEqual({ type: "auth", token: "t1" });
    ws.message({ kind: "ready", since: null, live_from: 41 });
    expect(feed.state).toBe("live");
    expect(feed.lastSeq).toBe(41);
    ws.message(event(42));
    ws.message(event(42)); // a duplicate is dropped
    ws.message(event(45));
    expect(events).toEqual([42, 45]);
    expect(feed.lastSeq).toBe(45);
    expect(states).toEqual(["connecting", "live"]);
  });

  it("reconnects at once with since= after a 4408 (too slow)", async () => {
    const { feed } = setup();
    feed.start();
    await tick();
    FakeSocket.all[0].open();
    FakeSocket.all[0].message({ kind: "ready", since: null, live_from: 7 });
    FakeSocket.all[0].message(event(9));
    FakeSocket.all[0].serverClose(4408);
    await tick();
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.all[1].url).toBe("ws://host/api/v1/stream?since=9");
    expect(feed.state).toBe("reconnecting");
    FakeSocket.all[1].open();
    FakeSocket.all[1].message({ kind: "ready", since: 9, live_from: 12 });
    expect(feed.state).toBe("live");
    expect(feed.lastSeq).toBe(9); // the replay brings 10..12
  });

  it("re-authenticates on 4401 and resumes with the renewed token", async () => {
    const reauthenticate = vi.fn(async () => true);
    const { feed, setToken } = setup(reauthenticate);
    feed.start();
    await tick();
    FakeSocket.all[0].open();
    FakeSocket.all[0].message({ kind: "ready", since: null, live_from: 3 });
    setToken("t2");
    FakeSocket.all[0].serverClose(4401);
    await tick();
    await tick();
    expect(reauthenticate).toHaveBeenCalledWith("t1");
    const next = FakeSocket.all[1];
    expect(next.url).toBe("ws://host/api/v1/stream?since=3");
    next.open();
    expect(JSON.parse(next.sent[0]).token).toBe("t2");
  });

  it("stops as unauthorized when the session cannot be renewed", async () => {
    const { feed } = setup(vi.fn(async () => false));
    feed.start();
    await tick();
    FakeSocket.all[0].serverClose(4401);
    await tick();
    await tick();
    expect(feed.state).toBe("unauthorized");
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("backs off after a dropped connection, then resumes from the last sequence", async () => {
    const { feed, timers } = setup();
    feed.start();
    await tick();
    FakeSocket.all[0].open();
    FakeSocket.all[0].message({ kind: "ready", since: null, live_from: 20 });
    FakeSocket.all[0].serverClose(1006);
    await tick();
    expect(feed.state).toBe("reconnecting");
    expect(FakeSocket.all).toHaveLength(1); // waiting for the back-off timer
    timers.shift()!();
    await tick();
    expect(FakeSocket.all[1].url).toBe("ws://host/api/v1/stream?since=20");
  });

  it("closes and stays closed when stopped", async () => {
    const { feed } = setup();
    feed.start();
    await tick();
    const ws = FakeSocket.all[0];
    feed.stop();
    expect(ws.closed).toEqual({ code: 1000 });
    expect(feed.state).toBe("idle");
    ws.serverClose(1006);
    await tick();
    expect(FakeSocket.all).toHaveLength(1);
  });
});
