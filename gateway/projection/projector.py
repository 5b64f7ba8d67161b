"""Projects the event stream into the gateway's read models.

A durable pull consumer fetches batches; each batch is applied in one transaction together with the
checkpoint, then acked. Every apply is idempotent (keyed by event id or guarded by aggregate
version), so a redelivered event changes nothing. Waiters let a write answer only once its own event
is readable (read-your-writes).

Nothing is passed over unless an operator says so. A database that is out of reach, or that rolls a
transaction back for racing another (a deadlock, a serialization failure: SQLSTATE class 40), is
waited out for as long as it takes, the messages held in progress. An event the projector cannot
apply (not an envelope, a type or a version this code does not know, a payload its schema refuses,
an apply that fails for its data, a sequence missing from the stream) stops it at that sequence:
nothing after it is applied or acked, the stall shows (`Projector.stall`, the metrics, `/health`,
`gateway.projection_stalls`, an error log line) and the event is retried with back-off, so a
gateway upgraded to know a newer version applies it by itself. `sre-copilot projections skip SEQ`
(gateway/skip.py) records in `gateway.projection_skips` that a sequence is to be passed over;
the projector then passes exactly that one. Dead letters come back through `serve_replays`.

Of several gateways exactly one projects, the one holding the lease (`gateway.leadership`); it reads
strictly in order from the committed checkpoint (its durable consumer is created anew at that sequence
whenever it takes over). The others follow its checkpoint and feed their websockets from the stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.commands import ErrorBody, ErrorCode, ErrorReply
from contracts.envelope import EventEnvelope
from contracts.events import CURRENT_VERSION, EventData, payload_of
from contracts.subjects import EVENTS_STREAM, GATEWAY_PROJECTOR, all_events, dead_letter_replay_subject
from gateway.projection import tables
from gateway.projection.apply import apply_batch
from gateway.projection.leadership import PROJECTION_CHANNEL, FollowerFeed, Lease, LeaseLost
from runtime import tracing
from runtime.consumer import through_outages
from runtime.db import is_transaction_conflict, is_unavailable, unavailable_message
from runtime.metrics import DEAD_LETTERED, EVENTS_HANDLED, PROJECTION_BATCH_SECONDS, TRANSACTION_CONFLICTS

log = structlog.get_logger(__name__)

T = TypeVar("T")

FETCH_TIMEOUT_SECONDS = 1.0
# While stalled: how often the skips are looked up (an operator's skip takes effect within this).
STALL_POLL_SECONDS = 1.0
# Back-off between attempts at the event the projector is stalled at.
STALL_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# How often a stall is logged again (at error level) while it lasts.
STALL_LOG_SECONDS = 60.0
# Held messages are told "in progress" at this interval, well within the consumer's ack wait.
ACK_WAIT_SECONDS = 30
HOLD_SECONDS = 10.0
# Between attempts at a transaction the database rolled back for a race; there is no last attempt.
CONFLICT_BACKOFF_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# A replay is a request someone waits on: it gives up on conflicts after this many attempts.
REPLAY_CONFLICT_ATTEMPTS = 6

Listener = Callable[[Sequence[tuple[int, EventEnvelope]]], Awaitable[None]]


class StallReason(StrEnum):
    UNREADABLE = "unreadable"  # not an event envelope
    MISSING = "missing"  # no message at this sequence (deleted from the stream)
    UNKNOWN_TYPE = "unknown_type"
    NEWER_VERSION = "newer_version"  # from newer code: applied once this gateway is upgraded
    INVALID = "invalid"  # the payload fails its schema, or an old version has no upcaster
    APPLY_FAILED = "apply_failed"  # the read models refuse it


@dataclass(frozen=True)
class Problem:
    reason: StallReason
    error: str


@dataclass
class Pending:
    """One event of a batch, decoded, or why it cannot be."""

    seq: int
    msg: Msg | None  # None: read from the stream itself, to fill a gap
    event: EventEnvelope | None = None
    data: EventData | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class Stall:
    """Where the projector is stopped, and why."""

    seq: int
    reason: StallReason
    error: str
    event_type: str | None
    event_id: str | None
    since: datetime
    attempts: int = 1


def _recorded_stall(row: Any) -> Stall | None:
    """The stall the writer recorded in `gateway.projection_stalls` (as a follower shows it)."""
    if row is None:
        return None
    return Stall(
        seq=int(row.seq),
        reason=StallReason(row.reason),
        error=row.error,
        event_type=row.event_type,
        event_id=row.event_id,
        since=row.since,
        attempts=int(row.attempts or 1),
    )


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def decode(seq: int, msg: Msg | None, raw: bytes) -> Pending:
    """The event stored at `seq`, or the problem that keeps it from being applied."""
    try:
        event = EventEnvelope.from_bytes(raw)
    except ValueError as exc:  # pydantic's ValidationError is one
        return Pending(seq, msg, problem=Problem(StallReason.UNREADABLE, _brief(exc)))
    try:
        data = payload_of(event)
    except Exception as exc:  # an upcaster may fail on odd data in any way
        known = CURRENT_VERSION.get(event.type)
        if known is None:
            reason = StallReason.UNKNOWN_TYPE
        elif event.version > known:
            reason = StallReason.NEWER_VERSION
        else:
            reason = StallReason.INVALID
        return Pending(seq, msg, event, problem=Problem(reason, _brief(exc)))
    return Pending(seq, msg, event, data)


def _items(pending: Sequence[Pending]) -> list[tuple[int, EventEnvelope, EventData]]:
    items = []
    for p in pending:
        assert p.event is not None and p.data is not None, "only decoded events are applied"
        items.append((p.seq, p.event, p.data))
    return items


async def apply_event(conn: AsyncConnection, seq: int, event: EventEnvelope, data: EventData) -> None:
    """Apply one event to the read models. Idempotent."""
    await apply_batch(conn, [(seq, event, data)])


async def _hold_projection_lock(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": tables.PROJECTION_LOCK})


def checkpointed(name: str, seq: int) -> Select[Any]:
    """One statement that ends a batch: the checkpoint moves to `seq` (never back), the stall it
    got past is cleared, and the other gateways are told (`pg_notify`, delivered at commit)."""
    checkpoint = insert(tables.checkpoints).values(name=name, last_seq=seq)
    checkpoint = checkpoint.on_conflict_do_update(
        index_elements=[tables.checkpoints.c.name],
        set_={"last_seq": checkpoint.excluded.last_seq},
        where=tables.checkpoints.c.last_seq < checkpoint.excluded.last_seq,
    )
    stalls = tables.projection_stalls
    cleared = delete(stalls).where(stalls.c.name == name, stalls.c.seq <= seq)
    return select(func.pg_notify(PROJECTION_CHANNEL, str(seq))).add_cte(
        checkpoint.cte("checkpoint"), cleared.cte("cleared")
    )


async def recorded_skips(conn: AsyncConnection, first: int, last: int) -> dict[int, str]:
    """The sequences in [first, last] an operator told the projector to skip, with the reason."""
    query = select(tables.projection_skips.c.seq, tables.projection_skips.c.reason).where(
        tables.projection_skips.c.seq.between(first, last)
    )
    return {int(seq): reason for seq, reason in await conn.execute(query)}


def _error(code: ErrorCode, message: str) -> dict[str, Any]:
    return ErrorReply(error=ErrorBody(code=code, message=message)).model_dump(mode="json")


class Projector:
    def __init__(self, engine: AsyncEngine, js: JetStreamContext, batch_size: int = 500) -> None:
        self.engine, self.js, self.batch_size = engine, js, batch_size
        self.name = GATEWAY_PROJECTOR
        self.checkpoint = 0
        # Set while the projector is stopped at an event it cannot apply.
        self.stall: Stall | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Fetched, not acked yet: kept in progress while the projector waits (a stall, an outage).
        self._held: list[Msg] = []
        self._held_at = 0.0
        self._stall_logged_at = 0.0
        self._skips_warned_at = float("-inf")
        self._replays: Subscription | None = None
        # "leader" while this gateway holds the lease and projects; "follower" otherwise.
        self.role = "starting"
        self.lease = Lease(engine, self._learned)
        self.feed = FollowerFeed(js, self._listeners)
        self._subscription: Any = None

    def add_listener(self, listener: Listener) -> None:
        """Called with each committed batch (the live feed's fan-out hooks in here)."""
        self._listeners.append(listener)

    async def wait_for(self, seq: int | None, timeout: float) -> bool:
        """True once the read models include stream sequence `seq`; False after `timeout`."""
        if seq is None or self.checkpoint >= seq:
            return seq is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters = [(s, f) for s, f in self._waiters if f is not future]

    def _learned(self, seq: int) -> None:
        """The writer's checkpoint, as a follower hears it."""
        if self.role != "leader":
            self._advance(seq)
            self.feed.learn(seq)

    def _advance(self, seq: int) -> None:
        self.checkpoint = max(self.checkpoint, seq)
        for waited, future in self._waiters:
            if waited <= self.checkpoint and not future.done():
                future.set_result(None)

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            self.checkpoint = await tables.last_seq(conn, self.name)
        self._task = asyncio.create_task(self._lifecycle(), name="gateway-projector")

    async def _lifecycle(self) -> None:
        """Follow until the lease is free, then project until it is lost; for as long as it runs."""
        while not self._stopping:
            try:
                await self._follow()
                if self._stopping:
                    return
                await self._lead()
            except LeaseLost as exc:
                log.warning("projector_lease_lost", reason=str(exc))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projector_role_failed")
                await asyncio.sleep(FETCH_TIMEOUT_SECONDS)
            finally:
                self.role = "follower"
                self._held = []
                await self._unsubscribe()

    async def _follow(self) -> None:
        """Track the writer's checkpoint (its notifications, and a look every second) and feed the
        listeners from the stream up to it; return once this gateway holds the lease."""
        self.role = "follower"
        feed = asyncio.create_task(self.feed.run(self.checkpoint), name="gateway-follower-feed")
        warned = False
        try:
            while not self._stopping:
                try:
                    acquired = await self.lease.try_acquire()
                    checkpoint, stall = await self.lease.read()
                except Exception as exc:
                    if not warned:
                        log.warning("projector_follower_database_unavailable", error=repr(exc))
                        warned = True
                    await asyncio.sleep(FETCH_TIMEOUT_SECONDS)
                    continue
                warned = False
                self._advance(checkpoint)
                self.feed.learn(checkpoint)
                if acquired:
                    # Everything committed so far reaches this gateway's websockets before it projects.
                    await self.feed.drain(checkpoint, timeout=10.0)
                    return
                self.stall = _recorded_stall(stall)
                await asyncio.sleep(FETCH_TIMEOUT_SECONDS)
        finally:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed
            self.stall = None

    async def _lead(self) -> None:
        """Project from the committed checkpoint, strictly in order, until the lease is lost."""
        checkpoint, _stall = await self.lease.read()
        self.role = "leader"
        self.checkpoint = max(self.checkpoint, checkpoint)
        self.feed.sent = self.checkpoint
        # A durable consumer of its own life: it starts right after the checkpoint, so nothing a
        # previous writer fetched (and left unacked) comes back behind newer events.
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(EVENTS_STREAM, self.name)
        self._subscription = await self.js.pull_subscribe(
            all_events(),
            durable=self.name,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                durable_name=self.name,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.checkpoint + 1,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_SECONDS,
                max_deliver=-1,
                max_ack_pending=20_000,
            ),
        )
        log.info("projector_leading", checkpoint=self.checkpoint)
        await self._run()

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def serve_replays(self, nc: Client) -> None:
        """Answer `cmd.dlq.gateway_projector.replay` (one replica of the gateway per request)."""

        async def on_request(msg: Msg) -> None:
            try:
                reply = await self.replay(msg.data, dict(msg.headers or {}))
            except Exception:
                log.exception("projector_replay_failed")
                reply = _error(ErrorCode.INTERNAL, "the replay failed; see the gateway's log")
            if msg.reply:
                await msg.respond(json.dumps(reply).encode())

        self._replays = await nc.subscribe(
            dead_letter_replay_subject(self.name), queue="gateway", cb=on_request
        )

    async def stop(self) -> None:
        """Let the current fetch (at most a second) and batch finish, then stop; cancel if stuck.
        A stall ends at once, leaving its messages unacked for the next start."""
        self._stopping = True
        if self._replays is not None:
            with contextlib.suppress(Exception):
                await self._replays.unsubscribe()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 3 * FETCH_TIMEOUT_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        await self.lease.close()  # another gateway takes over at once

    async def _run(self) -> None:
        checked_at = time.monotonic()
        while not self._stopping:
            try:
                msgs = await self._subscription.fetch(self.batch_size, timeout=FETCH_TIMEOUT_SECONDS)
            except TimeoutError:  # nothing new (nats-py raises its own subclass or asyncio's)
                msgs = []
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("projector_fetch_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                msgs = []
            if not msgs:
                if time.monotonic() - checked_at >= FETCH_TIMEOUT_SECONDS:
                    await self.lease.check()  # an idle writer notices a lost session too
                    checked_at = time.monotonic()
                continue
            try:
                await self.handle_batch(msgs)
            except (asyncio.CancelledError, LeaseLost):
                raise
            except Exception:
                log.exception("projector_batch_failed")
                await asyncio.sleep(0.5)
            finally:
                self._held = []

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        """Apply a fetched batch strictly in stream order. Events a previous life of the projector
        fetched but never acked are redelivered only after their ack wait, behind newer ones; the
        projector fills such a gap from the stream itself first, so the checkpoint never passes an
        event that is not applied (read-your-writes and the live feed's `since` rely on that). An
        event that cannot be applied, fetched or read to fill a gap, stops it there (`_stall_at`)."""
        if not msgs:
            return
        pending: dict[int, Pending] = {}
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= self.checkpoint:
                await msg.ack()  # a late redelivery of what is already applied
                continue
            pending[seq] = decode(seq, msg, msg.data)
        if not pending:
            return
        self._held = [p.msg for p in pending.values() if p.msg is not None]
        self._held_at = time.monotonic()
        for seq in range(self.checkpoint + 1, min(pending)):
            pending[seq] = await self._read_stored(seq)
        await self._work_through([pending[seq] for seq in sorted(pending)])

    async def _read_stored(self, seq: int) -> Pending:
        try:
            stored = await self.js.get_msg(EVENTS_STREAM, seq)
        except NotFoundError as exc:
            problem = Problem(StallReason.MISSING, f"no message at sequence {seq} of {EVENTS_STREAM}: {exc}")
            return Pending(seq, None, problem=problem)
        return decode(seq, None, stored.data or b"")

    async def _work_through(self, items: list[Pending]) -> None:
        """Apply `items` (consecutive sequences) in order: runs of readable events in one
        transaction each, passing what an operator skipped, stopping at what cannot be applied."""
        skips: dict[int, str] = {}
        i = 0
        while i < len(items) and not self._stopping:
            item = items[i]
            if item.seq in skips:
                await self._pass_skipped(item, skips[item.seq])
                i += 1
            elif item.problem is not None:
                if not await self._stall_at(item):
                    return  # stopping: the rest stays unacked, for the next start
                i += 1
            else:
                end = i
                while end < len(items) and items[end].problem is None and items[end].seq not in skips:
                    end += 1
                applied, found = await self._apply_run(items[i:end])
                i += applied
                skips.update(found)

    async def _apply_run(self, run: list[Pending]) -> tuple[int, dict[int, str]]:
        """Apply readable events in one transaction; if that fails because of the data, one by one
        up to the one that fails, which then carries its problem. Returns how many were applied,
        and the skips found recorded among them (then nothing from the first skipped on is)."""
        started = time.perf_counter()
        # One span per transaction, linked to the trace of each event in it (off: no cost).
        links = [dict(p.msg.headers or {}) for p in run if p.msg is not None] if tracing.enabled() else None
        with tracing.span(f"{self.name} batch", "consumer", links=links, attributes={"batch": len(run)}):
            try:
                skips = await self._commit(run)
            except LeaseLost:
                raise
            except Exception as exc:
                log.warning("projector_batch_retry_one_by_one", error=str(exc), size=len(run))
            else:
                PROJECTION_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
                if skips:
                    return 0, skips
                await self._done(run)
                return len(run), {}
            for n, item in enumerate(run):
                try:
                    skips = await self._commit([item])
                except LeaseLost:
                    raise
                except Exception as exc:
                    item.problem = Problem(StallReason.APPLY_FAILED, _brief(exc))
                    return n, {}
                if skips:
                    return n, skips
                await self._done([item])
            return len(run), {}

    async def _commit(self, items: Sequence[Pending], upto: int | None = None) -> dict[int, str]:
        """Apply `items` and move the checkpoint to `upto` (by default the last of them) in one
        transaction under the projection lock, unless an operator has recorded a skip among them:
        then nothing is written, and the skips are returned. The skips are read under the lock,
        which the skip command takes exclusively: a skip is recorded before a batch or after it."""
        last = items[-1].seq if upto is None else upto

        async def work() -> dict[int, str]:
            async with self.lease.transaction() as conn:
                await _hold_projection_lock(conn)
                if items:
                    skips = await recorded_skips(conn, items[0].seq, last)
                    if skips:
                        return skips
                    await apply_batch(conn, _items(items))
                # The other gateways' waiters and feeds move on at commit.
                await conn.execute(checkpointed(self.name, last))
            return {}

        return await self._retrying(work)

    async def _retrying(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` until it succeeds or fails for a reason of its own: an unreachable database
        (`through_outages`) and a transaction rolled back for racing another (a deadlock, a
        serialization failure) are retried for as long as it takes, the messages held meanwhile."""
        attempt = 0
        while True:
            try:
                return await through_outages(self._held, work, self.name)
            except Exception as exc:
                if not is_transaction_conflict(exc):
                    raise
                TRANSACTION_CONFLICTS.labels(self.name).inc()
                if attempt % 20 == 0:
                    log.warning("projector_transaction_conflict", error=_brief(exc), attempt=attempt + 1)
                await self._keep_held()
                await asyncio.sleep(CONFLICT_BACKOFF_SECONDS[min(attempt, len(CONFLICT_BACKOFF_SECONDS) - 1)])
                attempt += 1

    async def _keep_held(self) -> None:
        """Tell JetStream the held messages are still being worked on, so none is redelivered."""
        if time.monotonic() - self._held_at < HOLD_SECONDS:
            return
        self._held_at = time.monotonic()
        for msg in self._held:
            try:
                await msg.in_progress()
            except Exception:  # noqa: S110 - the bus may be reconnecting; redelivery covers it
                pass

    async def _ack(self, items: Sequence[Pending]) -> None:
        acked = {id(p.msg) for p in items if p.msg is not None}
        for p in items:
            if p.msg is not None:
                try:
                    await p.msg.ack()
                except Exception as exc:  # redelivered later, it is acked as already applied
                    log.warning("projector_ack_failed", seq=p.seq, error=repr(exc))
        self._held = [m for m in self._held if id(m) not in acked]

    async def _done(self, applied: Sequence[Pending]) -> None:
        for event_type, count in Counter(p.event.type for p in applied if p.event).items():
            EVENTS_HANDLED.labels(self.name, event_type, "ok").inc(count)
        await self._ack(applied)
        self._advance(applied[-1].seq)
        batch = [(p.seq, p.event) for p in applied if p.event is not None]
        for listener in self._listeners:
            try:
                await listener(batch)
            except Exception:
                log.exception("projector_listener_failed")

    async def _pass_skipped(self, item: Pending, reason: str) -> None:
        """An operator's skip (`sre-copilot projections skip`): the checkpoint passes this one
        sequence, and nothing of it is applied. The skip has copied it to the DLQ."""
        await self._commit([], upto=item.seq)
        await self._ack([item])
        DEAD_LETTERED.labels(self.name).inc()
        EVENTS_HANDLED.labels(self.name, item.event.type if item.event else "unreadable", "skipped").inc()
        log.warning(
            "projector_skipped_by_operator",
            seq=item.seq,
            event_type=item.event.type if item.event else None,
            event_id=str(item.event.id) if item.event else None,
            reason=reason,
        )
        self._advance(item.seq)

    async def _stall_at(self, item: Pending) -> bool:
        """Stay at `item` until it applies (retried with back-off: a restart with newer code, a
        fixed read model) or an operator skips it. False if the projector stops first."""
        assert item.problem is not None
        reason = await self._skip_of(item.seq)
        if reason is not None:  # recorded before the projector got here (`skip --force`)
            await self._pass_skipped(item, reason)
            return True
        self.stall = Stall(
            seq=item.seq,
            reason=item.problem.reason,
            error=item.problem.error,
            event_type=item.event.type if item.event else None,
            event_id=str(item.event.id) if item.event else None,
            since=datetime.now(UTC),
        )
        EVENTS_HANDLED.labels(self.name, self.stall.event_type or "unreadable", "error").inc()
        self._report_stall(first=True)
        await self._record_stall()
        retry_at = time.monotonic() + STALL_BACKOFF_SECONDS[0]
        try:
            while not self._stopping:
                reason = await self._skip_of(item.seq)
                if reason is not None:
                    await self._pass_skipped(item, reason)
                    return True
                if time.monotonic() >= retry_at:
                    attempts = self.stall.attempts + 1
                    if await self._retry(item):
                        log.info("projector_stall_resolved", seq=item.seq, attempts=attempts)
                        return True
                    problem = item.problem
                    assert problem is not None
                    self.stall = replace(
                        self.stall, reason=problem.reason, error=problem.error, attempts=attempts
                    )
                    self._report_stall()
                    await self._record_stall()
                    backoff = STALL_BACKOFF_SECONDS[min(attempts - 1, len(STALL_BACKOFF_SECONDS) - 1)]
                    retry_at = time.monotonic() + backoff
                await self._keep_held()
                await asyncio.sleep(STALL_POLL_SECONDS)
            return False
        finally:
            self.stall = None

    async def _retry(self, item: Pending) -> bool:
        """Read and apply the event again; True once applied."""
        try:
            if item.msg is None:
                fresh = await self._read_stored(item.seq)
            else:
                fresh = decode(item.seq, item.msg, item.msg.data)
        except Exception as exc:  # the bus is out of reach: try again later
            log.warning("projector_stall_reread_failed", seq=item.seq, error=repr(exc))
            return False
        item.event, item.data, item.problem = fresh.event, fresh.data, fresh.problem
        if item.problem is not None:
            return False
        applied, _skips = await self._apply_run([item])  # a skip found is taken on the next look
        return applied == 1

    def _report_stall(self, first: bool = False) -> None:
        stall = self.stall
        assert stall is not None
        now = time.monotonic()
        if not first and now - self._stall_logged_at < STALL_LOG_SECONDS:
            return
        self._stall_logged_at = now
        log.error(
            "projector_stalled",
            consumer=self.name,
            seq=stall.seq,
            event_type=stall.event_type,
            event_id=stall.event_id,
            reason=stall.reason.value,
            error=stall.error,
            attempts=stall.attempts,
            since=stall.since.isoformat(),
            hint=f"fix the cause, or: sre-copilot projections skip {stall.seq} --reason '...'",
        )

    async def _record_stall(self) -> None:
        """For the skip command (which refuses to skip anything but the sequence stalled at)."""
        stall = self.stall
        assert stall is not None
        values = {
            "name": self.name,
            "seq": stall.seq,
            "reason": stall.reason.value,
            "event_type": stall.event_type,
            "event_id": stall.event_id,
            "error": stall.error,
            "attempts": stall.attempts,
            "since": stall.since,
            "updated_at": datetime.now(UTC),
        }
        statement = insert(tables.projection_stalls).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[tables.projection_stalls.c.name],
            set_={k: statement.excluded[k] for k in values if k != "name"},
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(statement)
        except Exception as exc:  # the metrics and the log still say it
            log.warning("projector_stall_not_recorded", error=repr(exc))

    async def _skip_of(self, seq: int) -> str | None:
        try:
            async with self.engine.connect() as conn:
                return (await recorded_skips(conn, seq, seq)).get(seq)
        except Exception as exc:  # looked up again in a second; said once a minute
            if time.monotonic() - self._skips_warned_at >= STALL_LOG_SECONDS:
                self._skips_warned_at = time.monotonic()
                log.warning("projector_skips_unreadable", error=repr(exc))
            return None

    async def replay(self, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """Apply a dead letter of this projector (the original event and the headers it was stored
        with in DLQ) to the read models, through the same code and lock as the projector. Idempotent
        by event id: a second replay changes nothing. Only for a sequence the projector has passed
        (one it has yet to reach, it applies itself, in order)."""
        raw_seq = headers.get("Dlq-Original-Seq", "")
        if not raw_seq.isdigit() or int(raw_seq) < 1:
            return _error(
                ErrorCode.VALIDATION,
                "the dead letter has no Dlq-Original-Seq header: "
                "its stream sequence places it in the read models",
            )
        seq = int(raw_seq)
        item = decode(seq, None, data)
        if item.problem is not None:
            return _error(
                ErrorCode.VALIDATION,
                f"this gateway cannot apply sequence {seq} ({item.problem.reason.value}): "
                f"{item.problem.error}",
            )

        async def work() -> int | None:
            async with self.engine.begin() as conn:
                await _hold_projection_lock(conn)
                checkpoint = await tables.last_seq(conn, self.name)
                if seq > checkpoint:
                    return checkpoint
                await apply_batch(conn, _items([item]))
            return None

        ahead: int | None = None
        for attempt in range(REPLAY_CONFLICT_ATTEMPTS):
            try:
                ahead = await work()
                break
            except Exception as exc:
                if is_unavailable(exc):
                    return _error(ErrorCode.UNAVAILABLE, unavailable_message(exc))
                if not is_transaction_conflict(exc):
                    log.exception("projector_replay_failed", seq=seq)
                    return _error(ErrorCode.INTERNAL, f"applying sequence {seq} failed: {_brief(exc)}")
                TRANSACTION_CONFLICTS.labels(self.name).inc()
                await asyncio.sleep(CONFLICT_BACKOFF_SECONDS[min(attempt, len(CONFLICT_BACKOFF_SECONDS) - 1)])
        else:
            return _error(ErrorCode.UNAVAILABLE, "the read models are busy (transaction conflicts); retry")
        if ahead is not None:
            return _error(
                ErrorCode.CONFLICT,
                f"the projector has not reached sequence {seq} yet (it is at {ahead}); "
                "it applies that event itself when it does",
            )
        assert item.event is not None
        EVENTS_HANDLED.labels(self.name, item.event.type, "replayed").inc()
        log.info("projector_replayed", seq=seq, event_type=item.event.type, event_id=str(item.event.id))
        return {"ok": True}
