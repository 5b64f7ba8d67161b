import { useLive } from "../live/LiveContext";

const TEXT = {
  idle: "Offline",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  unauthorized: "Signed out",
} as const;

export function ConnectionPill() {
  const { state } = useLive();
  return (
    <span
      className={`conn conn-${state}`}
      role="status"
      aria-live="polite"
      data-testid="connection"
      data-state={state}
      title={state === "live" ? "Receiving changes as they happen" : "Live updates paused; resuming automatically"}
    >
      <span className="dot" aria-hidden="true" />
      {TEXT[state]}
    </span>
  );
}
