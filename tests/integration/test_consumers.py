"""Consumers are idempotent under redelivery. (What a poison message does: the AI worker dead-letters
it and moves on; the gateway's projector stops at it until an operator skips it, which
tests/integration/test_projector_stalls.py checks on a platform of its own, since a stopped
projector would hold up every other test.)"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from nats.js import JetStreamContext
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker import db as ai_db
from contracts.envelope import EventEnvelope
from contracts.events import IncidentState
from gateway.incidents import queries
from gateway.projection.projector import apply_event
from tests.conftest import INCIDENT, Tenant
from tests.events import created
from tests.events import moved as move
from tests.integration.streams import messages_on


def created_event(tenant_id: str) -> EventEnvelope:
    return created(tenant_id)


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
    created_ev = created_event(tenant_id)
    incident_id = uuid.UUID(created_ev.aggregate_id)
    moved = move(created_ev, IncidentState.ACKNOWLEDGED)
    from contracts.events import payload_of

    # In a transaction that is rolled back: these events are not in the stream, and the read models
    # must stay exactly what the stream explains (rebuild --verify checks that).
    async with engine.connect() as conn, conn.begin() as transaction:
        for _ in range(2):  # every event applied twice, as a redelivery would
            await apply_event(conn, 10_000_001, created_ev, payload_of(created_ev))
            await apply_event(conn, 10_000_002, moved, payload_of(moved))
            await apply_event(conn, 10_000_001, created_ev, payload_of(created_ev))
        row = await queries.get_incident(conn, tenant_id, incident_id)
        timeline = await queries.get_timeline(conn, tenant_id, incident_id)
        await transaction.rollback()
    assert row is not None
    assert row.state == "acknowledged" and row.version == 2 and row.acknowledged_at is not None
    assert [t.kind for t in timeline] == ["incident.created", "incident.state_changed"]


async def test_a_late_copy_of_a_users_activation_does_not_make_them_assignable_again(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, engine: AsyncEngine
) -> None:
    """The incidents directory used to guard by stream sequence, so a republished `user.activated`
    (a relay re-sending it after the broker's duplicate window: same event, new sequence) re-activated a
    user who had been deactivated since."""
    from tests.e2e.test_auth_users import member

    responder = await member(client, tenant, "responder")
    gone = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
    assert gone.status_code == 200, gone.text
    directory = text("SELECT active FROM incidents.directory WHERE user_id = :u")

    async def active() -> bool | None:
        async with engine.connect() as conn:
            return await conn.scalar(directory, {"u": responder.user_id})

    deadline = time.monotonic() + 15
    while await active() is not False:
        assert time.monotonic() < deadline, "the deactivation never reached the directory"
        await asyncio.sleep(0.1)
    [activation] = [
        m
        for m in await messages_on(js, f"events.{tenant.tenant_id}.user.activated")
        if EventEnvelope.from_bytes(m.data).data["user_id"] == responder.user_id
    ]
    late = await js.publish(
        activation.subject,
        activation.data,
        headers={"Nats-Msg-Id": f"{(activation.headers or {})['Nats-Msg-Id']}:late"},
    )
    marker = await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
    assert marker.status_code == 201
    # Until the directory's consumer is past the late copy.
    deadline = time.monotonic() + 15
    while True:
        info = await js.consumer_info("EVENTS", "incidents_directory")
        if info.delivered.stream_seq >= late.seq and not info.num_ack_pending:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert await active() is False
    assigned = await client.patch(
        f"/api/v1/incidents/{marker.json()['id']}",
        json={"assignee_id": responder.user_id},
        headers=tenant.auth,
    )
    assert assigned.status_code == 409, assigned.text


async def test_an_event_naming_another_tenants_incident_writes_nothing_into_it(engine: AsyncEngine) -> None:
    """Defence in depth (an `events import` could name any incident id): the incident row, its
    hypotheses and its timeline stay the owner's."""
    from contracts.events import Hypothesis, HypothesisGenerated, payload_of
    from gateway.projection.apply import apply_batch

    owner, intruder = f"t_{uuid.uuid4().hex}", f"t_{uuid.uuid4().hex}"
    mine = created(owner)
    incident_id = mine.aggregate_id
    forged_move = move(mine, IncidentState.RESOLVED).model_copy(update={"tenant_id": intruder})
    forged_hypotheses = EventEnvelope(
        type="hypothesis.generated",
        tenant_id=intruder,
        aggregate_id=incident_id,
        correlation_id="forged",
        data=HypothesisGenerated(
            incident_id=incident_id,
            engine="rules",
            generated_at=mine.occurred_at,
            hypotheses=[
                Hypothesis(
                    rank=1, claim="forged", description="", confidence=0.9, evidence=[], engine="rules"
                )
            ],
        ).model_dump(mode="json"),
    )
    async with engine.connect() as conn, conn.begin() as transaction:
        events = [mine, forged_move, forged_hypotheses]
        await apply_batch(conn, [(20_000_000 + n, e, payload_of(e)) for n, e in enumerate(events)])
        row = await queries.get_incident(conn, owner, uuid.UUID(incident_id))
        hypotheses = await queries.get_hypotheses(conn, owner, uuid.UUID(incident_id))
        timeline = await queries.get_timeline(conn, owner, uuid.UUID(incident_id))
        await transaction.rollback()
    assert row is not None and row.state == "detected" and row.tenant_id == owner
    assert hypotheses is None
    assert [t.kind for t in timeline] == ["incident.created"]
