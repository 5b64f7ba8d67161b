"""A postmortem draft from an incident's event log, as a deterministic template (pure: no I/O).

Every line that states something that happened cites the event it comes from as
`[#<seq>](#event-<event id>)`: the stream sequence a replay finds it at, and the id a reader can look
up in the timeline. `citations_in` reads them back, and `unknown_citations` checks a text (Claude's,
or an edited draft) against the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.commands import LogEntry, PostmortemText
from contracts.events import Citation, FollowUpSnapshot, IncidentSnapshot

ENGINE = "template"
CITATION = re.compile(r"\[#(\d+)\]\(#event-([0-9a-fA-F-]{36})\)")


def cite(entry: LogEntry) -> str:
    return f"[#{entry.seq}](#event-{entry.event_id})"


def citations_in(markdown: str) -> list[Citation]:
    """Each event the text cites, once, in the order first cited."""
    seen: dict[str, Citation] = {}
    for seq, event_id in CITATION.findall(markdown):
        seen.setdefault(event_id.lower(), Citation(event_id=event_id.lower(), seq=int(seq)))
    return list(seen.values())


def unknown_citations(markdown: str, entries: Iterable[LogEntry]) -> list[str]:
    """The citations that name no event of the log, or an event at another sequence."""
    known = {entry.event_id.lower(): entry.seq for entry in entries}
    return [f"#{c.seq} event {c.event_id}" for c in citations_in(markdown) if known.get(c.event_id) != c.seq]


def duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return " ".join(parts + ([f"{seconds} s"] if seconds or not parts else []))


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True)
class Facts:
    """What the template needs, found once in the log."""

    incident: IncidentSnapshot
    entries: Sequence[LogEntry]
    people: dict[str, str]
    follow_ups: Sequence[FollowUpSnapshot]

    def who(self, actor: str) -> str:
        return self.people.get(actor, "the system" if actor == "system" else actor)

    def of_kind(self, kind: str) -> list[LogEntry]:
        return [e for e in self.entries if e.kind == kind]

    def first_move(self) -> LogEntry | None:
        return next(
            (e for e in self.of_kind("incident.state_changed") if e.data.get("from_state") == "detected"),
            None,
        )

    def last_resolution(self) -> LogEntry | None:
        resolutions = [
            e for e in self.of_kind("incident.state_changed") if e.data.get("to_state") == "resolved"
        ]
        return resolutions[-1] if resolutions else None

    def verdicts(self, verdict: str) -> list[LogEntry]:
        return [e for e in self.of_kind("hypothesis.feedback_recorded") if e.data.get("verdict") == verdict]


def describe(entry: LogEntry, facts: Facts) -> str:
    """One timeline line for an event (without its time and citation)."""
    data, who = entry.data, facts.who(entry.actor)
    if entry.kind == "incident.created":
        snapshot = data.get("incident") or {}
        return f"Opened by {who}: {snapshot.get('title', '')} ({snapshot.get('severity', '?')})"
    if entry.kind == "incident.state_changed":
        line = f"{who} moved it from {data.get('from_state')} to {data.get('to_state')}"
        if data.get("note"):
            line += f": “{_one_line(data['note'])}”"
        if data.get("root_cause"):
            line += f" (root cause: {_one_line(data['root_cause'])})"
        return line
    if entry.kind == "incident.updated":
        changes = data.get("changes") or {}
        text = ", ".join(f"{field} {c.get('old')} → {c.get('new')}" for field, c in changes.items())
        return f"{who} changed {text}"
    if entry.kind == "incident.note_added":
        return f"{who} noted: “{_one_line(str(data.get('body', '')))}”"
    if entry.kind == "hypothesis.generated":
        hypotheses = data.get("hypotheses") or []
        top = hypotheses[0] if hypotheses else None
        first = f"; first: {top['claim']} ({round(100 * float(top['confidence']))} %)" if top else ""
        return f"Hypotheses (generation {data.get('generation', 1)}, {data.get('engine')}){first}"
    if entry.kind == "hypothesis.feedback_recorded":
        comment = f": “{_one_line(data['comment'])}”" if data.get("comment") else ""
        return f"{who} {data.get('verdict')} hypothesis {data.get('rank')} ({data.get('claim')}){comment}"
    if entry.kind == "alert.attached":
        return f"Alert {data.get('alertname')} {data.get('status')}"
    return entry.kind


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summary(facts: Facts) -> str:
    incident = facts.incident
    state = (
        f"resolved after {duration(incident.resolved_at - incident.created_at)}"
        if incident.resolved_at is not None
        else f"still {incident.state.value}"
    )
    cause = root_cause(facts)[0]
    line = (
        f"{incident.key} ({incident.severity.value}) on {incident.service_name}: {incident.title}. "
        f"Opened {_when(incident.created_at)}, {state}."
    )
    return line + (f" Root cause: {cause}" if cause else " The root cause is not recorded yet.")


def root_cause(facts: Facts) -> tuple[str | None, LogEntry | None]:
    """The root cause recorded at resolution, else the latest confirmed hypothesis, with its event."""
    resolution = facts.last_resolution()
    if resolution is not None and resolution.data.get("root_cause"):
        return _one_line(resolution.data["root_cause"], 2_000), resolution
    if facts.incident.root_cause:
        return facts.incident.root_cause, None
    confirmed = facts.verdicts("confirmed")
    if confirmed:
        return f"{confirmed[-1].data.get('claim')} (a confirmed hypothesis)", confirmed[-1]
    return None, None


def _impact(facts: Facts) -> list[str]:
    incident = facts.incident
    end = incident.resolved_at
    lines = [
        f"- Duration: {duration(end - incident.created_at)}" if end else "- Duration: still open",
        f"- Severity: {incident.severity.value}",
    ]
    services = [incident.service_name]
    alerts: dict[str, LogEntry] = {}
    for entry in facts.of_kind("alert.attached"):
        alerts[str(entry.data.get("fingerprint"))] = entry  # the latest status of each alert
        service = (entry.data.get("labels") or {}).get("service")
        if service and service not in services:
            services.append(service)
    lines.append("- Services: " + ", ".join(services))
    if alerts:
        lines.append("- Alerts:")
        lines += [
            f"  - {e.data.get('alertname')} ({e.data.get('status')}) {cite(e)}"
            for e in sorted(alerts.values(), key=lambda e: e.seq)
        ]
    else:
        lines.append("- Alerts: none attached")
    return lines


def _response(facts: Facts) -> list[str]:
    incident, lines = facts.incident, []
    first = facts.first_move()
    if incident.acknowledged_at is not None:
        took = duration(incident.acknowledged_at - incident.created_at)
        by = f" by {facts.who(first.actor)} {cite(first)}" if first else ""
        lines.append(f"- Time to acknowledge: {took}{by}")
    else:
        lines.append("- Time to acknowledge: not acknowledged")
    resolution = facts.last_resolution()
    if incident.resolved_at is not None:
        took = duration(incident.resolved_at - incident.created_at)
        by = f" by {facts.who(resolution.actor)} {cite(resolution)}" if resolution else ""
        lines.append(f"- Time to resolve: {took}{by}")
    else:
        lines.append("- Time to resolve: not resolved")
    acts: dict[str, list[str]] = {}
    for entry in facts.entries:
        if entry.actor == "system" or entry.actor not in facts.people:
            continue
        what = {
            "incident.created": "opened it",
            "incident.state_changed": f"moved it to {entry.data.get('to_state')}",
            "incident.updated": "edited it",
            "incident.note_added": "added a note",
            "hypothesis.feedback_recorded": f"{entry.data.get('verdict')} a hypothesis",
        }.get(entry.kind)
        if what:
            acts.setdefault(entry.actor, []).append(f"{what} {cite(entry)}")
    if acts:
        lines.append("- Who did what:")
        lines += [f"  - {facts.who(actor)}: " + "; ".join(done) for actor, done in acts.items()]
    return lines


def _root_cause_section(facts: Facts) -> list[str]:
    cause, source = root_cause(facts)
    lines = [f"{cause} {cite(source)}" if cause and source else (cause or "Not recorded yet.")]
    rejected = facts.verdicts("rejected")
    lines += ["", "### Hypotheses rejected", ""]
    lines += [
        f"- {e.data.get('claim')} (rank {e.data.get('rank')}, generation {e.data.get('generation')}) "
        f"by {facts.who(e.actor)} {cite(e)}"
        for e in rejected
    ] or ["- none"]
    return lines


def _lessons(facts: Facts) -> list[str]:
    def line(e: LogEntry) -> str:
        comment = f": “{_one_line(e.data['comment'])}”" if e.data.get("comment") else ""
        return f"  - {e.data.get('claim')}{comment} {cite(e)}"

    helped = [line(e) for e in facts.verdicts("confirmed")]
    not_helped = [line(e) for e in facts.verdicts("rejected")]
    return [
        "- What helped:",
        *(helped or ["  - no hypothesis was confirmed"]),
        "- What did not:",
        *(not_helped or ["  - no hypothesis was rejected"]),
    ]


def _follow_ups(facts: Facts) -> list[str]:
    lines = []
    for f in facts.follow_ups:
        extra = ", ".join(
            x for x in (f.owner and f"owner {f.owner}", f.due_date and f"due {f.due_date}") if x
        )
        lines.append(f"- [{'x' if f.done else ' '}] {f.title}" + (f" ({extra})" if extra else ""))
    return lines or ["- [ ] Add the follow-up actions on the incident (`POST .../follow-ups`)"]


def sections(facts: Facts, *, summary_text: str | None = None, narrative: str | None = None) -> str:
    incident = facts.incident
    timeline = [f"- {_when(e.at)} {describe(e, facts)} {cite(e)}" for e in facts.entries]
    parts = [
        f"# Postmortem: {incident.key} {incident.title}",
        "",
        "## Summary",
        "",
        summary_text or summary(facts),
        *(["", "## What happened", "", narrative] if narrative else []),
        "",
        "## Impact",
        "",
        *_impact(facts),
        "",
        "## Timeline",
        "",
        *(timeline or ["- (no events)"]),
        "",
        "## Detection and response",
        "",
        *_response(facts),
        "",
        "## Root cause",
        "",
        *_root_cause_section(facts),
        "",
        "## What helped and what did not",
        "",
        *_lessons(facts),
        "",
        "## Follow-up actions",
        "",
        *_follow_ups(facts),
    ]
    return "\n".join(parts) + "\n"


def draft(
    incident: IncidentSnapshot,
    entries: Sequence[LogEntry],
    people: dict[str, str] | None = None,
    follow_ups: Sequence[FollowUpSnapshot] = (),
    *,
    fallback_reason: str | None = None,
) -> PostmortemText:
    """The offline draft: the same log always gives the same text."""
    facts = Facts(incident, sorted(entries, key=lambda e: e.seq), people or {}, follow_ups)
    markdown = sections(facts)
    return PostmortemText(
        markdown=markdown, citations=citations_in(markdown), engine=ENGINE, fallback_reason=fallback_reason
    )
