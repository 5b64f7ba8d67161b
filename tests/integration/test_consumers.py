"""Consumers are idempotent under redelivery. (What a poison message does: the AI worker dead-letters
it and moves on; the gateway's projector stops at it until an operator skips it, which
tests/integration/test_projector_stalls.py checks on a platform of its own, since a stopped
projector would hold up every other test.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker import db as ai_db
from contracts.envelope import EventEnvelope
from contracts.events import IncidentCreated, IncidentState, IncidentStateChanged, Severity
from gateway import read_models as rm
from gateway.projector import apply_event
from tests.integration.streams import messages_on


def created_event(tenant_id: str) -> EventEnvelope:
    incident_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    return EventEnvelope(
        type="incident.created",
        tenant_id=tenant_id,
        aggregate_id=incident_id,
        correlation_id="test",
        actor="u_test",
        data=IncidentCreated(
            incident_id=incident_id,
            key="INC-900",
            number=900,
            title="Database connection pool exhausted on orders-api",
            description="Requests time out; the pool is at its maximum of 50 connections.",
            service_name="orders-api",
            severity=Severity.CRITICAL,
            state=IncidentState.DETECTED,
            created_by="u_test",
            created_at=now,
        ).model_dump(mode="json"),
    )


async def eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_ai_worker_generates_once_under_redelivery(js: JetStreamContext, engine: AsyncEngine) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = created_event(tenant_id)
    subject = f"events.{tenant_id}.incident.created"
    # The same event delivered twice (a redelivery after a lost ack looks exactly like this).
    await js.publish(subject, event.to_bytes(), headers={"Nats-Msg-Id": f"{event.id}-a"})
    await js.publish(subject, event.to_bytes(), headers={"Nats-Msg-Id": f"{event.id}-b"})

    async def generated():
        return await messages_on(js, f"events.{tenant_id}.hypothesis.generated")

    assert await eventually(generated)
    await asyncio.sleep(1.0)  # give a second generation every chance to appear
    generated_events = await generated()
    assert len(generated_events) == 1
    payload = EventEnvelope.from_bytes(generated_events[0].data)
    assert payload.causation_id == str(event.id)
    assert len(payload.data["hypotheses"]) == 3
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(ai_db.generations)
            .where(ai_db.generations.c.tenant_id == tenant_id)
        )
    assert count == 1


async def test_projector_apply_is_idempotent(engine: AsyncEngine) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    created = created_event(tenant_id)
    incident_id = uuid.UUID(created.aggregate_id)
    moved = EventEnvelope(
        type="incident.state_changed",
        tenant_id=tenant_id,
        aggregate_id=created.aggregate_id,
        aggregate_version=2,
        correlation_id="test",
        actor="u_test",
        data=IncidentStateChanged(
            incident_id=created.aggregate_id,
            from_state=IncidentState.DETECTED,
            to_state=IncidentState.ACKNOWLEDGED,
            changed_at=datetime.now(UTC),
        ).model_dump(mode="json"),
    )
    from contracts.events import payload_of

    # In a transaction that is rolled back: these events are not in the stream, and the read models
    # must stay exactly what the stream explains (rebuild --verify checks that).
    async with engine.connect() as conn, conn.begin() as transaction:
        for _ in range(2):  # every event applied twice, as a redelivery would
            await apply_event(conn, 10_000_001, created, payload_of(created))
            await apply_event(conn, 10_000_002, moved, payload_of(moved))
            await apply_event(conn, 10_000_001, created, payload_of(created))
        row = await rm.get_incident(conn, tenant_id, incident_id)
        timeline = await rm.get_timeline(conn, incident_id)
        await transaction.rollback()
    assert row is not None
    assert row.state == "acknowledged" and row.version == 2 and row.acknowledged_at is not None
    assert [t.kind for t in timeline] == ["incident.created", "incident.state_changed"]
