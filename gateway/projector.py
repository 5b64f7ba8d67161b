"""Projects the event stream into the gateway's read models.

A durable pull consumer fetches batches; each batch is applied in one transaction together with the
checkpoint, then acked. Every apply is idempotent (keyed by event id or guarded by aggregate
version), so a redelivered event changes nothing. Waiters let a write answer only once its own event
is readable (read-your-writes)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.events import (
    EventData,
    UnknownEventType,
    payload_of,
)
from contracts.subjects import EVENTS_STREAM, GATEWAY_PROJECTOR, all_events
from gateway import read_models as rm
from gateway.projection import apply_batch
from runtime import tracing
from runtime.consumer import BACKOFF_SECONDS, MAX_DELIVER, dead_letter, through_outages
from runtime.metrics import EVENTS_HANDLED, PROJECTION_BATCH_SECONDS

log = structlog.get_logger(__name__)

FETCH_TIMEOUT_SECONDS = 1.0

# A fetched message (None: read from the stream directly to fill a gap), its sequence, the event.
Item = tuple[Msg | None, int, EventEnvelope, EventData]

Listener = Callable[[Sequence[tuple[int, EventEnvelope]]], Awaitable[None]]


async def apply_event(conn: AsyncConnection, seq: int, event: EventEnvelope, data: EventData) -> None:
    """Apply one event to the read models. Idempotent."""
    await apply_batch(conn, [(seq, event, data)])


async def _hold_projection_lock(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": rm.PROJECTION_LOCK})


async def save_checkpoint(conn: AsyncConnection, name: str, seq: int) -> None:
    statement = insert(rm.checkpoints).values(name=name, last_seq=seq)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[rm.checkpoints.c.name],
            set_={"last_seq": statement.excluded.last_seq},
            where=rm.checkpoints.c.last_seq < statement.excluded.last_seq,
        )
    )


class Projector:
    def __init__(self, engine: AsyncEngine, js: JetStreamContext, batch_size: int = 500) -> None:
        self.engine, self.js, self.batch_size = engine, js, batch_size
        self.name = GATEWAY_PROJECTOR
        self.checkpoint = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

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

    def _advance(self, seq: int) -> None:
        self.checkpoint = max(self.checkpoint, seq)
        for waited, future in self._waiters:
            if waited <= self.checkpoint and not future.done():
                future.set_result(None)

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            self.checkpoint = await rm.last_seq(conn, self.name)
        self._subscription = await self.js.pull_subscribe(
            all_events(),
            durable=self.name,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                durable_name=self.name,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
                max_deliver=MAX_DELIVER + 1,
                max_ack_pending=20_000,
            ),
        )
        self._task = asyncio.create_task(self._run(), name="gateway-projector")

    async def stop(self) -> None:
        """Let the current fetch (at most a second) and batch finish, then stop; cancel if stuck."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 3 * FETCH_TIMEOUT_SECONDS)
            except TimeoutError:
                self._task.cancel()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                msgs = await self._subscription.fetch(self.batch_size, timeout=FETCH_TIMEOUT_SECONDS)
            except TimeoutError:  # nothing new (nats-py raises its own subclass or asyncio's)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("projector_fetch_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            try:
                await self.handle_batch(msgs)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projector_batch_failed")
                await asyncio.sleep(0.5)

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        """Apply a fetched batch strictly in stream order. Events a previous life of the projector
        fetched but never acked are redelivered only after their ack wait, behind newer ones; the
        projector fills such a gap from the stream itself first, so the checkpoint never passes an
        event that is not applied (read-your-writes and the live feed's `since` rely on that)."""
        if not msgs:
            return
        items: list[Item] = []
        handled: list[int] = []  # sequences done without applying: dead-lettered
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= self.checkpoint:
                await msg.ack()  # a late redelivery of what is already applied
                continue
            try:
                event = EventEnvelope.from_bytes(msg.data)
                items.append((msg, seq, event, payload_of(event)))
            except (ValidationError, UnknownEventType, ValueError) as exc:
                # Retrying cannot make an unreadable event readable.
                await dead_letter(self.js, self.name, msg, exc)
                handled.append(seq)
        present = {seq for _, seq, _, _ in items} | set(handled)
        if not present:
            return
        for seq in range(self.checkpoint + 1, min(present)):
            stored = await self.js.get_msg(EVENTS_STREAM, seq)
            try:
                event = EventEnvelope.from_bytes(stored.data or b"")
                items.append((None, seq, event, payload_of(event)))
            except (ValidationError, UnknownEventType, ValueError):
                handled.append(seq)  # its own delivery is dead-lettered when it comes back
        items.sort(key=lambda item: item[1])

        started = time.perf_counter()
        # One span per batch, linked to the trace of each event in it (off: no cost).
        links = [dict(m.headers or {}) for m in msgs] if tracing.enabled() else None
        with tracing.span(f"{self.name} batch", "consumer", links=links, attributes={"batch": len(msgs)}):
            applied = await self._apply_in_order(items, handled) if items else []
            if not items:
                await self._checkpoint_only(max(handled))
        PROJECTION_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        for event_type, count in Counter(event.type for _, _, event, _ in applied).items():
            EVENTS_HANDLED.labels(self.name, event_type, "ok").inc(count)
        for acked, *_ in applied:
            if acked is not None:
                await acked.ack()
        done = [seq for _, seq, _, _ in applied] + handled
        if done:
            self._advance(max(done))
        if applied:
            batch = [(seq, event) for _, seq, event, _ in applied]
            for listener in self._listeners:
                try:
                    await listener(batch)
                except Exception:
                    log.exception("projector_listener_failed")

    async def _apply_in_order(self, items: list[Item], handled: list[int]) -> list[Item]:
        """All in one transaction; if that fails because of the data, one by one, retrying the
        failing event with back-off and dead-lettering it after the last attempt, never skipping
        ahead of it. Database outages are waited out (see `through_outages`)."""
        live_msgs = [msg for msg, *_ in items if msg is not None]
        end = max([seq for _, seq, _, _ in items] + handled)

        async def apply(chunk: list[Item], upto: int) -> None:
            async with self.engine.begin() as conn:
                await _hold_projection_lock(conn)
                await apply_batch(conn, [(seq, event, data) for _msg, seq, event, data in chunk])
                await save_checkpoint(conn, self.name, upto)

        try:
            await through_outages(live_msgs, lambda: apply(items, end), self.name)
            return items
        except Exception as exc:
            log.warning("projector_batch_retry_one_by_one", error=str(exc), size=len(items))
        applied: list[Item] = []
        for item in items:
            msg, seq = item[0], item[1]
            for attempt in range(1, MAX_DELIVER + 1):
                try:
                    await through_outages(live_msgs, functools.partial(apply, [item], seq), self.name)
                    applied.append(item)
                    break
                except Exception as exc:
                    if attempt < MAX_DELIVER:
                        for waiting in live_msgs:
                            await waiting.in_progress()
                        await asyncio.sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
                        continue
                    if msg is not None:
                        await dead_letter(self.js, self.name, msg, exc, attempt)
                    else:
                        log.error("projector_gap_event_failed", seq=seq, error=str(exc))
                    handled.append(seq)
                    await self._checkpoint_only(seq)
        return applied

    async def _checkpoint_only(self, seq: int) -> None:
        async with self.engine.begin() as conn:
            await _hold_projection_lock(conn)
            await save_checkpoint(conn, self.name, seq)
        self._advance(seq)
