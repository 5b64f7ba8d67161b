"""Rebuilding the gateway's read models from the event log, while the live gateway keeps serving.

1. Replay the stream from sequence 1 into a scratch schema (`gateway_rebuild`), in big batches,
   through the same `apply_batch` the live projector uses (its tables are redirected there with
   SQLAlchemy's schema translation).
2. Take the projection lock (the live projector takes it, shared, for each batch), apply what the
   live projector applied meanwhile, then either compare (`--verify`) or swap: replace every live
   table's rows with the rebuilt ones in one transaction. Readers see the old rows until it commits,
   then the new ones; the live projector resumes after it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.events import EventData, UnknownEventType, payload_of
from contracts.subjects import EVENTS_STREAM, GATEWAY_PROJECTOR, all_events
from gateway import read_models as rm
from gateway.projection import Item, apply_batch
from runtime.replay import StoredEvent, read_events

SCRATCH = "gateway_rebuild"
BATCH = 2_000


@dataclass
class TableDifference:
    table: str
    only_live: int
    only_rebuilt: int
    examples: list[str] = field(default_factory=list)


@dataclass
class RebuildReport:
    events: int = 0
    skipped: int = 0
    seconds: float = 0.0  # the whole rebuild, preparation and swap included
    replay_seconds: float = 0.0  # reading and applying events only
    up_to_seq: int = 0
    swapped: bool = False
    differences: list[TableDifference] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Events replayed per second."""
        return self.events / self.replay_seconds if self.replay_seconds else 0.0


def _scratch(conn: AsyncConnection) -> Any:
    return conn.execution_options(schema_translate_map={rm.SCHEMA: SCRATCH})


def _projected_tables() -> list[Table]:
    return [t for t in rm.metadata.sorted_tables if t.name != rm.checkpoints.name]


async def _prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        scratch = await _scratch(conn)
        await scratch.run_sync(rm.metadata.create_all)


async def _apply(conn: AsyncConnection, items: list[Item]) -> None:
    scratch = await _scratch(conn)
    await apply_batch(scratch, items)


def _decode(stored: Any, report: RebuildReport) -> Item | None:
    if not isinstance(stored, StoredEvent):
        report.skipped += 1
        return None
    try:
        data: EventData = payload_of(stored.event)
    except (UnknownEventType, ValueError):
        report.skipped += 1  # the live projector dead-lettered it as well
        return None
    return (stored.seq, stored.event, data)


async def _replay(
    engine: AsyncEngine,
    js: JetStreamContext,
    report: RebuildReport,
    since: int,
    until: int,
    progress: Callable[[int], None] | None,
    conn: AsyncConnection | None = None,
) -> None:
    """Read and apply at the same time: while PostgreSQL applies one batch, the next is read and
    decoded (the two halves cost about the same)."""
    if until <= since:
        return
    batches: asyncio.Queue[list[Item] | None] = asyncio.Queue(maxsize=2)

    async def read() -> None:
        batch: list[Item] = []
        async for stored in read_events(js, [all_events()], since_seq=since, until_seq=until, batch=1_000):
            item = _decode(stored, report)
            if item is not None:
                batch.append(item)
            if len(batch) >= BATCH:
                await batches.put(batch)
                batch = []
        if batch:
            await batches.put(batch)
        await batches.put(None)

    started = time.perf_counter()
    reader = asyncio.create_task(read())
    try:
        while (batch := await batches.get()) is not None:
            if conn is not None:
                await _apply(conn, batch)
            else:
                async with engine.begin() as own:
                    await _apply(own, batch)
            report.events += len(batch)
            if progress is not None:
                progress(len(batch))
        await reader
    finally:
        reader.cancel()
        report.replay_seconds += time.perf_counter() - started


async def _differences(conn: AsyncConnection) -> list[TableDifference]:
    found = []
    for table in _projected_tables():
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
        live, rebuilt = f"{rm.SCHEMA}.{table.name}", f"{SCRATCH}.{table.name}"

        async def only(a: str, b: str, cols: str = columns, pk: str = keys) -> tuple[int, list[str]]:
            query = f"SELECT {pk} FROM (SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}) d"
            rows = (await conn.execute(text(query))).all()
            return len(rows), [", ".join(str(v) for v in row) for row in rows[:5]]

        only_live, live_examples = await only(live, rebuilt)
        only_rebuilt, rebuilt_examples = await only(rebuilt, live)
        if only_live or only_rebuilt:
            found.append(
                TableDifference(table.name, only_live, only_rebuilt, live_examples + rebuilt_examples)
            )
    return found


async def _swap(conn: AsyncConnection) -> None:
    for table in _projected_tables():
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        await conn.execute(text(f"DELETE FROM {rm.SCHEMA}.{table.name}"))
        live, rebuilt = f"{rm.SCHEMA}.{table.name}", f"{SCRATCH}.{table.name}"
        await conn.execute(text(f"INSERT INTO {live} ({columns}) SELECT {columns} FROM {rebuilt}"))


async def _until_live_reaches(engine: AsyncEngine, seq: int, timeout: float = 60.0) -> None:
    """Let the live projector apply what the first pass saw, so both sides end at the same event
    (it may lag when the rebuild starts right after a burst of writes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            if await rm.last_seq(conn, GATEWAY_PROJECTOR) >= seq:
                return
        await asyncio.sleep(0.2)


async def rebuild(
    engine: AsyncEngine,
    js: JetStreamContext,
    verify: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    report = RebuildReport()
    started = time.perf_counter()
    await _prepare(engine)
    # Phase 1, unlocked: everything in the stream now.
    first_pass_end = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    await _replay(engine, js, report, 0, first_pass_end, progress)
    await _until_live_reaches(engine, first_pass_end)
    # Phase 2, with the live projector paused between two of its batches.
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": rm.PROJECTION_LOCK})
        live_seq = await rm.last_seq(conn, GATEWAY_PROJECTOR)
        await _replay(engine, js, report, first_pass_end, live_seq, progress, conn)
        report.up_to_seq = max(live_seq, first_pass_end)
        if verify:
            report.differences = await _differences(conn)
        else:
            await _swap(conn)
            report.swapped = True
        await conn.execute(text(f"DROP SCHEMA {SCRATCH} CASCADE"))
    report.seconds = time.perf_counter() - started
    return report
