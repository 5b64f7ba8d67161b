"""What every bus-facing service shares: the FastStream broker, a database engine, JetStream,
the outbox relay, the ping handler, and the wrapper that turns a command into a typed reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import structlog
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import (
    Command,
    CommandFailed,
    ErrorBody,
    ErrorCode,
    ErrorReply,
    MetricsReport,
    Pong,
)
from contracts.subjects import host_ping_subject, metrics_subject, ping_subject
from runtime import tracing
from runtime.bus import connection_failure, declare_streams, nats_servers
from runtime.consumer import EventConsumer, Handler
from runtime.db import create_engine, is_invalid_value, is_unavailable, unavailable_message
from runtime.logging import configure_logging, redact_url
from runtime.metrics import COMMAND_SECONDS, COMMANDS, Exposition, outbox_refresher
from runtime.outbox import OutboxRelay
from runtime.retention import Periodic
from runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

C = TypeVar("C", bound=Command)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


class KeyedLocks:
    """One asyncio lock per key, for as long as someone holds or waits for it. asyncio.Lock wakes its
    waiters first come, first served, so one key's holders run in the order they asked."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Service:
    """One process of one service. `engine`, `js` and `relay` exist once the service has started."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        outbox: Table | None = None,
        *,
        command_workers: int = 1,
        ordered_by: str | None = None,
    ) -> None:
        """`command_workers` commands are handled at once; those naming the same `ordered_by` field
        value (an aggregate's id) one after another, in the order they arrived, so one aggregate's
        changes commit and publish in one order on this replica."""
        self.name, self.settings, self.outbox = name, settings, outbox
        self.command_workers, self.ordered_by = command_workers, ordered_by
        self._in_order = KeyedLocks()
        configure_logging(name, settings.log_level, settings.log_format)
        tracing.configure_tracing(name)
        self.broker = NatsBroker(
            nats_servers(settings.nats_url),
            name=f"{name}:{settings.instance}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=self._on_bus_error,
            # Through the root logger, i.e. the same JSON stream; one line per message is DEBUG.
            logger=logging.getLogger(f"sre_copilot.{name}.broker"),
            log_level=logging.DEBUG,
        )
        self.app = FastStream(
            self.broker,
            logger=logging.getLogger(f"sre_copilot.{name}.app"),
            on_startup=[self._open],
            after_startup=[self._started],
            on_shutdown=[self._close],
        )
        self._engine: AsyncEngine | None = None
        self._single_statements: AsyncEngine | None = None
        self._relay: OutboxRelay | None = None
        self._consumer_specs: list[dict[str, Any]] = []
        self.consumers: list[EventConsumer] = []
        self._periodic: list[Periodic] = []
        self.broker.subscriber(ping_subject(name), queue=name)(self._ping)
        # What `sre-copilot ping --local` (a container's health probe) asks: this host's replicas only.
        self.broker.subscriber(host_ping_subject(name, socket.gethostname()), queue=name)(self._ping)
        # Every replica answers (no queue group): the gateway's /metrics gathers them all.
        self.exposition = Exposition()
        self.broker.subscriber(metrics_subject(name))(self._metrics)

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "the service has not started"
        return self._engine

    @property
    def single_statements(self) -> AsyncEngine:
        """The same pool in autocommit: each statement is its own transaction, with no BEGIN and
        COMMIT round trips around it. For a read that decides whether there is anything to do."""
        if self._single_statements is None:
            self._single_statements = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._single_statements

    @property
    def js(self) -> JetStreamContext:
        return self.broker.connection.jetstream()

    @property
    def relay(self) -> OutboxRelay:
        if self._relay is None:
            assert self.outbox is not None, f"{self.name} has no outbox"
            self._relay = OutboxRelay(
                self.engine,
                self.outbox,
                self.js,
                retention_seconds=self.settings.outbox_retention_seconds,
                prune_interval_seconds=self.settings.prune_interval_seconds,
            )
        return self._relay

    async def _on_bus_error(self, exc: Exception) -> None:
        """FastStream logs the bus's own errors, not a server out of reach: while NATS refuses
        connections (at start or after a drop) the broker retries every second, and says why."""
        if isinstance(exc, OSError | TimeoutError):
            log.warning(
                "nats_unreachable", url=redact_url(self.settings.nats_url), error=connection_failure(exc)
            )

    async def _open(self) -> None:
        self._engine = create_engine(self.settings.database_url)
        self._single_statements = None

    def consume(
        self,
        durable: str,
        filter_subjects: list[str],
        consumed: Table,
        *,
        max_in_flight: int = 16,
        handler_timeout: float = 300.0,
    ) -> Callable[[Handler], Handler]:
        """Register the handler of a durable event consumer (see runtime.consumer.EventConsumer),
        started once the service is connected."""

        def register(handler: Handler) -> Handler:
            self._consumer_specs.append(
                {
                    "durable": durable,
                    "filter_subjects": filter_subjects,
                    "consumed": consumed,
                    "handler": handler,
                    "max_in_flight": max_in_flight,
                    "handler_timeout": handler_timeout,
                }
            )
            return handler

        return register

    async def _started(self) -> None:
        await declare_streams(self.js, self.settings)
        if self.outbox is not None:
            self.relay.start()
            self.exposition.add_refresher(outbox_refresher(self.engine, self.outbox))
        for spec in self._consumer_specs:
            consumer = EventConsumer(self.broker.connection, self.engine, **spec)
            await consumer.start()
            self.consumers.append(consumer)
        for task in self._periodic:
            task.start()
        log.info("service_started", instance=self.settings.instance)

    async def _close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for task in self._periodic:
            await task.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self._engine is not None:
            await self._engine.dispose()

    async def _ping(self, body: dict[str, Any]) -> dict[str, Any]:
        database = False
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
            database = True
        except Exception as exc:
            log.warning("ping_database_failed", error=str(exc))
        return Pong(service=self.name, instance=self.settings.instance, database=database).model_dump()

    async def _metrics(self, body: Any) -> dict[str, Any]:
        exposition = await self.exposition.render()
        return MetricsReport(
            service=self.name, instance=self.settings.instance, exposition=exposition
        ).model_dump()

    def every(self, name: str, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        """Run `work` in the background every `seconds` once the service has started (e.g. pruning
        finished rows); a failure is logged and tried again at the next turn."""
        self._periodic.append(Periodic(f"{self.name}-{name}", seconds, work))

    def handles(
        self, model: type[C]
    ) -> Callable[[Callable[[C], Awaitable[BaseModel]]], Callable[[C], Awaitable[BaseModel]]]:
        """`command` on the subject the model declares (contracts' `SUBJECT`)."""
        return self.command(model.subject(), model)

    def command(
        self, subject: str, model: type[C]
    ) -> Callable[[Callable[[C], Awaitable[BaseModel]]], Callable[[C], Awaitable[BaseModel]]]:
        """Register a command handler. It receives the validated command and returns a reply model;
        bad input and CommandFailed become an ErrorReply, anything unexpected an internal error."""

        def register(handler: Callable[[C], Awaitable[BaseModel]]) -> Callable[[C], Awaitable[BaseModel]]:
            async def on_request(body: dict[str, Any]) -> dict[str, Any]:
                correlation_id = str(body.get("correlation_id") or uuid.uuid4())
                started = time.perf_counter()
                with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, command=subject):
                    try:
                        command = model.model_validate(body)
                        key = getattr(command, self.ordered_by, None) if self.ordered_by else None
                        if key is None:
                            reply: BaseModel = await handler(command)
                        else:
                            async with self._in_order.hold(str(key)):
                                reply = await handler(command)
                    except ValidationError as exc:
                        reply = ErrorReply(
                            error=ErrorBody(
                                code=ErrorCode.VALIDATION,
                                message="invalid command",
                                details=validation_details(exc),
                            )
                        )
                    except CommandFailed as exc:
                        reply = exc.reply()
                    except Exception as exc:
                        if is_invalid_value(exc):  # a value the database cannot hold: bad input
                            log.warning("command_data_error", error=str(getattr(exc, "orig", exc)))
                            reply = ErrorReply(
                                error=ErrorBody(
                                    code=ErrorCode.VALIDATION, message="a value is out of range or malformed"
                                )
                            )
                            return reply.model_dump(mode="json")
                        if is_unavailable(exc):
                            log.warning("command_database_unavailable", error=str(exc))
                            reply = ErrorReply(
                                error=ErrorBody(code=ErrorCode.UNAVAILABLE, message=unavailable_message(exc))
                            )
                            return reply.model_dump(mode="json")
                        log.exception("command_failed")
                        reply = ErrorReply(
                            error=ErrorBody(code=ErrorCode.INTERNAL, message=f"{subject} failed")
                        )
                    log.info(
                        "command_handled",
                        ms=round((time.perf_counter() - started) * 1000, 2),
                        outcome=reply.error.code.value if isinstance(reply, ErrorReply) else "ok",
                    )
                    return reply.model_dump(mode="json")

            handled_ok, seconds = COMMANDS.labels(subject, "ok"), COMMAND_SECONDS.labels(subject)

            async def observed(body: dict[str, Any], msg: NatsMessage) -> dict[str, Any]:
                """Counted, timed, and traced as a child of the caller's span (NATS headers)."""
                started = time.perf_counter()
                with tracing.span(subject, "server", parent=msg.headers or {}):
                    reply = await on_request(body)
                error = reply.get("error")
                if isinstance(error, dict):
                    COMMANDS.labels(subject, str(error.get("code"))).inc()
                else:
                    handled_ok.inc()
                seconds.observe(time.perf_counter() - started)
                return reply

            # A handler bound to its context with functools.partial names itself by its function.
            observed.__name__ = getattr(handler, "func", handler).__name__
            if self.command_workers > 1:
                self.broker.subscriber(subject, queue=self.name, max_workers=self.command_workers)(observed)
            else:
                self.broker.subscriber(subject, queue=self.name)(observed)
            return handler

        return register

    def run(self) -> None:
        asyncio.run(self.app.run())
