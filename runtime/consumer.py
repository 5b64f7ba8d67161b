"""The one event consumer every service uses: a durable JetStream pull consumer that keeps one
aggregate's events in stream order while different aggregates are handled side by side, handles
each event once (by event id, never by stream sequence), waits out database outages, retries with
bounded back-off and then dead-letters, and takes dead letters back on request.

Why not FastStream's subscriber for this: with `max_workers` it runs messages concurrently with no
notion of a key, so two edits of one incident could be applied in either order on one node. Commands
(request/reply) stay on FastStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.events import EventData, UnknownEventType, payload_of
from contracts.subjects import (
    DLQ_STREAM,
    EVENTS_STREAM,
    IMPORTED_HEADER,
    dead_letter_replay_subject,
    dead_letter_subject,
)
from runtime.db import is_transaction_conflict, is_unavailable
from runtime.metrics import DEAD_LETTERED, RETRIES, TRANSACTION_CONFLICTS
from runtime.observe import consuming

log = structlog.get_logger(__name__)

MAX_DELIVER = 5
# Back-off between attempts; JetStream applies it to acks that time out, we apply it to naks.
BACKOFF_SECONDS = (0.5, 2.0, 5.0, 15.0)
# JetStream publishes this when a message used up `max_deliver` without being acked (its handler
# hung or its process died on every delivery), so no attempt of ours could dead-letter it.
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"

# Headers of a dead letter in the DLQ stream (its data is the original message's).
DLQ_CONSUMER = "Dlq-Consumer"
DLQ_ORIGINAL_SUBJECT = "Dlq-Original-Subject"
DLQ_ORIGINAL_SEQ = "Dlq-Original-Seq"
DLQ_ATTEMPTS = "Dlq-Attempts"
DLQ_ERROR = "Dlq-Error"


def attempt_of(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


async def give_up_or_retry(
    js: JetStreamContext,
    consumer: str,
    msg: Msg,
    error: BaseException,
    backoff: Sequence[float] = BACKOFF_SECONDS,
) -> bool:
    """After a failed attempt: nak with back-off, or on the last attempt copy the message with its
    error to `dlq.<consumer>` and ack it so the consumer moves on. True when it was dead-lettered."""
    attempt = attempt_of(msg)
    if attempt < MAX_DELIVER:
        delay = backoff[min(attempt - 1, len(backoff) - 1)]
        log.warning(
            "message_retry", consumer=consumer, subject=msg.subject, attempt=attempt, error=str(error)
        )
        RETRIES.labels(consumer).inc()
        await msg.nak(delay=delay)
        return False
    await dead_letter(js, consumer, msg, error, attempt)
    return True


async def publish_dead_letter(
    js: JetStreamContext,
    consumer: str,
    *,
    subject: str,
    data: bytes,
    headers: Mapping[str, str] | None,
    stream_seq: int | None,
    attempts: int,
    error: str,
) -> None:
    """Copy a message to `dlq.<consumer>`; one stream sequence is dead-lettered once per consumer."""
    copied = {k: v for k, v in (headers or {}).items() if k != "Nats-Msg-Id"}
    copied.update(
        {
            DLQ_CONSUMER: consumer,
            DLQ_ORIGINAL_SUBJECT: subject,
            DLQ_ORIGINAL_SEQ: "" if stream_seq is None else str(stream_seq),
            DLQ_ATTEMPTS: str(attempts),
            DLQ_ERROR: error[:1000],
        }
    )
    if stream_seq is not None:
        copied["Nats-Msg-Id"] = f"{consumer}:{stream_seq}"
    await js.publish(dead_letter_subject(consumer), data, stream=DLQ_STREAM, headers=copied)
    DEAD_LETTERED.labels(consumer).inc()
    log.error("message_dead_lettered", consumer=consumer, subject=subject, seq=stream_seq, error=error)


async def dead_letter(
    js: JetStreamContext, consumer: str, msg: Msg, error: BaseException, attempt: int | None = None
) -> None:
    """Copy the message and its error to `dlq.<consumer>`, then ack it: retrying cannot help."""
    try:
        stream_seq: int | None = int(msg.metadata.sequence.stream)
    except Exception:
        stream_seq = None
    await publish_dead_letter(
        js,
        consumer,
        subject=msg.subject,
        data=msg.data,
        headers=msg.headers,
        stream_seq=stream_seq,
        attempts=attempt_of(msg) if attempt is None else attempt,
        error=f"{type(error).__name__}: {error}",
    )
    await msg.ack()


T = TypeVar("T")
OUTAGE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


async def through_outages(msgs: Sequence[Msg], work: Callable[[], Awaitable[T]], consumer: str) -> T:
    """Run `work` until it succeeds or fails for a reason of its own. While the database is
    unreachable (or answers a deadlock or serialization failure, SQLSTATE class 40, which a retry
    resolves), the messages are kept (JetStream is told they are in progress) and the work is
    retried: neither is the message's fault, and must not use up redeliveries or dead-letter it."""
    attempt = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            conflict = is_transaction_conflict(exc)
            if not (conflict or is_unavailable(exc)):
                raise
            if conflict:
                TRANSACTION_CONFLICTS.labels(consumer).inc()
            delay = OUTAGE_BACKOFF_SECONDS[min(attempt, len(OUTAGE_BACKOFF_SECONDS) - 1)]
            if attempt == 0:
                log.warning("database_unavailable_holding_messages", consumer=consumer, error=str(exc))
            attempt += 1
            for msg in msgs:
                try:
                    await msg.in_progress()
                except Exception:  # noqa: S110 - the bus may be reconnecting too; redelivery covers it
                    pass
            await asyncio.sleep(delay)


def consumed_table(metadata: MetaData) -> Table:
    """Each consuming service's record of the events it has handled, by consumer and event id: a
    redelivery, a republish after the broker's duplicate window, or a replayed dead letter of an event
    already handled changes nothing. Rows older than the consumer's retention are pruned; the views
    themselves also apply a snapshot only over an older version, so an event older than that is
    harmless too."""
    return Table(
        "consumed_events",
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("consumed_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    )


class RetryLater(Exception):
    """The event cannot be handled yet, for a reason time fixes (what it depends on has not arrived):
    retried with back-off like any failure, and dead-lettered after the last attempt."""


@dataclass(frozen=True)
class Delivery:
    """One event as a handler receives it. `seq` is None for a dead letter taken back on request."""

    event: EventEnvelope
    data: EventData
    raw: bytes  # the event exactly as it is on the log
    seq: int | None
    headers: Mapping[str, str]
    imported: bool  # from `events import`: update views, take no action
    heartbeat: Callable[[], Awaitable[None]]
    # Lets the next event of the same aggregate start while this handler goes on (with what needs no
    # order: waiting out a coalescing window, generating); the message is acked when it ends.
    release: Callable[[], None] = lambda: None


Handler = Callable[[Delivery], Awaitable[None]]


async def _no_heartbeat() -> None:
    return None


@dataclass
class _Lane:
    """The fetched, not yet finished messages of one aggregate, in stream order."""

    waiting: deque[Msg] = field(default_factory=deque)


class EventConsumer:
    """A durable pull consumer on EVENTS running `handler` for each event.

    - At most `max_in_flight` messages are fetched and unfinished at once; events of one aggregate
      (tenant, aggregate id) run one after another in stream order, different aggregates side by side.
    - An event already recorded in `consumed` (by event id) is acked without running the handler; a
      handled one is recorded there.
    - Unreadable events are dead-lettered at once; a failing handler is retried with back-off
      (`MAX_DELIVER` attempts) and then dead-lettered; database outages and class-40 conflicts are
      waited out without using attempts. A handler running past `handler_timeout` counts as failed.
    - Messages that used up `max_deliver` without an answer (a hang, a crash on every delivery) are
      dead-lettered from JetStream's advisory.
    - Dead letters come back on `cmd.dlq.<durable>.replay` (see `contracts.subjects`).
    """

    def __init__(
        self,
        nc: Client,
        engine: AsyncEngine,
        *,
        durable: str,
        filter_subjects: Sequence[str],
        handler: Handler,
        consumed: Table,
        max_in_flight: int = 16,
        ack_wait: float = 30.0,
        handler_timeout: float = 300.0,
        retention: timedelta = timedelta(days=30),
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.nc, self.engine = nc, engine
        # The consumer's own bookkeeping is one statement at a time, atomic by itself: in autocommit
        # it needs no BEGIN and no COMMIT/ROLLBACK, two round trips fewer per statement (the same
        # pool). What the handler writes keeps its own transactions.
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.durable, self.filters = durable, list(filter_subjects)
        self.handler, self.consumed = handler, consumed
        # Built once: every event runs both, and building a statement costs more than its cache hit.
        c = consumed.c
        self._seen_query = select(c.event_id).where(
            c.consumer == bindparam("consumer"), c.event_id == bindparam("event_id")
        )
        self._record_query = (
            insert(consumed)
            .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
            .on_conflict_do_nothing()
        )
        self.max_in_flight, self.ack_wait, self.handler_timeout = max_in_flight, ack_wait, handler_timeout
        self.retention, self.backoff = retention, tuple(backoff)
        self._lanes: dict[tuple[str, str], _Lane] = {}
        # Fetched and not yet finished, by id() (a Msg is not hashable).
        self._unfinished: dict[int, Msg] = {}
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        self._stopping = False

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=list(self.filters),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # One more than our own attempts: the last of ours dead-letters; JetStream's limit (and its
            # advisory) is for deliveries that never reached an answer.
            max_deliver=MAX_DELIVER + 1,
            max_ack_pending=max(256, 4 * self.max_in_flight),
        )

    async def start(self) -> None:
        await reconcile_consumer(self.js, self.durable, self.filters)
        self._sub = await self.js.pull_subscribe(
            "", durable=self.durable, stream=EVENTS_STREAM, config=self.config()
        )
        advisory = MAX_DELIVERIES_ADVISORY.format(stream=EVENTS_STREAM, consumer=self.durable)
        self._subscriptions.append(
            await self.nc.subscribe(advisory, queue=self.durable, cb=self._on_advisory)
        )
        self._subscriptions.append(
            await self.nc.subscribe(
                dead_letter_replay_subject(self.durable), queue=self.durable, cb=self._on_replay
            )
        )
        self._loops = [
            asyncio.create_task(self._fetch_loop(), name=f"{self.durable}-fetch"),
            asyncio.create_task(self._heartbeat_loop(), name=f"{self.durable}-heartbeat"),
            asyncio.create_task(self._prune_loop(), name=f"{self.durable}-prune"),
        ]

    async def stop(self) -> None:
        """Stop fetching, let what is running finish (briefly), leave the rest to redelivery."""
        self._stopping = True
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        # A pull subscription left open keeps the connection's drain (the broker's close) waiting.
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=3)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # ---- fetching and ordering

    async def _fetch_loop(self) -> None:
        while not self._stopping:
            room = self.max_in_flight - len(self._unfinished)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                msgs = await self._sub.fetch(room, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_fetch_failed", consumer=self.durable, error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                try:
                    self._dispatch(msg)
                except Exception:  # never the loop's end: the message is redelivered after its ack wait
                    log.exception("consumer_dispatch_failed", consumer=self.durable)

    def _dispatch(self, msg: Msg) -> None:
        key = _lane_key(msg)
        self._unfinished[id(msg)] = msg
        lane = self._lanes.get(key)
        if lane is not None:
            lane.waiting.append(msg)  # its lane's task takes it after the ones before it
            return
        lane = self._lanes[key] = _Lane(deque([msg]))
        self._track(self._drain(key, lane))

    async def _drain(self, key: tuple[str, str], lane: _Lane) -> None:
        try:
            while lane.waiting:
                msg = lane.waiting.popleft()
                released = asyncio.Event()
                handling = self._track(self._finish(msg, released))
                waiting = asyncio.create_task(released.wait())
                try:
                    await asyncio.wait({handling, waiting}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiting.cancel()
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    def _track(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish(self, msg: Msg, released: asyncio.Event) -> None:
        try:
            await self._handle_message(msg, released.set)
        finally:
            released.set()
            self._unfinished.pop(id(msg), None)
            self._room.set()

    async def _heartbeat_loop(self) -> None:
        """Fetched messages waiting behind another event of their aggregate (or a long handler) are
        kept from redelivery; `handler_timeout` bounds how long that can last."""
        while True:
            await asyncio.sleep(max(1.0, self.ack_wait / 3))
            for msg in list(self._unfinished.values()):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    # ---- handling

    async def _handle_message(self, msg: Msg, release: Callable[[], None]) -> None:
        try:
            event = EventEnvelope.from_bytes(msg.data)
            data = payload_of(event)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            await dead_letter(self.js, self.durable, msg, exc)  # retrying cannot make it readable
            return
        headers = dict(msg.headers or {})

        async def heartbeat() -> None:
            with contextlib.suppress(Exception):
                await msg.in_progress()

        delivery = Delivery(
            event=event,
            data=data,
            raw=msg.data,
            seq=int(msg.metadata.sequence.stream),
            headers=headers,
            imported=bool(headers.get(IMPORTED_HEADER)),
            heartbeat=heartbeat,
            release=release,
        )
        try:
            await self.handle(delivery, [msg])
            await msg.ack()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, RetryLater):
                log.exception("event_failed", consumer=self.durable, subject=msg.subject)
            await give_up_or_retry(self.js, self.durable, msg, exc, self.backoff)

    async def handle(self, delivery: Delivery, held: Sequence[Msg] = ()) -> bool:
        """Run the handler once per event id; False when it had been handled already."""
        event = delivery.event

        async def work() -> bool:
            if await self._seen(event.id):
                return False
            async with asyncio.timeout(self.handler_timeout):
                await self.handler(delivery)
            await self._record(event.id)
            return True

        with consuming(self.durable, event, delivery.headers):
            return await through_outages(held, work, self.durable)

    async def _seen(self, event_id: UUID) -> bool:
        async with self._single.connect() as conn:
            found = await conn.execute(self._seen_query, {"consumer": self.durable, "event_id": event_id})
            return found.first() is not None

    async def _record(self, event_id: UUID) -> None:
        async with self._single.connect() as conn:
            await conn.execute(self._record_query, {"consumer": self.durable, "event_id": event_id})

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(3600)
            with contextlib.suppress(Exception):
                await self.prune()

    async def prune(self, now: datetime | None = None) -> int:
        """Forget handled events older than the retention, in bounded batches; returns how many."""
        c = self.consumed
        cutoff = (now or datetime.now(UTC)) - self.retention
        removed = 0
        while True:
            async with self.engine.begin() as conn:
                batch = (
                    select(c.c.event_id)
                    .where(c.c.consumer == self.durable, c.c.consumed_at < cutoff)
                    .limit(5000)
                    .scalar_subquery()
                )
                result = await conn.execute(
                    delete(c).where(c.c.consumer == self.durable, c.c.event_id.in_(batch))
                )
            removed += result.rowcount
            if result.rowcount < 5000:
                return removed

    # ---- dead letters: from the advisory, and back on request

    async def _on_advisory(self, msg: Msg) -> None:
        """A message ran out of deliveries without any attempt of ours concluding: dead-letter it
        (the DLQ dedups by consumer and sequence, so every replica hearing this is harmless)."""
        try:
            advisory = json.loads(msg.data)
            seq = int(advisory["stream_seq"])
            stored = await self.js.get_msg(EVENTS_STREAM, seq)
            await publish_dead_letter(
                self.js,
                self.durable,
                subject=stored.subject or "",
                data=stored.data or b"",
                headers=stored.headers,
                stream_seq=seq,
                attempts=int(advisory.get("deliveries", MAX_DELIVER + 1)),
                error="delivered the maximum number of times without an answer (the handler hung or "
                "its process died each time)",
            )
        except Exception:
            log.exception("max_deliveries_advisory_failed", consumer=self.durable)

    async def _on_replay(self, msg: Msg) -> None:
        """A dead letter handed back by `sre-copilot dlq replay`: handled like a fresh delivery, once
        by event id; the answer says whether it worked."""
        reply: dict[str, Any]
        try:
            event = EventEnvelope.from_bytes(msg.data)
            data = payload_of(event)
            headers = dict(msg.headers or {})
            delivery = Delivery(
                event=event,
                data=data,
                raw=msg.data,
                seq=None,
                headers=headers,
                imported=bool(headers.get(IMPORTED_HEADER)),
                heartbeat=_no_heartbeat,
            )
            handled = await self.handle(delivery)
            reply = {"ok": True, "handled": handled}
        except (ValidationError, UnknownEventType, ValueError) as exc:
            reply = {"error": {"code": "validation", "message": f"unreadable event: {exc}"}}
        except Exception as exc:
            log.exception("dead_letter_replay_failed", consumer=self.durable)
            reply = {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}}
        if msg.reply:
            await msg.respond(json.dumps(reply).encode())


def _lane_key(msg: Msg) -> tuple[str, str]:
    """(tenant, aggregate id) without validating the whole envelope twice; an unreadable message gets
    a lane of its own (it is dead-lettered at once)."""
    try:
        raw = json.loads(msg.data)
        return str(raw["tenant_id"]), str(raw["aggregate_id"])
    except Exception:
        return "", f"unreadable:{time.monotonic_ns()}"


async def reconcile_consumer(js: JetStreamContext, durable: str, filters: Sequence[str]) -> bool:
    """Bring an existing durable to `filters` (a missing one is created by the subscription), keeping
    its position in the stream; True if it had to change. (nats-py does not change the filters of a
    durable that exists.)"""
    try:
        info = await js.consumer_info(EVENTS_STREAM, durable)
    except NotFoundError:
        return False
    config = info.config
    if sorted(config.filter_subjects or [config.filter_subject or ""]) == sorted(filters):
        return False
    config.filter_subject = None
    config.filter_subjects = list(filters)
    await js.add_consumer(EVENTS_STREAM, config)
    log.info("consumer_filters_updated", consumer=durable, filters=list(filters))
    return True
