import { Link } from "react-router";
import { useLive } from "../live/LiveContext";
import { describeEvent, incidentIdOf } from "../lib/events";
import { relativeTime } from "../lib/format";

export function Ticker({ limit = 12 }: { limit?: number }) {
  const { events, state } = useLive();
  const shown = events.slice(0, limit);
  return (
    <div className="ticker">
      {shown.length === 0 ? (
        <p className="muted ticker-empty">
          {state === "live"
            ? "Listening. Changes anyone in your organisation makes appear here as they happen."
            : "Connecting to the live feed…"}
        </p>
      ) : (
        <ol aria-label="Live events" aria-live="polite" data-testid="ticker">
          {shown.map((event) => {
            const id = incidentIdOf(event);
            const text = describeEvent(event);
            return (
              <li key={event.seq} className={`tick tick-${event.type.split(".")[0]}`}>
                <span className="tick-dot" aria-hidden="true" />
                <span className="tick-text">{id ? <Link to={`/incidents/${id}`}>{text}</Link> : text}</span>
                <time dateTime={event.occurred_at} className="muted">
                  {relativeTime(event.occurred_at)}
                </time>
              </li>
            );
          })}
        </ol>
      )}
    </div>
  );
}
