import type { TimelineEntryRead } from "../api/types";
import { dateTime, relativeTime } from "../lib/format";

function s(value: unknown): string {
  return typeof value === "string" ? value : value === null || value === undefined ? "" : String(value);
}

export function describeEntry(
  entry: TimelineEntryRead,
  person: (id: string | null | undefined) => string,
): {
  title: string;
  body?: string;
} {
  const d = entry.data;
  switch (entry.kind) {
    case "incident.created": {
      // Since event version 2 the incident's fields travel as its snapshot, `data.incident`.
      const incident = (d.incident ?? d) as Record<string, unknown>;
      return { title: `Opened as ${s(incident.severity)} on ${s(incident.service_name)}` };
    }
    case "incident.state_changed":
      return {
        title: `${s(d.from_state)} → ${s(d.to_state)}`,
        body: [s(d.note), d.root_cause ? `Root cause: ${s(d.root_cause)}` : ""].filter(Boolean).join("\n") || undefined,
      };
    case "incident.updated": {
      const changes = (d.changes ?? {}) as Record<string, { old: string | null; new: string | null }>;
      const parts = Object.entries(changes).map(([field, change]) =>
        field === "assignee_id"
          ? `assignee ${person(change.old)} → ${person(change.new)}`
          : field === "description"
            ? "description edited"
            : `${field.replace(/_/g, " ")} ${change.old ?? "—"} → ${change.new ?? "—"}`,
      );
      return { title: `Updated: ${parts.join("; ") || "fields"}` };
    }
    case "incident.note_added":
      return { title: "Note", body: s(d.body) };
    case "hypothesis.generated":
      return {
        title: `Hypotheses generation ${s(d.generation) || 1} (${s(d.engine)})`,
        body: Array.isArray(d.hypotheses)
          ? (d.hypotheses as { rank: number; claim: string }[]).map((h) => `${h.rank}. ${h.claim}`).join("\n")
          : undefined,
      };
    case "alert.attached":
      return { title: `Alert ${s(d.alertname)} ${s(d.status)}` };
    case "alert.correlated":
      return { title: `Alert ${s(d.alertname)} correlated by rule “${s(d.rule_name)}”`, body: s(d.reason) };
    case "hypothesis.feedback_recorded":
      return { title: `Hypothesis #${s(d.rank)} marked ${s(d.verdict)}`, body: s(d.comment) || undefined };
    case "escalation.started":
      return { title: `Escalation started: ${s(d.policy_name)}` };
    case "escalation.step_reached": {
      const ids = Array.isArray(d.user_ids) ? (d.user_ids as string[]) : [];
      return {
        title: `Paged (step ${Number(d.step ?? 0) + 1}, round ${Number(d.round ?? 0) + 1}${d.last ? ", last step" : ""})`,
        body: ids.length ? ids.map(person).join(", ") : "Nobody to page",
      };
    }
    case "page.notified":
      return {
        title: `${person(s(d.user_id))} ${d.delivered ? "notified" : "not reached"} by ${s(d.channel)}`,
        body: d.delivered ? undefined : s(d.error) || undefined,
      };
    case "page.acknowledged":
      return { title: `${person(s(d.user_id))} acknowledged the page` };
    case "escalation.stopped":
      return { title: `Escalation stopped: ${s(d.reason)}` };
    default:
      return { title: entry.kind.replace(/[._]/g, " ") };
  }
}

export function Timeline({
  items,
  person,
}: {
  items: TimelineEntryRead[];
  person: (id: string | null | undefined) => string;
}) {
  if (!items.length) return <p className="muted">Nothing yet.</p>;
  return (
    <ol className="timeline" data-testid="timeline">
      {items.map((entry) => {
        const { title, body } = describeEntry(entry, person);
        return (
          <li key={entry.id} id={`event-${entry.id}`} className={`tl tl-${entry.kind.replace(/\./g, "-")}`}>
            <span className="tl-dot" aria-hidden="true" />
            <div className="tl-content">
              <div className="tl-title">{title}</div>
              {body ? <div className="tl-body">{body}</div> : null}
              <div className="tl-meta muted small">
                {person(entry.actor)} ·{" "}
                <time dateTime={entry.at} title={dateTime(entry.at)}>
                  {relativeTime(entry.at)}
                </time>
              </div>
            </div>
          </li>
        );
      })}
    </ol>
  );
}
