"""The postmortem draft builder (pure), the postmortem's versions and follow-ups (incidents' domain),
and Claude's narrative through the real anthropic SDK against a fake API at the HTTP transport."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ai_worker import postmortem
from ai_worker.engines.claude_postmortem import SUBMIT, PostmortemWriter
from contracts.commands import LogEntry, PostmortemText
from contracts.events import (
    FollowUpSnapshot,
    IncidentSnapshot,
    IncidentState,
    PostmortemStatus,
    Severity,
)
from incidents import postmortems as pm
from tests.unit.test_ai_claude import FakeAnthropic, message, tool_use

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INCIDENT_ID = "00000000-0000-0000-0000-0000000000aa"
ALICE, BOB = "u_alice", "u_bob"
PEOPLE = {ALICE: "Alice Doe", BOB: "Bob Roe"}


def event_id(n: int) -> str:
    return f"00000000-0000-7000-8000-{n:012d}"


def entry(n: int, kind: str, minutes: float, actor: str, **data: Any) -> LogEntry:
    return LogEntry(
        event_id=event_id(n),
        seq=100 + n,
        kind=kind,
        actor=actor,
        at=T0 + timedelta(minutes=minutes),
        data=data,
    )


INCIDENT = IncidentSnapshot(
    id=INCIDENT_ID,
    key="INC-7",
    number=7,
    title="Checkout errors on payment-api",
    description="HTTP 500s",
    service_name="payment-api",
    severity=Severity.HIGH,
    state=IncidentState.RESOLVED,
    version=4,
    created_by=ALICE,
    created_at=T0,
    updated_at=T0 + timedelta(minutes=47),
    acknowledged_at=T0 + timedelta(minutes=3),
    resolved_at=T0 + timedelta(minutes=47),
    root_cause="Retry storm after v2.4.1",
)
ENTRIES = [
    entry(1, "incident.created", 0, ALICE, incident={"title": INCIDENT.title, "severity": "high"}),
    entry(
        2,
        "alert.attached",
        1,
        "system",
        fingerprint="f1",
        status="firing",
        alertname="HighErrorRate",
        labels={"service": "checkout"},
    ),
    entry(
        3,
        "hypothesis.generated",
        1.5,
        "system",
        engine="rules",
        generation=1,
        hypotheses=[{"rank": 1, "claim": "Bad deploy", "confidence": 0.61}],
    ),
    entry(4, "incident.state_changed", 3, BOB, from_state="detected", to_state="acknowledged", note="on it"),
    entry(
        5,
        "hypothesis.feedback_recorded",
        20,
        BOB,
        rank=1,
        generation=1,
        claim="Bad deploy",
        verdict="confirmed",
        comment="rollback fixed it",
    ),
    entry(
        6,
        "hypothesis.feedback_recorded",
        21,
        BOB,
        rank=2,
        generation=1,
        claim="DB pool",
        verdict="rejected",
        comment="",
    ),
    entry(
        7,
        "incident.state_changed",
        47,
        ALICE,
        from_state="acknowledged",
        to_state="resolved",
        note="fixed",
        root_cause="Retry storm after v2.4.1",
    ),
]
FOLLOW_UP = FollowUpSnapshot(
    id="f-1",
    incident_id=INCIDENT_ID,
    title="Canary stage",
    owner="payments",
    due_date=date(2026, 12, 24),
    version=1,
    created_by=ALICE,
    created_at=T0,
    updated_at=T0,
)


def test_the_draft_has_every_section_and_every_timeline_line_cites_its_event() -> None:
    draft = postmortem.draft(INCIDENT, list(reversed(ENTRIES)), PEOPLE, [FOLLOW_UP])
    text = draft.markdown
    assert draft.engine == "template" and draft.fallback_reason is None
    assert text.startswith("# Postmortem: INC-7 Checkout errors on payment-api\n")
    timeline = text.split("## Timeline\n\n")[1].split("\n\n")[0].splitlines()
    assert len(timeline) == len(ENTRIES)
    for line, e in zip(timeline, ENTRIES, strict=True):  # in stream order, whatever the input order
        assert line.endswith(f"[#{e.seq}](#event-{e.event_id})")
    assert "- Duration: 47 min" in text and "- Severity: high" in text
    assert "- Services: payment-api, checkout" in text
    assert f"HighErrorRate (firing) [#102](#event-{event_id(2)})" in text
    assert f"- Time to acknowledge: 3 min by Bob Roe [#104](#event-{event_id(4)})" in text
    assert f"- Time to resolve: 47 min by Alice Doe [#107](#event-{event_id(7)})" in text
    assert f"Retry storm after v2.4.1 [#107](#event-{event_id(7)})" in text.split("## Root cause")[1]
    rejected = text.split("### Hypotheses rejected\n\n")[1].split("\n\n")[0]
    assert rejected == f"- DB pool (rank 2, generation 1) by Bob Roe [#106](#event-{event_id(6)})"
    assert (
        "  - Bad deploy: “rollback fixed it”" in text.split("- What helped:")[1].split("- What did not:")[0]
    )
    assert "- [ ] Canary stage (owner payments, due 2026-12-24)" in text
    assert postmortem.unknown_citations(text, ENTRIES) == []
    assert {c.event_id for c in draft.citations} == {e.event_id for e in ENTRIES}


def test_the_same_log_always_gives_the_same_draft() -> None:
    assert postmortem.draft(INCIDENT, ENTRIES, PEOPLE) == postmortem.draft(
        INCIDENT, list(reversed(ENTRIES)), PEOPLE
    )


def test_without_a_recorded_root_cause_the_confirmed_hypothesis_stands() -> None:
    open_one = INCIDENT.model_copy(
        update={"root_cause": None, "resolved_at": None, "state": IncidentState.INVESTIGATING}
    )
    text = postmortem.draft(open_one, ENTRIES[:6], PEOPLE).markdown
    assert f"Bad deploy (a confirmed hypothesis) [#105](#event-{event_id(5)})" in text
    assert "- Duration: still open" in text and "- Time to resolve: not resolved" in text
    assert "- [ ] Add the follow-up actions" in text


def test_unknown_citations_and_wrong_sequences_are_found() -> None:
    text = (
        f"ok [#101](#event-{event_id(1)}), bad seq [#999](#event-{event_id(2)}), "
        f"unknown [#5](#event-{event_id(99)})"
    )
    assert postmortem.unknown_citations(text, ENTRIES) == [
        f"#999 event {event_id(2)}",
        f"#5 event {event_id(99)}",
    ]


def test_versions_edits_and_publishing() -> None:
    text = PostmortemText(markdown=f"# x [#101](#event-{event_id(1)})", citations=[], engine="template")
    first = pm.drafted(None, INCIDENT_ID, text, ALICE, T0).postmortem
    assert first.version == 1 and first.status is PostmortemStatus.DRAFT
    edit = pm.edited(first, 1, "# y", BOB, T0)
    assert edit is not None and edit.postmortem.version == 2 and edit.postmortem.citations == []
    with pytest.raises(pm.StaleVersion):
        pm.edited(edit.postmortem, 1, "# z", BOB, T0)
    assert pm.edited(edit.postmortem, 2, "# y", BOB, T0) is None
    published = pm.published(edit.postmortem, 2, ALICE, T0)
    assert published is not None and published.postmortem.status is PostmortemStatus.PUBLISHED
    assert published.published_version == 3 and pm.published(published.postmortem, None, ALICE, T0) is None
    redraft = pm.drafted(published.postmortem, INCIDENT_ID, text, ALICE, T0).postmortem
    assert (
        redraft.version == 4 and redraft.status is PostmortemStatus.DRAFT and redraft.published_version == 3
    )
    envelope = pm.envelope(published, tenant_id="t_1", actor=ALICE, correlation_id="c")
    assert envelope.type == "postmortem.published" and envelope.aggregate_version == 3


def test_follow_up_changes() -> None:
    added = pm.new_follow_up(incident_id=INCIDENT_ID, title="t", owner=None, due_date=None, by=ALICE, now=T0)
    done = pm.changed_follow_up(added.follow_up, {"done": True, "title": "t"}, T0 + timedelta(hours=1))
    assert done is not None and set(done.changes) == {"done"}
    assert done.follow_up.done_at == T0 + timedelta(hours=1) and done.follow_up.version == 2
    reopened = pm.changed_follow_up(done.follow_up, {"done": False}, T0)
    assert reopened is not None and reopened.follow_up.done_at is None
    assert pm.changed_follow_up(added.follow_up, {"owner": None}, T0) is None


def narrative(summary: str, story: str) -> dict[str, Any]:
    return message(tool_use(SUBMIT, {"summary": summary, "narrative": story}))


async def test_claudes_narrative_with_checked_citations() -> None:
    cite = f"[#104](#event-{event_id(4)})"
    fake = FakeAnthropic(narrative(f"Bob acknowledged it in 3 minutes {cite}.", f"A retry storm. {cite}"))
    draft = await PostmortemWriter(fake.engine()).draft(INCIDENT, ENTRIES, PEOPLE, [])
    assert draft.engine == "claude" and draft.fallback_reason is None
    assert draft.markdown.split("## Summary\n\n")[1].startswith("Bob acknowledged it in 3 minutes")
    assert "## What happened\n\nA retry storm." in draft.markdown
    assert "## Timeline" in draft.markdown
    sent = fake.body(0)
    assert sent["tool_choice"] == {"type": "tool", "name": SUBMIT}
    assert f"[#107](#event-{event_id(7)})" in json.dumps(sent["messages"])


async def test_a_citation_of_an_unknown_event_falls_back_to_the_template_with_the_reason() -> None:
    invented = f"[#555](#event-{event_id(55)})"
    fake = FakeAnthropic(narrative(f"It began with a deploy {invented}.", "Then it ended."))
    draft = await PostmortemWriter(fake.engine()).draft(INCIDENT, ENTRIES, PEOPLE, [])
    assert draft.engine == "template"
    assert draft.fallback_reason == f"claude: cites events that are not in the log: #555 event {event_id(55)}"
    assert draft.markdown == postmortem.draft(INCIDENT, ENTRIES, PEOPLE).markdown
    assert "sk-ant" not in draft.model_dump_json()


async def test_an_api_error_falls_back_too() -> None:
    import httpx2

    fake = FakeAnthropic(
        httpx2.Response(
            400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
        )
    )
    draft = await PostmortemWriter(fake.engine()).draft(INCIDENT, ENTRIES, PEOPLE, [])
    assert draft.engine == "template" and draft.fallback_reason == "claude: HTTP 400 (BadRequestError)"
