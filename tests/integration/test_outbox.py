"""The outbox: nothing committed is lost, nothing uncommitted is published, doubles are harmless."""

from __future__ import annotations

import uuid
from datetime import timedelta

from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from incidents import db
from runtime.bus import connect
from runtime.outbox import OutboxRelay, stage
from runtime.supervisor import Platform
from tests.integration.streams import messages_on


def probe_event(tenant_id: str) -> EventEnvelope:
    # A type no projector or worker acts on, so the probe touches nothing but the log.
    return EventEnvelope(
        type="probe.recorded",
        tenant_id=tenant_id,
        aggregate_id=str(uuid.uuid4()),
        correlation_id="test",
        data={},
    )


async def test_relay_publishes_what_a_crash_left_after_commit(
    engine: AsyncEngine, js: JetStreamContext
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)
    # The command committed, then its process died before the fast path could publish.
    async with engine.begin() as conn:
        await stage(conn, db.outbox, [event])
    assert await messages_on(js, f"events.{tenant_id}.>") == []

    relay = OutboxRelay(engine, db.outbox, js)
    assert await relay.relay_once(grace=timedelta(0)) >= 1
    stored = await messages_on(js, f"events.{tenant_id}.>")
    assert [EventEnvelope.from_bytes(m.data).id for m in stored] == [event.id]
    assert (stored[0].headers or {}).get("Nats-Msg-Id") == str(event.id)
    async with engine.connect() as conn:
        row = (await conn.execute(select(db.outbox).where(db.outbox.c.id == event.id))).one()
    assert row.published_at is not None and row.seq == stored[0].metadata.sequence.stream

    # A second relay pass finds nothing left to do.
    await relay.relay_once(grace=timedelta(0))
    assert len(await messages_on(js, f"events.{tenant_id}.>")) == 1


async def test_rolled_back_events_are_never_published(engine: AsyncEngine, js: JetStreamContext) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)

    class Boom(Exception):
        pass

    try:
        async with engine.begin() as conn:
            await stage(conn, db.outbox, [event])
            raise Boom
    except Boom:
        pass
    await OutboxRelay(engine, db.outbox, js).relay_once(grace=timedelta(0))
    assert await messages_on(js, f"events.{tenant_id}.>") == []


async def test_fast_path_and_relay_overlap_is_deduplicated(engine: AsyncEngine, js: JetStreamContext) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)
    async with engine.begin() as conn:
        await stage(conn, db.outbox, [event])
    relay = OutboxRelay(engine, db.outbox, js)
    first = await relay.publish_now([event])
    # The relay crashed after the PubAck but before marking the row: it is published again.
    from runtime.bus import publish_event

    second = await publish_event(js, event)
    assert first == second  # the broker recognised the id and stored nothing new
    assert len(await messages_on(js, f"events.{tenant_id}.>")) == 1


async def test_bus_outage_leaves_events_for_the_relay(
    engine: AsyncEngine, js: JetStreamContext, platform: Platform
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)
    assert platform.nats_url
    lost: Client = await connect(platform.nats_url, "tests-doomed", reconnect=False)
    await lost.close()  # the fast path's connection is gone
    async with engine.begin() as conn:
        await stage(conn, db.outbox, [event])
    assert await OutboxRelay(engine, db.outbox, lost.jetstream()).publish_now([event]) is None
    async with engine.connect() as conn:
        row = (await conn.execute(select(db.outbox).where(db.outbox.c.id == event.id))).one()
    assert row.published_at is None

    await OutboxRelay(engine, db.outbox, js).relay_once(grace=timedelta(0))
    assert len(await messages_on(js, f"events.{tenant_id}.>")) == 1
