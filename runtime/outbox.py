"""The transactional outbox: events are written with the state change, then published.

Fast path: right after its transaction commits, a command handler publishes what it wrote and
answers with the stream sequence. The relay loop publishes whatever a crash left behind.
`Nats-Msg-Id` = event id makes the overlap between the two harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from nats.js import JetStreamContext
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import EventEnvelope
from runtime.bus import publish_event
from runtime.metrics import EVENTS_PUBLISHED

log = structlog.get_logger(__name__)

PUBLISHED_FAST, PUBLISHED_RELAY = EVENTS_PUBLISHED.labels("fast"), EVENTS_PUBLISHED.labels("relay")
# After the bus refused a fast-path publish (down, or its store cannot write: a full disk), commands
# stop waiting on it for this long: a service handles its commands one at a time, so each waiting out
# a publish timeout would stall all of them. Their events stay in the outbox for the relay, which
# keeps trying in the background and opens the fast path again as soon as a publish goes through.
FAST_PATH_PAUSE_SECONDS = 5.0


def outbox_table(metadata: MetaData) -> Table:
    """Each service's own `outbox` table, in its own schema (taken from `metadata`)."""
    return Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("tenant_id", String(64), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("seq", BigInteger),
        Index("ix_outbox_unpublished", "created_at", postgresql_where="published_at IS NULL"),
    )


async def stage(conn: AsyncConnection, table: Table, events: Sequence[EventEnvelope]) -> None:
    """Write events inside the caller's transaction; they are published only if it commits."""
    if events:
        await conn.execute(
            table.insert(),
            [
                {"id": e.id, "event_type": e.type, "tenant_id": e.tenant_id, "payload": e.to_bytes()}
                for e in events
            ],
        )


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        js: JetStreamContext,
        *,
        poll_seconds: float = 1.0,
        grace_seconds: float = 2.0,
        batch_size: int = 200,
    ) -> None:
        self.engine, self.table, self.js = engine, table, js
        self.poll_seconds = poll_seconds
        # Rows younger than this are left to the fast path of the request that wrote them.
        self.grace = timedelta(seconds=grace_seconds)
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._fast_path_paused_until = 0.0

    async def publish_now(self, events: Sequence[EventEnvelope]) -> int | None:
        """The fast path, after commit. Returns the last sequence, or None when the bus refused
        (or refused a moment ago): the events stay in the outbox and the relay loop delivers them."""
        if time.monotonic() < self._fast_path_paused_until:
            return None
        last: int | None = None
        published: list[tuple[EventEnvelope, int]] = []
        try:
            for event in events:
                last = await publish_event(self.js, event)
                published.append((event, last))
        except Exception as exc:
            log.warning("outbox_fast_path_failed", error=str(exc), pending=len(events) - len(published))
            self._fast_path_paused_until = time.monotonic() + FAST_PATH_PAUSE_SECONDS
            last = None
        if published:
            PUBLISHED_FAST.inc(len(published))
            try:
                await self._mark(published)
            except Exception as exc:
                # The write is committed and its events are on the bus: the caller's answer stays a
                # success. The relay publishes the rows again (the broker drops the duplicates) and
                # marks them once the database takes writes (e.g. after a full disk).
                log.warning("outbox_mark_failed", error=str(exc), events=len(published))
        return last

    async def _mark(self, published: Sequence[tuple[EventEnvelope, int]]) -> None:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            for event, seq in published:
                await conn.execute(
                    update(self.table)
                    .where(self.table.c.id == event.id, self.table.c.published_at.is_(None))
                    .values(published_at=now, seq=seq)
                )

    async def relay_once(self, grace: timedelta | None = None) -> int:
        """Publish up to one batch of rows a crash or an outage left unpublished; returns how many."""
        cutoff = datetime.now(UTC) - (self.grace if grace is None else grace)
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(self.table.c.id, self.table.c.payload)
                    .where(self.table.c.published_at.is_(None), self.table.c.created_at <= cutoff)
                    .order_by(self.table.c.created_at, self.table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            now = datetime.now(UTC)
            for row in rows:
                seq = await publish_event(self.js, EventEnvelope.from_bytes(row.payload))
                await conn.execute(
                    update(self.table).where(self.table.c.id == row.id).values(published_at=now, seq=seq)
                )
        if rows:
            self._fast_path_paused_until = 0.0  # the bus takes events again
            PUBLISHED_RELAY.inc(len(rows))
            log.info("outbox_relayed", count=len(rows))
        return len(rows)

    async def run(self) -> None:
        while True:
            try:
                while await self.relay_once() == self.batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=str(exc))
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
