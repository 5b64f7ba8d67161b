"""The outbox: nothing committed is lost, nothing uncommitted is published, doubles are harmless; the
relay holds no lock while it publishes, and published rows do not pile up."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import MetaData, Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from incidents import db
from runtime.bus import connect
from runtime.outbox import OutboxRelay, outbox_table, stage
from sre_copilot.supervisor import Platform
from tests.events import probe
from tests.integration.streams import messages_on


def probe_event(tenant_id: str) -> EventEnvelope:
    return probe(tenant_id)


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


# ---- claims: no lock held while publishing, a crashed relay's claim runs out, two relays at once


@pytest.fixture
async def scratch_outbox(engine: AsyncEngine) -> AsyncIterator[Table]:
    """An outbox of the test's own (same definition, a schema of its own), so that no service's
    relay takes its rows."""
    schema = f"outbox_test_{uuid.uuid4().hex[:10]}"
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield table
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


class GatedJs:
    """The real JetStream, but each publish waits at a gate the test opens."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js, self.entered, self.gate = js, asyncio.Event(), asyncio.Event()

    async def publish(self, subject: str, payload: bytes, **options: Any) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await self.js.publish(subject, payload, **options)


class CountingJs:
    """The real JetStream, counting how often each event id is sent to it."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js, self.sent = js, Counter[str]()

    async def publish(self, subject: str, payload: bytes, **options: Any) -> Any:
        self.sent[options["headers"]["Nats-Msg-Id"]] += 1
        return await self.js.publish(subject, payload, **options)


def ids_on(messages: list[Any]) -> list[uuid.UUID]:
    return [EventEnvelope.from_bytes(m.data).id for m in messages]


async def test_every_service_outbox_has_the_claim_column(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        schemas = await conn.scalars(
            text(
                "SELECT table_schema FROM information_schema.columns "
                "WHERE table_name = 'outbox' AND column_name = 'claimed_until'"
            )
        )
        assert {"auth", "incidents", "ai_worker", "integrations"} <= set(schemas)


async def test_no_row_lock_is_held_while_the_relay_publishes(
    engine: AsyncEngine, js: JetStreamContext, scratch_outbox: Table
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)
    async with engine.begin() as conn:
        await stage(conn, scratch_outbox, [event])
    bus = GatedJs(js)
    relaying = asyncio.create_task(
        OutboxRelay(engine, scratch_outbox, bus).relay_once(grace=timedelta(0))  # type: ignore[arg-type]
    )
    try:
        await asyncio.wait_for(bus.entered.wait(), 10)  # the relay is publishing, and waits there
        async with engine.begin() as conn:
            # Fails at once (lock not available) if the relay still held the row.
            locked = await conn.scalar(
                select(scratch_outbox.c.id)
                .where(scratch_outbox.c.id == event.id)
                .with_for_update(nowait=True)
            )
        assert locked == event.id
    finally:
        bus.gate.set()
    assert await relaying == 1
    assert ids_on(await messages_on(js, f"events.{tenant_id}.>")) == [event.id]
    async with engine.connect() as conn:
        row = (await conn.execute(select(scratch_outbox).where(scratch_outbox.c.id == event.id))).one()
    assert row.published_at is not None and row.seq is not None and row.claimed_until is None


async def test_a_claim_left_by_a_crashed_relay_is_published_once_its_lease_runs_out(
    engine: AsyncEngine, js: JetStreamContext, scratch_outbox: Table
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    event = probe_event(tenant_id)
    async with engine.begin() as conn:
        await stage(conn, scratch_outbox, [event])
    # This relay claims the row, then dies before publishing it.
    claimed = await OutboxRelay(engine, scratch_outbox, js).claim(grace=timedelta(0))
    assert [c.id for c in claimed] == [event.id]

    survivor = OutboxRelay(engine, scratch_outbox, js)
    assert await survivor.relay_once(grace=timedelta(0)) == 0  # the claim holds it off
    assert await messages_on(js, f"events.{tenant_id}.>") == []

    async with engine.begin() as conn:  # the lease runs out
        await conn.execute(
            update(scratch_outbox)
            .where(scratch_outbox.c.id == event.id)
            .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await survivor.relay_once(grace=timedelta(0)) == 1
    assert ids_on(await messages_on(js, f"events.{tenant_id}.>")) == [event.id]
    assert await survivor.relay_once(grace=timedelta(0)) == 0


async def test_two_relays_at_once_send_each_event_once(
    engine: AsyncEngine, js: JetStreamContext, scratch_outbox: Table
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    events = [probe_event(tenant_id) for _ in range(300)]
    async with engine.begin() as conn:
        await stage(conn, scratch_outbox, events)
    bus = CountingJs(js)
    relays = [OutboxRelay(engine, scratch_outbox, bus, batch_size=20) for _ in range(2)]  # type: ignore[arg-type]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while count := await relay.relay_once(grace=timedelta(0)):
            total += count
        return total

    done = await asyncio.gather(*(drain(r) for r in relays))
    assert sum(done) == len(events)
    assert sorted(bus.sent) == sorted(str(e.id) for e in events)
    assert set(bus.sent.values()) == {1}  # no event was sent twice: claims kept the relays apart
    stored = ids_on(await messages_on(js, f"events.{tenant_id}.>"))
    assert sorted(stored) == sorted(e.id for e in events)
    async with engine.connect() as conn:
        unmarked = await conn.scalar(
            select(func.count()).select_from(scratch_outbox).where(scratch_outbox.c.published_at.is_(None))
        )
    assert unmarked == 0


async def test_the_relay_publishes_in_the_order_events_were_written(
    engine: AsyncEngine, js: JetStreamContext, scratch_outbox: Table
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    events = [probe_event(tenant_id) for _ in range(6)]
    written = [events[i] for i in (3, 0, 5, 1, 4, 2)]  # written in another order than their ids
    start = datetime.now(UTC) - timedelta(minutes=1)
    async with engine.begin() as conn:
        await conn.execute(
            scratch_outbox.insert(),
            [
                {
                    "id": e.id,
                    "event_type": e.type,
                    "tenant_id": e.tenant_id,
                    "payload": e.to_bytes(),
                    "created_at": start + timedelta(seconds=n),
                }
                for n, e in enumerate(written)
            ],
        )
    assert await OutboxRelay(engine, scratch_outbox, js).relay_once(grace=timedelta(0)) == 6
    assert ids_on(await messages_on(js, f"events.{tenant_id}.>")) == [e.id for e in written]


async def test_published_rows_are_pruned_past_the_retention_in_batches(
    engine: AsyncEngine, js: JetStreamContext, scratch_outbox: Table
) -> None:
    now = datetime.now(UTC)
    t = scratch_outbox

    def row(created: timedelta, published: timedelta | None) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "event_type": "probe.recorded",
            "tenant_id": "t_prune",
            "payload": b"{}",
            "created_at": now - created,
            "published_at": None if published is None else now - published,
            # Held by a relay: none takes these rows while the test looks at them.
            "claimed_until": now + timedelta(hours=1) if published is None else None,
        }

    old = [row(timedelta(hours=2), timedelta(hours=2)) for _ in range(2_500)]  # more than one batch
    recent = row(timedelta(minutes=20), timedelta(minutes=20))  # within the duplicate window's margin
    unpublished = row(timedelta(days=3), None)  # however old: never pruned
    async with engine.begin() as conn:
        await conn.execute(t.insert(), [*old, recent, unpublished])

    relay = OutboxRelay(engine, t, js, retention_seconds=3_600)
    assert await relay.prune() == len(old)
    async with engine.connect() as conn:
        left = set(await conn.scalars(select(t.c.id)))
    assert left == {recent["id"], unpublished["id"]}
    assert await relay.prune() == 0
