"""Bounded redelivery for durable JetStream consumers, then a dead letter, so nothing blocks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from contracts.subjects import DLQ_STREAM, dead_letter_subject
from runtime.db import is_unavailable
from runtime.metrics import DEAD_LETTERED, RETRIES

log = structlog.get_logger(__name__)

MAX_DELIVER = 5
# Back-off between attempts; JetStream applies it to acks that time out, we apply it to naks.
BACKOFF_SECONDS = (0.5, 2.0, 5.0, 15.0)


def attempt_of(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


async def give_up_or_retry(js: JetStreamContext, consumer: str, msg: Msg, error: BaseException) -> bool:
    """After a failed attempt: nak with back-off, or on the last attempt copy the message with its
    error to `dlq.<consumer>` and ack it so the consumer moves on. True when it was dead-lettered."""
    attempt = attempt_of(msg)
    if attempt < MAX_DELIVER:
        delay = BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)]
        log.warning(
            "message_retry", consumer=consumer, subject=msg.subject, attempt=attempt, error=str(error)
        )
        RETRIES.labels(consumer).inc()
        await msg.nak(delay=delay)
        return False
    await dead_letter(js, consumer, msg, error, attempt)
    return True


async def dead_letter(
    js: JetStreamContext, consumer: str, msg: Msg, error: BaseException, attempt: int | None = None
) -> None:
    """Copy the message and its error to `dlq.<consumer>`, then ack it: retrying cannot help."""
    attempt = attempt_of(msg) if attempt is None else attempt
    headers = dict(msg.headers or {})
    headers.pop("Nats-Msg-Id", None)
    try:
        meta = msg.metadata
        stream_seq = str(meta.sequence.stream)
        dlq_id = f"{consumer}:{stream_seq}"
    except Exception:
        stream_seq, dlq_id = "", ""
    headers.update(
        {
            "Dlq-Consumer": consumer,
            "Dlq-Original-Subject": msg.subject,
            "Dlq-Original-Seq": stream_seq,
            "Dlq-Attempts": str(attempt),
            "Dlq-Error": f"{type(error).__name__}: {error}"[:1000],
        }
    )
    if dlq_id:
        headers["Nats-Msg-Id"] = dlq_id
    await js.publish(dead_letter_subject(consumer), msg.data, stream=DLQ_STREAM, headers=headers)
    await msg.ack()
    DEAD_LETTERED.labels(consumer).inc()
    log.error(
        "message_dead_lettered", consumer=consumer, subject=msg.subject, seq=stream_seq, error=str(error)
    )


T = TypeVar("T")
OUTAGE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


async def through_outages(msgs: Sequence[Msg], work: Callable[[], Awaitable[T]], consumer: str) -> T:
    """Run `work` until it succeeds or fails for a reason of its own. While the database is
    unreachable, the messages are kept (JetStream is told they are in progress) and the work is
    retried: an outage is nobody's fault, and must not use up redeliveries or dead-letter events."""
    attempt = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
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
