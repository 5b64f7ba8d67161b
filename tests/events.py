"""Incident events as the incidents service makes them (through its own domain rules), for tests that
publish or fold events directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.envelope import EventEnvelope
from contracts.events import IncidentSnapshot, IncidentState, Severity
from incidents.domain import edit, incident_envelope, open_incident, transition


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
