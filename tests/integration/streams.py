"""Reading what is in the real streams, for assertions."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def messages_on(js: JetStreamContext, subject: str, stream: str = "EVENTS") -> list[Msg]:
    """Every message currently stored on `subject` (wildcards allowed), oldest first."""
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=5.0
        ),
    )
    found: list[Msg] = []
    try:
        while True:
            try:
                batch = await sub.fetch(256, timeout=0.5)
            except TimeoutError:  # nats-py raises its own subclass or asyncio's
                return found
            found.extend(batch)
    finally:
        await sub.unsubscribe()
