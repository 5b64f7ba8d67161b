"""Incident events as the incidents service makes them (through its own domain rules), for tests that
publish or fold events directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from contracts.envelope import EventEnvelope
from contracts.events import DeployRecorded, IncidentSnapshot, IncidentState, Severity
from incidents.domain import ALLOWED_MOVES, edit, incident_envelope, open_incident, transition

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
R = IncidentState.RESOLVED


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created(
    tenant_id: str,
    incident_id: str | None = None,
    *,
    title: str = "Database connection pool exhausted on orders-api",
    description: str = "Requests time out; the pool is at its maximum of 50 connections.",
    service_name: str = "orders-api",
    severity: Severity = Severity.CRITICAL,
    number: int = 900,
    now: datetime | None = None,
    actor: str = "u_test",
    correlation_id: str = "test",
) -> EventEnvelope:
    data = open_incident(
        incident_id=incident_id or str(uuid.uuid4()),
        number=number,
        title=title,
        description=description,
        service_name=service_name,
        severity=severity,
        created_by=actor,
        now=now or datetime.now(UTC),
    )
    return incident_envelope(data, tenant_id=tenant_id, actor=actor, correlation_id=correlation_id)


def snapshot_of(event: EventEnvelope) -> IncidentSnapshot:
    return IncidentSnapshot.model_validate(event.data["incident"])


def moved(
    after: EventEnvelope,
    to: IncidentState,
    *,
    note: str = "",
    root_cause: str | None = None,
    now: datetime | None = None,
    actor: str = "u_test",
) -> EventEnvelope:
    """The move of the incident as `after` left it."""
    data = transition(snapshot_of(after), to, note=note, root_cause=root_cause, now=now or datetime.now(UTC))
    return incident_envelope(data, tenant_id=after.tenant_id, actor=actor, correlation_id="test")


def edited(
    after: EventEnvelope,
    changes: dict[str, str | None] | None = None,
    *,
    now: datetime | None = None,
    actor: str = "u_test",
    **fields: str | None,
) -> EventEnvelope:
    data = edit(snapshot_of(after), {**(changes or {}), **fields}, now or datetime.now(UTC))
    assert data is not None, "nothing changed"
    return incident_envelope(data, tenant_id=after.tenant_id, actor=actor, correlation_id="test")


@st.composite
def incident_history(draw: st.DrawFn, tenant: str) -> list[EventEnvelope]:
    """A creation and up to 12 changes allowed by the lifecycle, one minute apart."""
    events = [created(tenant, now=T0, number=draw(st.integers(1, 10_000)))]
    for minute in range(1, draw(st.integers(0, 12)) + 1):
        current = snapshot_of(events[-1])
        if draw(st.booleans()):
            to = draw(st.sampled_from(ALLOWED_MOVES[current.state]))
            note = draw(st.sampled_from(["", "looking", "fixed"]))
            cause = draw(st.sampled_from([None, "bad deploy"])) if to is R else None
            events.append(moved(events[-1], to, note=note, root_cause=cause, now=at(minute)))
        else:
            field = draw(st.sampled_from(["title", "severity", "assignee_id", "description", "service_name"]))
            value = {
                "title": draw(st.sampled_from(["A", "B", "C"])),
                "severity": draw(st.sampled_from([s.value for s in Severity])),
                "assignee_id": draw(st.sampled_from([None, "u_1", "u_2"])),
                "description": draw(st.sampled_from(["", "x", "y"])),
                "service_name": draw(st.sampled_from(["api", "db"])),
            }[field]
            try:
                events.append(edited(events[-1], {field: value}, now=at(minute)))
            except AssertionError:  # the edit changed nothing
                continue
    return events


def probe(tenant_id: str, correlation_id: str = "test") -> EventEnvelope:
    """An event every consumer reads and none acts on (a deploy of a service the fresh tenant has no
    incidents of): for tests of the log's plumbing. Its type is a real one: the projector stops at
    an event of a type it does not know."""
    deploy_id = str(uuid.uuid4())
    return EventEnvelope(
        type="deploy.recorded",
        tenant_id=tenant_id,
        aggregate_id=deploy_id,
        correlation_id=correlation_id,
        data=DeployRecorded(
            deploy_id=deploy_id,
            service_name="probe",
            version="1",
            environment="test",
            deployed_at=datetime.now(UTC),
        ).model_dump(mode="json"),
    )
