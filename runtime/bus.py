"""NATS connections, the stream declarations (made here and only here), and event publishing."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from contracts.envelope import EventEnvelope
from contracts.subjects import (
    DLQ_PREFIX,
    DLQ_STREAM,
    EVENTS_PREFIX,
    EVENTS_STREAM,
    event_subject,
)
from runtime import tracing
from runtime.logging import redact_url

if TYPE_CHECKING:
    from runtime.settings import StreamSettings

log = structlog.get_logger(__name__)

# Longer than the outbox relay takes to re-publish what a crash left unsent (it retries every few
# seconds), so a re-publish of an already stored event is dropped by the broker.
DUPLICATE_WINDOW_SECONDS = 15 * 60
DAY_SECONDS = 86_400
# JetStream's error code for "insufficient storage resources available".
INSUFFICIENT_STORAGE = 10047


def stream_configs(settings: StreamSettings | None = None) -> tuple[StreamConfig, ...]:
    """The streams, with the `DLQ` limits of `settings` (by default, of the environment)."""
    if settings is None:
        from runtime.settings import StreamSettings  # it imports this module for the window

        settings = StreamSettings()
    dlq_max_age = settings.dlq_max_age_days * DAY_SECONDS
    return (
        StreamConfig(
            name=EVENTS_STREAM,
            description=(
                "Every domain event of every tenant: the durable log that projections and replay read."
            ),
            subjects=[f"{EVENTS_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            # History is the product's memory: no limit of age, count or size, ever.
            max_age=0,
            max_msgs=-1,
            max_bytes=-1,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=1,
        ),
        StreamConfig(
            name=DLQ_STREAM,
            description=(
                "Messages a consumer gave up on, with the error, for an operator to inspect and replay."
            ),
            subjects=[f"{DLQ_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            # Past a limit the oldest dead letters go: refusing a new one would leave its consumer
            # unable to move on.
            discard=DiscardPolicy.OLD,
            max_age=dlq_max_age,
            max_msgs=settings.dlq_max_messages,
            max_bytes=settings.dlq_max_bytes,
            # The server wants the window within the age limit.
            duplicate_window=min(DUPLICATE_WINDOW_SECONDS, dlq_max_age),
            num_replicas=1,
        ),
    )


class BusUnreachable(ConnectionError):
    """A short-lived tool could not connect to NATS."""


def connection_failure(exc: BaseException) -> str:
    """Why a connection failed, briefly: `Connection refused` rather than a socket's repr."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc).removeprefix("nats: ") or type(exc).__name__


async def connect(url: str, name: str, *, reconnect: bool = True) -> Client:
    """A long-lived service connection reconnects forever (each failure logged); a short-lived
    tool's tries twice, then raises BusUnreachable naming the server and the reason."""
    failures: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        failures.append(exc)
        if reconnect:
            log.warning("nats_error", url=redact_url(url), error=connection_failure(exc))

    try:
        return await nats.connect(
            url,
            name=name,
            # nats-py gives up on a server after this many failed attempts, but 0 means "never".
            max_reconnect_attempts=-1 if reconnect else 1,
            allow_reconnect=reconnect,
            reconnect_time_wait=0.5,
            error_cb=on_error,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        if reconnect:
            raise
        reason = connection_failure(failures[-1] if failures else exc)
        raise BusUnreachable(f"cannot reach NATS at {redact_url(url)}: {reason}") from exc


async def declare_streams(js: JetStreamContext, settings: StreamSettings | None = None) -> None:
    """Create the streams, or bring existing ones to the current configuration (e.g. new `DLQ`
    limits)."""
    for config in stream_configs(settings):
        try:
            await _declare(js, config)
        except APIError as exc:
            # nats-server sets a stream's byte limit aside in its store up front; a small store
            # (a small disk) cannot, and would otherwise keep every service from starting. The age
            # and count limits still bound the stream.
            if exc.err_code != INSUFFICIENT_STORAGE or not config.max_bytes or config.max_bytes < 0:
                raise
            log.warning(
                "stream_byte_limit_not_reserved",
                stream=config.name,
                max_bytes=config.max_bytes,
                error=exc.description,
            )
            config.max_bytes = -1
            await _declare(js, config)


async def _declare(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream_created", stream=config.name)
        return
    try:
        await js.update_stream(config)
    except BadRequestError as exc:  # e.g. a storage change, which needs an operator
        if exc.err_code == INSUFFICIENT_STORAGE:
            raise
        log.warning("stream_update_refused", stream=config.name, error=str(exc))


def event_headers(event: EventEnvelope) -> dict[str, str]:
    return {"Nats-Msg-Id": str(event.id), "Correlation-Id": event.correlation_id}


async def publish_event(js: JetStreamContext, event: EventEnvelope, timeout: float = 5.0) -> int:
    """Publish one event; the broker drops a second publish of the same id. Returns its stream sequence."""
    subject = event_subject(event.tenant_id, event.type)
    with tracing.span(f"publish {event.type}", "producer", attributes={"messaging.system": "nats"}):
        ack = await js.publish(
            subject,
            event.to_bytes(),
            timeout=timeout,
            stream=EVENTS_STREAM,
            headers=tracing.inject(event_headers(event)),
        )
    return int(ack.seq)
