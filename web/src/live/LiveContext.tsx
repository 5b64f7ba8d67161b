import { useQueryClient, type Query, type QueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import type { EventEnvelope } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { staleKeys } from "../lib/events";
import { LiveFeed, type FeedState } from "./feed";

const TICKER_SIZE = 50;

interface LiveValue {
  state: FeedState;
  /** Newest first. */
  events: EventEnvelope[];
  lastSeq: number | null;
}

const LiveContext = createContext<LiveValue>({ state: "idle", events: [], lastSeq: null });

export function streamUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/api/v1/stream`;
}

/**
 * Reads again what an event changed. A first load still in flight may have read the read model just
 * before the event, and invalidating would only wait for it (TanStack Query does not restart a load
 * that has no data yet): cancel such loads, then invalidate, so they start again.
 */
export function refresh(queryClient: QueryClient, queryKey: unknown[]): Promise<void> {
  // `[]` is everything but the capabilities, which come from /openapi.json, not from events.
  const ours = (query: Query) => queryKey.length > 0 || query.queryKey[0] !== "capabilities";
  return queryClient
    .cancelQueries({
      queryKey,
      predicate: (query) => ours(query) && query.state.data === undefined && query.state.fetchStatus === "fetching",
    })
    .then(() => queryClient.invalidateQueries({ queryKey, predicate: ours }));
}

export function LiveProvider({ children, WebSocketImpl }: { children: ReactNode; WebSocketImpl?: typeof WebSocket }) {
  const { api, session } = useAuth();
  const queryClient = useQueryClient();
  const [state, setState] = useState<FeedState>("idle");
  const [events, setEvents] = useState<EventEnvelope[]>([]);
  const [lastSeq, setLastSeq] = useState<number | null>(null);
  const userId = session?.user.id;

  useEffect(() => {
    if (!userId) return;
    const feed = new LiveFeed({
      url: streamUrl(),
      getToken: () => api.token(),
      reauthenticate: async (stale) => {
        const renewed = await api.refresh(stale);
        if (!renewed && api.session.get()) throw new Error("the server could not be reached");
        return renewed;
      },
      WebSocketImpl,
    });
    const offState = feed.onState(setState);
    const offReady = feed.onReady(() => {
      setLastSeq(feed.lastSeq);
      // Whatever happened while we were away (or before the first connection) is read again.
      void refresh(queryClient, []);
    });
    const offEvent = feed.onEvent((event) => {
      setLastSeq(event.seq);
      setEvents((previous) => [event, ...previous].slice(0, TICKER_SIZE));
      for (const key of staleKeys(event)) refresh(queryClient, key);
    });
    const online = () => feed.nudge();
    window.addEventListener("online", online);
    feed.start();
    return () => {
      window.removeEventListener("online", online);
      offState();
      offReady();
      offEvent();
      feed.stop();
      setEvents([]);
      setState("idle");
    };
  }, [api, userId, queryClient, WebSocketImpl]);

  return <LiveContext.Provider value={{ state, events, lastSeq }}>{children}</LiveContext.Provider>;
}

export function useLive(): LiveValue {
  return useContext(LiveContext);
}
