"""Several gateways: exactly one projects (the one holding the lease), the others follow its checkpoint
and feed their websockets from the stream (gateway/leadership.py). Here a second projector runs in
the test process beside the platform's gateway, which holds the lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import httpx
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from gateway.projection import tables
from gateway.projection.leadership import PROJECTION_CHANNEL, PROJECTOR_LEASE_LOCK, Lease, LeaseLost
from gateway.projection.projector import Projector
from runtime.replay import StoredEvent, read_events, subject_filters
from tests.conftest import INCIDENT, register_tenant


async def until(check: object, seconds: float = 20.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_second_gateway_follows_the_writer_and_feeds_its_websockets_in_order(
    client: httpx.AsyncClient, engine: AsyncEngine, js: JetStreamContext
) -> None:
    follower = Projector(engine, js)
    received: list[tuple[int, EventEnvelope]] = []

    async def listener(batch: Sequence[tuple[int, EventEnvelope]]) -> None:
        received.extend(batch)

    follower.add_listener(listener)
    await follower.start()
    try:
        await until(lambda: follower.role == "follower")
        async with engine.connect() as conn:
            start = await tables.last_seq(conn, follower.name)
        tenant = await register_tenant(client, f"Lease {uuid.uuid4().hex[:6]}")
        ids = []
        for n in range(5):
            created = await client.post(
                "/api/v1/incidents", json=INCIDENT | {"title": f"lease {n}"}, headers=tenant.auth
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        moved = await client.post(
            f"/api/v1/incidents/{ids[0]}/transitions", json={"to": "acknowledged"}, headers=tenant.auth
        )
        assert moved.status_code == 200, moved.text

        # The follower learns each of the writer's checkpoints (read-your-writes on any gateway).
        async with engine.connect() as conn:
            written = await tables.last_seq(conn, follower.name)
        assert await follower.wait_for(written, timeout=10), (follower.checkpoint, written)
        assert follower.role == "follower", "two gateways held the lease"

        # Its listeners got every event up to there exactly once, in stream order, none ahead of
        # the writer's checkpoint.
        await until(lambda: bool(received) and received[-1][0] >= written)
        seqs = [seq for seq, _event in received]
        assert seqs == sorted(set(seqs)), "out of order or repeated"
        stored = [
            s.seq
            async for s in read_events(js, subject_filters(None), since_seq=start, until_seq=written)
            if isinstance(s, StoredEvent)
        ]
        assert [seq for seq in seqs if seq <= written] == stored, "the follower's feed missed events"
        mine = [e for _seq, e in received if e.tenant_id == tenant.tenant_id]
        assert [e.type for e in mine if e.type.startswith("incident.")].count("incident.created") == 5
        assert all(seq <= follower.checkpoint for seq in seqs), "an event was fed before it was readable"
    finally:
        await follower.stop()
    # Stopped, it holds no lock (the platform's gateway still does).
    async with engine.connect() as conn:
        holders = await conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND granted"),
            {"key": PROJECTOR_LEASE_LOCK},
        )
    assert holders == 1, holders


async def test_a_writer_whose_session_ends_can_commit_nothing_and_the_lease_passes_on(
    engine: AsyncEngine,
) -> None:
    """What a kill -9 of the projecting gateway amounts to for PostgreSQL (its session ends), on a
    lock of the test's own, so the platform's gateway keeps its lease."""
    key = PROJECTOR_LEASE_LOCK + 1000 + uuid.uuid4().int % 1000
    heard: list[int] = []
    writer, waiting = Lease(engine, heard.append, key=key), Lease(engine, heard.append, key=key)
    try:
        assert await writer.try_acquire()
        assert not await waiting.try_acquire(), "two sessions held the lease"
        async with writer.transaction() as conn:
            await conn.execute(text("SELECT pg_notify(:c, '42')"), {"c": PROJECTION_CHANNEL})
        await until(lambda: 42 in heard)  # the waiting one heard the writer's commit
        async with writer.transaction() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()
        try:
            async with writer.transaction() as conn:
                await conn.execute(text("SELECT 1"))
        except LeaseLost:
            pass
        else:
            raise AssertionError("a writer whose session ended committed")
        assert not writer.held
        assert await waiting.try_acquire(), "the lease did not pass on"
        # A data error of the writer's own work keeps the lease.
        try:
            async with waiting.transaction() as conn:
                await conn.execute(text("SELECT 1/0"))
        except LeaseLost:
            raise AssertionError("a failed statement lost the lease") from None
        except Exception:  # the division by zero, as expected
            pass
        assert waiting.held
        await waiting.check()
    finally:
        await writer.close()
        await waiting.close()
