"""Which gateway projects, and how every other one keeps up.

Any number of gateways may run; exactly one of them writes the read models at a time. The writer holds
a PostgreSQL session advisory lock (`Lease`) on a connection of its own and makes every projection
write on that same connection: a gateway whose session PostgreSQL has ended (a crash, a lost network,
a database restart) cannot commit anything more, and another gateway takes the lock within a second.
PostgreSQL says who holds the lock, so there is no lease to expire and no clock to trust.

Each commit of the writer notifies `PROJECTION_CHANNEL` with its new checkpoint. The other gateways
(`Follower`) listen, and also read the checkpoint every second in case a notification was missed; what
they learn releases their read-your-writes waiters, and their live feed sends its websockets the
events up to that checkpoint, read from the stream in order (an ephemeral consumer of their own), so
a client sees on any gateway only what every gateway can already read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.subjects import EVENTS_STREAM, GATEWAY_PROJECTOR, all_events
from gateway.projection import tables

log = structlog.get_logger(__name__)

# Session advisory lock id held by the gateway that projects (see `PROJECTION_LOCK` for the other).
PROJECTOR_LEASE_LOCK = 0x5EC0_0002
# NOTIFY channel of the projector's commits; the payload is the new checkpoint.
PROJECTION_CHANNEL = "sre_copilot_projection"
# How often a follower tries the lock and reads the checkpoint (a notification usually comes first).
FOLLOW_POLL_SECONDS = 1.0
FEED_FETCH = 256

Batch = Sequence[tuple[int, EventEnvelope]]


class LeaseLost(Exception):
    """The projector's session ended; whoever holds the lock now is the writer."""


class Lease:
    """A dedicated connection: while following it listens for the writer's checkpoints and tries the
    lock; once it has the lock, the projector writes through it (`transaction`)."""

    def __init__(
        self, engine: AsyncEngine, on_checkpoint: Callable[[int], None], key: int = PROJECTOR_LEASE_LOCK
    ) -> None:
        self.engine, self.on_checkpoint, self.key = engine, on_checkpoint, key
        self._conn: AsyncConnection | None = None
        self.held = False
        self.notified = asyncio.Event()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.engine.connect()
            try:
                raw = await conn.get_raw_connection()
                await raw.driver_connection.add_listener(PROJECTION_CHANNEL, self._on_notify)  # type: ignore[union-attr]
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self.on_checkpoint(int(payload))
            self.notified.set()

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it. A database out of reach raises (the caller waits)."""
        try:
            conn = await self._connection()
            taken = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            ).scalar()
            await conn.commit()  # end the implicit transaction: the session lock stays
        except BaseException:
            await self.close()
            raise
        self.held = bool(taken)
        return self.held

    async def read(self) -> tuple[int, Any]:
        """The committed checkpoint and the recorded stall (as the writer left them)."""
        try:
            conn = await self._connection()
            checkpoint = await tables.last_seq(conn, GATEWAY_PROJECTOR)
            stalls = tables.projection_stalls
            stall = (await conn.execute(select(stalls).where(stalls.c.name == GATEWAY_PROJECTOR))).first()
            await conn.commit()
        except BaseException:
            await self.close()
            raise
        return checkpoint, stall

    @contextlib.asynccontextmanager
    async def transaction(self) -> Any:
        """A transaction on the lease's own connection. Raises `LeaseLost` once the session has failed
        (the lock went with it); an error of the work itself leaves the lease held."""
        if not self.held or self._conn is None:
            raise LeaseLost("the projector lease is not held")
        conn = self._conn
        try:
            async with conn.begin():
                yield conn
        except Exception:
            if conn.invalidated or conn.closed or await self._is_dead(conn):
                await self.close()
                raise LeaseLost("the projector's database session ended") from None
            raise

    async def _is_dead(self, conn: AsyncConnection) -> bool:
        try:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
            return False
        except Exception:
            return True

    async def check(self) -> None:
        """Raise `LeaseLost` unless the session holding the lock is still there."""
        if not self.held or self._conn is None or await self._is_dead(self._conn):
            await self.close()
            raise LeaseLost("the projector's database session ended")

    async def close(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            # Discarded, not returned to the pool: the session ends, and its lock and LISTEN with it.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()


class FollowerFeed:
    """Sends the listeners (the live feed's fan-out, the session watch) each event once the writer's
    checkpoint includes it, in stream order, read by an ephemeral ordered consumer of this gateway."""

    def __init__(self, js: JetStreamContext, listeners: Sequence[Callable[[Batch], Awaitable[None]]]) -> None:
        self.js, self.listeners = js, listeners
        self.sent = 0  # the last sequence handed to the listeners
        self.target = 0  # the writer's checkpoint as last learned
        self.moved = asyncio.Event()
        self.progress = asyncio.Event()  # set whenever `sent` moves
        self._buffer: list[tuple[int, EventEnvelope]] = []
        self._next = 0  # the next sequence the consumer should deliver
        self._consumer_seq = 0  # the consumer's own count of what it delivered (a gap: start over)
        self._subscription: Any = None

    def learn(self, checkpoint: int) -> None:
        if checkpoint > self.target:
            self.target = checkpoint
            self.moved.set()

    async def run(self, since: int) -> None:
        """Forward from `since` + 1 until cancelled. Any failure of the bus (its consumer lost with a
        node, a reconnect) starts a new consumer where the last one stopped."""
        self.sent = max(self.sent, since)
        self._next = self.sent + 1
        self._buffer = []
        try:
            while True:
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("follower_feed_restarting", error=repr(exc), at=self._next)
                    await self._drop()
                    await asyncio.sleep(0.5)
        finally:
            await self._drop()

    async def _step(self) -> None:
        if self.sent >= self.target:
            self.moved.clear()
            if self.sent >= self.target:
                await self.moved.wait()
            return
        if self._buffer and self._buffer[0][0] <= self.target:
            await self._forward()
            return
        if not self._buffer and self._next - 1 > self.sent:  # only unreadable ones came
            self.sent = min(self.target, self._next - 1)
            self.progress.set()
            return
        if self._subscription is None:
            self._subscription = await self._subscribe()
        try:
            msgs = await self._subscription.fetch(FEED_FETCH, timeout=1.0)
        except TimeoutError:
            # Nothing came. Is the consumer still there (it raises if not), and has everything
            # stored come? Then what the target still names was deleted or skipped.
            info = await self._subscription.consumer_info()
            if not self._buffer and info.num_pending == 0:
                self.sent = max(self.sent, self.target)
                self.progress.set()
            return
        if not self._take(msgs):
            await self._drop()

    async def _drop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    def _take(self, msgs: Sequence[Any]) -> bool:
        """Buffer what was fetched; False when the consumer skipped a message (then start over)."""
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq < self._next:
                continue
            if msg.metadata.sequence.consumer != self._consumer_seq + 1:
                return False
            self._consumer_seq += 1
            self._next = seq + 1
            try:
                self._buffer.append((seq, EventEnvelope.from_bytes(msg.data)))
            except (ValidationError, ValueError):
                continue  # the writer stalls on it (and once skipped it reaches no read model)
        return True

    async def _forward(self) -> None:
        ready = [item for item in self._buffer if item[0] <= self.target]
        self._buffer = self._buffer[len(ready) :]
        self.sent = ready[-1][0]
        if not self._buffer:  # what came after the last event handed over was unreadable
            self.sent = max(self.sent, min(self.target, self._next - 1))
        self.progress.set()
        for listener in self.listeners:
            try:
                await listener(ready)
            except Exception:
                log.exception("follower_listener_failed")

    async def _subscribe(self) -> Any:
        self._buffer = [item for item in self._buffer if item[0] < self._next]
        self._consumer_seq = 0
        return await self.js.pull_subscribe(
            all_events(),
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._next,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
            ),
        )

    async def drain(self, upto: int, timeout: float) -> None:
        """Until everything up to `upto` is forwarded (before this gateway starts projecting)."""
        self.learn(upto)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.sent < upto:
                    self.progress.clear()
                    await self.progress.wait()
