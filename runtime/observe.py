"""What every consumer does around one event: log lines carry its correlation id, a trace span
continues the publisher's trace, and the handling is counted and timed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping

import structlog

from contracts.envelope import EventEnvelope
from runtime import tracing
from runtime.metrics import EVENT_SECONDS, EVENTS_HANDLED


@contextlib.contextmanager
def consuming(consumer: str, event: EventEnvelope, headers: Mapping[str, str] | None) -> Iterator[None]:
    """Around the handling of `event` by `consumer`; an exception leaving the block counts as an
    error outcome (and is re-raised for the caller's retry or dead letter)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        with (
            structlog.contextvars.bound_contextvars(
                correlation_id=event.correlation_id, event_id=str(event.id), event_type=event.type
            ),
            tracing.span(
                f"{consumer} {event.type}",
                "consumer",
                parent=headers,
                attributes={"messaging.system": "nats", "messaging.consumer.group.name": consumer},
            ),
        ):
            yield
        outcome = "ok"
    except asyncio.CancelledError:  # shutting down: the message will be redelivered
        outcome = "cancelled"
        raise
    finally:
        EVENTS_HANDLED.labels(consumer, event.type, outcome).inc()
        EVENT_SECONDS.labels(consumer, event.type).observe(time.perf_counter() - started)
