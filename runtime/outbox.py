"""The transactional outbox: events are written with the state change, then published.

Fast path: right after its transaction commits, a command handler publishes what it wrote and
answers with the stream sequence. The relay loop publishes whatever a crash left behind.
`Nats-Msg-Id` = event id makes the overlap between the two harmless.

The relay holds no lock while it publishes: it claims a batch of rows (a lease, `claimed_until`, set
in one short transaction), publishes them outside any transaction, then marks them published in
another. A relay that dies between the two leaves its claim to run out, and another publishes the
rows again; the lease is far shorter than the broker's duplicate window, so the broker drops what had
gone out already. Published rows are deleted once older than `OUTBOX_RETENTION_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
    bindparam,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import EventEnvelope
from runtime.bus import publish_event
from runtime.metrics import EVENTS_PUBLISHED
from runtime.retention import delete_in_batches

log = structlog.get_logger(__name__)

PUBLISHED_FAST, PUBLISHED_RELAY = EVENTS_PUBLISHED.labels("fast"), EVENTS_PUBLISHED.labels("relay")
# After the bus refused a fast-path publish (down, or its store cannot write: a full disk), commands
# stop waiting on it for this long: a service handles its commands one at a time, so each waiting out
# a publish timeout would stall all of them. Their events stay in the outbox for the relay, which
# keeps trying in the background and opens the fast path again as soon as a publish goes through.
FAST_PATH_PAUSE_SECONDS = 5.0
# How long a relay's claim on a batch holds off the other relays. Publishing a batch takes well under
# a second; a relay that is still at it when its claim runs out is not wrong, only doubled (the broker
# drops the second copies), so this only needs to stay well within the duplicate window.
CLAIM_LEASE_SECONDS = 30.0
# Fast-path publishes are marked this long after the first of them, together: one statement for all
# the commands of that moment rather than one transaction each. Well within the relay's grace, so the
# relay still leaves them alone.
MARK_AFTER_SECONDS = 0.1


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
        # While set and in the future, a relay is publishing the row (see the module's docstring).
        Column("claimed_until", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "created_at", postgresql_where="published_at IS NULL"),
        # What pruning reads: published rows by age.
        Index("ix_outbox_published", "published_at", postgresql_where="published_at IS NOT NULL"),
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


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    payload: bytes
    created_at: datetime


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
        lease_seconds: float = CLAIM_LEASE_SECONDS,
        retention_seconds: float = 3_600.0,
        prune_interval_seconds: float = 60.0,
    ) -> None:
        self.engine, self.table, self.js = engine, table, js
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.poll_seconds = poll_seconds
        # Rows younger than this are left to the fast path of the request that wrote them.
        self.grace = timedelta(seconds=grace_seconds)
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.retention = timedelta(seconds=retention_seconds)
        self.prune_interval = prune_interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._fast_path_paused_until = 0.0
        self._next_prune = 0.0
        # Published by the fast path, not marked yet: marked by one task, many commands' rows per
        # transaction, after their callers have their answers.
        self._unmarked: list[tuple[uuid.UUID, int]] = []
        self._marking: asyncio.Task[None] | None = None
        marks = (
            func.unnest(
                bindparam("row_ids", type_=ARRAY(Uuid)), bindparam("row_seqs", type_=ARRAY(BigInteger))
            )
            .table_valued(column("id", Uuid), column("seq", BigInteger))
            .render_derived(with_types=False)
            .alias("marks")
        )
        # Every published row with its sequence, in one statement (built once: it runs for every publish).
        self._mark_published = (
            update(table)
            .where(table.c.id == marks.c.id, table.c.published_at.is_(None))
            .values(published_at=bindparam("at"), seq=marks.c.seq, claimed_until=None)
        )

    async def publish_now(self, events: Sequence[EventEnvelope]) -> int | None:
        """The fast path, after commit. Returns the last sequence, or None when the bus refused
        (or refused a moment ago): the events stay in the outbox and the relay loop delivers them."""
        if time.monotonic() < self._fast_path_paused_until:
            return None
        last: int | None = None
        published: list[tuple[uuid.UUID, int]] = []
        try:
            for event in events:
                last = await publish_event(self.js, event)
                published.append((event.id, last))
        except Exception as exc:
            log.warning("outbox_fast_path_failed", error=str(exc), pending=len(events) - len(published))
            self._fast_path_paused_until = time.monotonic() + FAST_PATH_PAUSE_SECONDS
            last = None
        if published:
            PUBLISHED_FAST.inc(len(published))
            self._mark_later(published)
        return last

    def _mark_later(self, published: Sequence[tuple[uuid.UUID, int]]) -> None:
        """The write is committed and its events are on the bus: the caller's answer need not wait
        for the row to be marked (a transaction of its own). Until it is, the row is only a duplicate
        the relay may send again after the grace period, which the broker drops (and every consumer
        ignores by event id)."""
        self._unmarked.extend(published)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_unmarked(), name="outbox-mark")

    async def _mark_unmarked(self) -> None:
        await asyncio.sleep(MARK_AFTER_SECONDS)
        while self._unmarked:
            batch, self._unmarked = self._unmarked, []
            try:
                await self.settle(batch)
            except Exception as exc:
                # The relay publishes the rows again (the broker drops the duplicates) and marks
                # them once the database takes writes (e.g. after a full disk).
                log.warning("outbox_mark_failed", error=str(exc), events=len(batch))

    async def flush_marks(self) -> None:
        """Wait until every fast-path publish so far is marked (or failed to be)."""
        while self._marking is not None and not self._marking.done():
            await asyncio.shield(self._marking)

    async def claim(self, grace: timedelta | None = None) -> list[Claimed]:
        """Step 1 of a relay pass, one short transaction: take up to one batch of unpublished rows
        that no other relay holds (older than the fast path's grace), oldest first, under a lease."""
        t = self.table
        now = datetime.now(UTC)
        cutoff = now - (self.grace if grace is None else grace)
        due = (
            select(t.c.id)
            .where(
                t.c.published_at.is_(None),
                t.c.created_at <= cutoff,
                or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
            )
            .order_by(t.c.created_at, t.c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(t)
            .where(t.c.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + self.lease)
            .returning(t.c.id, t.c.payload, t.c.created_at)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(statement)).all()
        # RETURNING keeps no order: publish in the order the events were written.
        return sorted(
            (Claimed(r.id, r.payload, r.created_at) for r in rows), key=lambda c: (c.created_at, c.id)
        )

    async def publish_claimed(
        self, claimed: Sequence[Claimed]
    ) -> tuple[list[tuple[uuid.UUID, int]], Exception | None]:
        """Step 2, outside any transaction: publish in order, stopping at the first refusal (a later
        event must not overtake an earlier one of the same batch). Returns what went out, with the
        refusal if there was one."""
        published: list[tuple[uuid.UUID, int]] = []
        try:
            for row in claimed:
                seq = await publish_event(self.js, EventEnvelope.from_bytes(row.payload))
                published.append((row.id, seq))
        except Exception as exc:
            return published, exc
        return published, None

    async def settle(
        self, published: Sequence[tuple[uuid.UUID, int]], released: Sequence[uuid.UUID] = ()
    ) -> None:
        """Step 3, one short transaction: mark what was published with its sequence, and give back
        the claim on what was not, so that the next pass takes it at once rather than after the
        lease."""
        # Two statements at most, each atomic by itself: no transaction around them.
        async with self._single.connect() as conn:
            if published:
                await conn.execute(
                    self._mark_published,
                    {
                        "row_ids": [row_id for row_id, _ in published],
                        "row_seqs": [seq for _, seq in published],
                        "at": datetime.now(UTC),
                    },
                )
            if released:
                t = self.table
                await conn.execute(
                    update(t)
                    .where(t.c.id.in_(list(released)), t.c.published_at.is_(None))
                    .values(claimed_until=None)
                )

    async def relay_once(self, grace: timedelta | None = None) -> int:
        """Publish up to one batch of rows a crash or an outage left unpublished; returns how many.
        Raises the bus's refusal once what did go out is marked."""
        claimed = await self.claim(grace)
        if not claimed:
            return 0
        published, refused = await self.publish_claimed(claimed)
        await self.settle(published, [row.id for row in claimed[len(published) :]])
        if published:
            self._fast_path_paused_until = 0.0  # the bus takes events again
            PUBLISHED_RELAY.inc(len(published))
            log.info("outbox_relayed", count=len(published))
        if refused is not None:
            raise refused
        return len(published)

    async def prune(self, retention: timedelta | None = None) -> int:
        """Delete published rows older than the retention; returns how many."""
        cutoff = datetime.now(UTC) - (self.retention if retention is None else retention)
        return await delete_in_batches(self.engine, self.table, self.table.c.published_at < cutoff)

    async def run(self) -> None:
        while True:
            try:
                while await self.relay_once() == self.batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=str(exc))
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self.prune_interval
                try:
                    if pruned := await self.prune():
                        log.info("outbox_pruned", rows=pruned)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox_prune_failed", error=str(exc))
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush_marks()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
