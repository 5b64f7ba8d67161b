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
import gc
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.events import EVENT_TYPES, EventData, UnknownEventType, payload_of
from contracts.subjects import EVENTS_PREFIX, EVENTS_STREAM, GATEWAY_PROJECTOR, all_events
from gateway.projection import tables
from gateway.projection.apply import Item, apply_batch
from runtime.bus import connect
from runtime.db import create_engine
from runtime.replay import StoredEvent, read_events

SCRATCH = "gateway_rebuild"
BATCH = 5_000


class RebuildError(RuntimeError):
    pass


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
    return conn.execution_options(schema_translate_map={tables.SCHEMA: SCRATCH})


def _projected_tables() -> list[Table]:
    return [t for t in tables.metadata.sorted_tables if t.name not in tables.CONTROL_TABLES]


async def _prepare(engine: AsyncEngine) -> None:
    """Scratch tables as the live ones, but unlogged (a crash loses nothing that a new rebuild
    cannot redo, and skipping the WAL halves the cost of writing) and with only their unique
    indexes, which the projection's upserts need; secondary indexes only slow the load down."""
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        scratch = await _scratch(conn)
        await scratch.run_sync(tables.metadata.create_all)
        for table in tables.metadata.sorted_tables:
            await conn.execute(text(f"ALTER TABLE {SCRATCH}.{table.name} SET UNLOGGED"))
        secondary = await conn.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema "
                "AND NOT i.indisunique"
            ),
            {"schema": SCRATCH},
        )
        for (index,) in secondary.all():
            await conn.execute(text(f'DROP INDEX {SCRATCH}."{index}"'))


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
        report.skipped += 1  # the live projector stopped at it until an operator skipped it
        return None
    return (stored.seq, stored.event, data)


def partitions() -> list[list[str]]:
    """The stream split by event type into parts a rebuild may apply side by side, each in order.
    Each table's rows come from events of fixed types, and only two folds read earlier events: an
    incident's (incident.*) and identity's (tenant.*, user.*, integration_key.*, all in the second
    part); the rest is per event. (Filters by aggregate prefix: the server delivers those fast,
    while a list of exact types makes it scan.)"""
    prefixes = sorted({event_type.split(".")[0] for event_type, _version in EVENT_TYPES})
    return [
        [f"{EVENTS_PREFIX}.*.incident.>"],
        [f"{EVENTS_PREFIX}.*.{prefix}.>" for prefix in prefixes if prefix != "incident"],
    ]


async def _replay(
    engine: AsyncEngine,
    js: JetStreamContext,
    report: RebuildReport,
    since: int,
    until: int,
    progress: Callable[[int], None] | None,
    conn: AsyncConnection | None = None,
    filters: list[str] | None = None,
) -> None:
    """Read and apply at the same time: while PostgreSQL applies one batch, the next is read and
    decoded."""
    if until <= since:
        return
    batches: asyncio.Queue[list[Item] | None] = asyncio.Queue(maxsize=2)

    async def read() -> None:
        batch: list[Item] = []
        async for stored in read_events(js, filters or [all_events()], since_seq=since, until_seq=until):
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
    collecting = gc.get_threshold()
    # Every event allocates hundreds of short-lived objects and no cycles: the default thresholds
    # make the collector walk the heap so often that it costs a third of the time.
    gc.set_threshold(50_000, 50, 1_000)
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
        gc.set_threshold(*collecting)
        reader.cancel()
        report.replay_seconds += time.perf_counter() - started


def _replay_part(
    filters: list[str], nats_url: str, database_url: str, since: int, until: int, results: Any
) -> None:
    """A worker process's share of a rebuild: one part of the stream (see `partitions`). Reports
    progress and its outcome on `results`."""

    async def work() -> None:
        nc = await connect(nats_url, "sre-copilot-rebuild", reconnect=False)
        engine = create_engine(database_url, pool_size=1)
        report = RebuildReport()
        try:
            tell = lambda n: results.put(("progress", n))  # noqa: E731
            await _replay(engine, nc.jetstream(), report, since, until, tell, None, filters)
        finally:
            await engine.dispose()
            await nc.close()
        results.put(("done", report.events, report.skipped))

    try:
        asyncio.run(work())
    except BaseException as exc:
        results.put(("failed", f"{type(exc).__name__}: {exc}"))
        raise


async def _replay_in_parallel(
    engine: AsyncEngine,
    js: JetStreamContext,
    nats_url: str,
    report: RebuildReport,
    until: int,
    progress: Callable[[int], None] | None,
    workers: int,
) -> None:
    """The first pass spread over processes, one part of the stream each (this process takes the
    first): decoding events and building rows is Python work, which one process does on one core."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    database_url = engine.url.render_as_string(hide_password=False)
    parts = partitions()
    groups = [[f for part in parts[n::workers] for f in part] for n in range(workers)]
    processes = [
        context.Process(
            target=_replay_part, args=(group, nats_url, database_url, 0, until, results), daemon=True
        )
        for group in groups[1:]
    ]

    def tally(message: tuple[Any, ...]) -> bool:
        """Count a worker's message; True when it is its last."""
        if message[0] == "progress":
            report.events += message[1]
            if progress is not None:
                progress(message[1])
            return False
        if message[0] == "done":
            report.skipped += message[2]
            return True
        raise RebuildError(f"a rebuild worker failed: {message[1]}")

    async def follow_workers() -> None:
        running = len(processes)
        while running:
            try:
                running -= tally(await asyncio.to_thread(results.get, True, 0.5))
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise RebuildError("a rebuild worker died; see its output above") from None

    own = RebuildReport()
    started = time.perf_counter()
    for process in processes:
        process.start()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_replay(engine, js, own, 0, until, progress, None, groups[0]))
            group.create_task(follow_workers())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(10)
    report.events += own.events
    report.skipped += own.skipped
    report.replay_seconds += time.perf_counter() - started


async def _differences(conn: AsyncConnection) -> list[TableDifference]:
    found = []
    for table in _projected_tables():
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
        live, rebuilt = f"{tables.SCHEMA}.{table.name}", f"{SCRATCH}.{table.name}"

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
        await conn.execute(text(f"DELETE FROM {tables.SCHEMA}.{table.name}"))
        live, rebuilt = f"{tables.SCHEMA}.{table.name}", f"{SCRATCH}.{table.name}"
        await conn.execute(text(f"INSERT INTO {live} ({columns}) SELECT {columns} FROM {rebuilt}"))


async def _until_live_reaches(engine: AsyncEngine, seq: int, timeout: float = 60.0) -> None:
    """Let the live projector apply what the first pass saw, so both sides end at the same event
    (it may lag when the rebuild starts right after a burst of writes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            if await tables.last_seq(conn, GATEWAY_PROJECTOR) >= seq:
                return
        await asyncio.sleep(0.2)


async def rebuild(
    engine: AsyncEngine,
    js: JetStreamContext,
    verify: bool = False,
    progress: Callable[[int], None] | None = None,
    nats_url: str | None = None,
    workers: int | None = None,
) -> RebuildReport:
    """With `nats_url`, the first pass runs in `workers` processes (default: one per core, at most
    one per part of the stream); without, in this one."""
    report = RebuildReport()
    started = time.perf_counter()
    await _prepare(engine)
    # Phase 1, unlocked: everything in the stream now.
    first_pass_end = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    workers = min(workers or os.cpu_count() or 1, len(partitions())) if nats_url else 1
    if workers > 1 and nats_url and first_pass_end > 0:
        await _replay_in_parallel(engine, js, nats_url, report, first_pass_end, progress, workers)
    else:
        await _replay(engine, js, report, 0, first_pass_end, progress)
    await _until_live_reaches(engine, first_pass_end)
    # Phase 2, with the live projector paused between two of its batches.
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": tables.PROJECTION_LOCK})
        live_seq = await tables.last_seq(conn, GATEWAY_PROJECTOR)
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
