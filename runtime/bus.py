"""NATS connections, the stream declarations (made here and only here), and event publishing."""

from __future__ import annotations

import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from contracts.envelope import EventEnvelope
from contracts.subjects import (
    DLQ_PREFIX,
    DLQ_STREAM,
    EVENTS_PREFIX,
    EVENTS_STREAM,
    event_subject,
)
from runtime import tracing

log = structlog.get_logger(__name__)

# Longer than the outbox relay takes to re-publish what a crash left unsent (it retries every few
# seconds), so a re-publish of an already stored event is dropped by the broker.
DUPLICATE_WINDOW_SECONDS = 15 * 60

STREAMS = (
    StreamConfig(
        name=EVENTS_STREAM,
        description="Every domain event of every tenant: the durable log that projections and replay read.",
        subjects=[f"{EVENTS_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=0,  # history is the product's memory: no age limit
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=1,
    ),
    StreamConfig(
        name=DLQ_STREAM,
        description="Messages a consumer gave up on, with the error, for an operator to inspect and replay.",
        subjects=[f"{DLQ_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=0,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=1,
    ),
)


async def connect(url: str, name: str, *, reconnect: bool = True) -> Client:
    """A long-lived service connection reconnects forever; a short-lived tool's gives up at once."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc))

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1 if reconnect else 0,
        allow_reconnect=reconnect,
        reconnect_time_wait=0.5,
        error_cb=on_error,
    )


async def declare_streams(js: JetStreamContext) -> None:
    for config in STREAMS:
        assert config.name
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("stream_created", stream=config.name)
            continue
        try:
            await js.update_stream(config)
        except BadRequestError as exc:  # e.g. a storage change, which needs an operator
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
