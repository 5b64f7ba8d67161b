"""NATS connections, the stream declarations (made here and only here), and event publishing."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

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
            num_replicas=settings.stream_replicas,
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
            num_replicas=settings.stream_replicas,
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


def nats_servers(url: str) -> list[str]:
    """`NATS_URL` names one server, or a cluster's servers separated by commas: the client connects to
    one of them and moves to another when that one goes away."""
    servers = [server.strip() for server in url.split(",") if server.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


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
            servers=nats_servers(url),
            name=name,
            # nats-py gives up on a server after this many failed attempts, but 0 means "never".
            max_reconnect_attempts=-1 if reconnect else 1,
            allow_reconnect=reconnect,
            reconnect_time_wait=0.5,
            # A server that stops answering (frozen, cut off) is left for another of the cluster's
            # within 10-15 s, rather than nats-py's default of minutes.
            ping_interval=5,
            max_outstanding_pings=2,
            error_cb=on_error,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        if reconnect:
            raise
        reason = connection_failure(failures[-1] if failures else exc)
        raise BusUnreachable(f"cannot reach NATS at {redact_url(url)}: {reason}") from exc


# What a declaration manages of a stream; anything else (its state, placement, metadata) is left alone.
MANAGED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "max_msgs",
    "max_bytes",
    "duplicate_window",
    "num_replicas",
)


@dataclass(frozen=True)
class StreamDrift:
    """How an existing stream differs from what this version declares: field -> (has, wanted)."""

    stream: str
    differences: dict[str, tuple[Any, Any]]


def drift(existing: StreamConfig, wanted: StreamConfig) -> dict[str, tuple[Any, Any]]:
    def norm(field: str, value: Any) -> Any:
        if field == "subjects":
            return sorted(value or [])
        if field in {"max_age", "duplicate_window"}:
            return round(float(value or 0), 3)
        if field in {"max_msgs", "max_bytes"}:
            return -1 if value in (None, 0) else value
        if field == "num_replicas":
            return value or 1
        return value

    return {
        field: (getattr(existing, field), getattr(wanted, field))
        for field in MANAGED
        if norm(field, getattr(existing, field)) != norm(field, getattr(wanted, field))
    }


async def declare_streams(
    js: JetStreamContext, settings: StreamSettings | None = None, *, apply: bool = False
) -> list[StreamDrift]:
    """Create the streams that are missing. An existing stream is never changed silently (its
    replicas or limits may be an operator's choice): a difference from this version's declaration is
    reported (logged, and returned); with `apply` (`sre-copilot streams apply`) it is made."""
    drifts: list[StreamDrift] = []
    for config in stream_configs(settings):
        try:
            found = await _declare(js, config, apply)
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
            found = await _declare(js, config, apply)
        if found is not None:
            drifts.append(found)
    return drifts


async def _declare(js: JetStreamContext, config: StreamConfig, apply: bool) -> StreamDrift | None:
    assert config.name
    try:
        existing = (await js.stream_info(config.name)).config
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream_created", stream=config.name, replicas=config.num_replicas)
        return None
    differences = drift(existing, config)
    if not differences:
        return None
    if not apply:
        log.warning(
            "stream_differs_from_declaration",
            stream=config.name,
            differences={k: {"has": v[0], "wanted": v[1]} for k, v in differences.items()},
            hint="`sre-copilot streams apply` makes the change",
        )
        return StreamDrift(config.name, differences)
    await js.update_stream(config)
    log.info("stream_updated", stream=config.name, changed=sorted(differences))
    return StreamDrift(config.name, differences)


def event_headers(event: EventEnvelope) -> dict[str, str]:
    return {"Nats-Msg-Id": str(event.id), "Correlation-Id": event.correlation_id}


# While a replicated stream elects a new leader (a node died), publishes get "no responders" for a
# moment: tried again, with the same Nats-Msg-Id, so none is stored twice.
PUBLISH_RETRY_DELAYS = (0.25, 0.5, 1.0)


def _retryable_publish_error(exc: BaseException) -> bool:
    """A "no responders" answer (no stream leader right now), not a timeout: a bus that does not
    answer at all is left to the outbox relay, so that commands stop waiting on it."""
    if isinstance(exc, nats.errors.NoRespondersError):
        return True
    return isinstance(exc, APIError) and exc.code == 503


async def publish_event(js: JetStreamContext, event: EventEnvelope, timeout: float = 5.0) -> int:
    """Publish one event; the broker drops a second publish of the same id. Returns its stream sequence."""
    subject = event_subject(event.tenant_id, event.type)
    payload, headers = event.to_bytes(), event_headers(event)
    with tracing.span(f"publish {event.type}", "producer", attributes={"messaging.system": "nats"}):
        for delay in PUBLISH_RETRY_DELAYS:
            try:
                return await _publish_once(js, subject, payload, headers, timeout)
            except Exception as exc:
                if not _retryable_publish_error(exc):
                    raise
                log.info("publish_retried", subject=subject, error=repr(exc), after_seconds=delay)
                await asyncio.sleep(delay)
        return await _publish_once(js, subject, payload, headers, timeout)


async def _publish_once(
    js: JetStreamContext, subject: str, payload: bytes, headers: dict[str, str], timeout: float
) -> int:
    ack = await js.publish(
        subject, payload, timeout=timeout, stream=EVENTS_STREAM, headers=tracing.inject(dict(headers))
    )
    return int(ack.seq)
