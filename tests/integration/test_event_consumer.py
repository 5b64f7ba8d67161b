"""The one event consumer (runtime.consumer.EventConsumer) against the session's real NATS and
PostgreSQL: one aggregate's events in order while aggregates run side by side, once per event id,
dead letters from failures and from JetStream's max-deliveries advisory, and replays of them."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, dead_letter_replay_subject, dead_letter_subject
from gateway.projection.skip import skip
from incidents import db as incidents_db
from runtime.bus import publish_event
from runtime.consumer import Delivery, EventConsumer, RetryLater
from tests.events import created, edited
from tests.integration.streams import messages_on


def subject_of(tenant_id: str) -> str:
    return f"events.{tenant_id}.incident.>"


@pytest.fixture
async def consumers(
    nc: Client, engine: AsyncEngine
) -> AsyncIterator[Callable[..., Awaitable[EventConsumer]]]:
    started: list[EventConsumer] = []

    async def start(
        handler: Callable[[Delivery], Awaitable[None]], tenant_id: str, **options: object
    ) -> EventConsumer:
        durable = f"test_{uuid.uuid4().hex[:12]}"
        consumer = EventConsumer(
            nc,
            engine,
            durable=durable,
            filter_subjects=[subject_of(tenant_id)],
            handler=handler,
            consumed=incidents_db.consumed,
            backoff=(0.05,),
            **options,  # type: ignore[arg-type]
        )
        await consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        await consumer.stop()
        await nc.jetstream().delete_consumer(EVENTS_STREAM, consumer.durable)


async def until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def history(tenant_id: str, changes: int) -> list[EventEnvelope]:
    events = [created(tenant_id)]
    for n in range(changes):
        events.append(edited(events[-1], title=f"title {n}"))
    return events


async def test_one_aggregate_in_order_while_aggregates_run_side_by_side(
    js: JetStreamContext, consumers: Callable[..., Awaitable[EventConsumer]]
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    seen: dict[str, list[int]] = defaultdict(list)
    running, most = 0, 0

    async def handler(delivery: Delivery) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(random.uniform(0, 0.03))
        seen[delivery.event.aggregate_id].append(delivery.event.aggregate_version)
        running -= 1

    histories = [history(tenant_id, 9) for _ in range(4)]
    interleaved = [h[n] for n in range(10) for h in histories]
    for event in interleaved:
        await publish_event(js, event)
    await consumers(handler, tenant_id, max_in_flight=16)
    await until(lambda: sum(map(len, seen.values())) == len(interleaved))
    assert all(versions == list(range(1, 11)) for versions in seen.values()), dict(seen)
    assert most > 1, "aggregates were not handled side by side"


async def test_an_event_is_handled_once_by_its_id_even_after_the_duplicate_window(
    js: JetStreamContext, consumers: Callable[..., Awaitable[EventConsumer]]
) -> None:
    """A republish the broker cannot drop any more (a new Nats-Msg-Id, as after its 15-minute
    duplicate window) is still the same event: the handler runs once."""
    tenant_id = f"t_{uuid.uuid4().hex}"
    handled: list[uuid.UUID] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.event.id)

    event, marker = created(tenant_id), created(tenant_id)
    await publish_event(js, event)
    await js.publish(
        f"events.{tenant_id}.incident.created", event.to_bytes(), headers={"Nats-Msg-Id": f"{event.id}:late"}
    )
    await publish_event(js, marker)
    await consumers(handler, tenant_id)
    await until(lambda: marker.id in handled)
    await asyncio.sleep(0.3)
    assert handled.count(event.id) == 1


async def test_a_failing_event_is_dead_lettered_replayed_and_replayed_again_harmlessly(
    nc: Client, js: JetStreamContext, consumers: Callable[..., Awaitable[EventConsumer]]
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    poison, after = created(tenant_id), created(tenant_id)
    broken, handled = True, []

    async def handler(delivery: Delivery) -> None:
        if delivery.event.id == poison.id and broken:
            raise RetryLater("not yet")
        handled.append(delivery.event.id)

    await publish_event(js, poison)
    await publish_event(js, after)
    consumer = await consumers(handler, tenant_id)
    await until(lambda: after.id in handled)  # the poison does not block what follows
    subject = dead_letter_subject(consumer.durable)
    deadline = time.monotonic() + 20
    while not (letters := await messages_on(js, subject, DLQ_STREAM)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    [letter] = letters
    assert letter.headers and letter.headers["Dlq-Attempts"] == "5"
    assert "RetryLater: not yet" in letter.headers["Dlq-Error"]
    assert EventEnvelope.from_bytes(letter.data).id == poison.id

    broken = False  # the cause is fixed: the dead letter goes back to the consumer
    replay = dead_letter_replay_subject(consumer.durable)
    answer = json.loads((await nc.request(replay, letter.data, headers=letter.headers, timeout=10)).data)
    assert answer == {"ok": True, "handled": True}
    again = json.loads((await nc.request(replay, letter.data, headers=letter.headers, timeout=10)).data)
    assert again == {"ok": True, "handled": False}
    assert handled.count(poison.id) == 1
    garbage = json.loads((await nc.request(replay, b"{not json", timeout=10)).data)
    assert garbage["error"]["code"] == "validation"


async def test_a_message_that_dies_with_its_process_every_time_is_dead_lettered_from_the_advisory(
    js: JetStreamContext, consumers: Callable[..., Awaitable[EventConsumer]]
) -> None:
    """No attempt of ours concludes (each delivery's process is gone before it answers): after
    `max_deliver` JetStream's advisory names the message, and it is dead-lettered from there."""
    tenant_id = f"t_{uuid.uuid4().hex}"

    async def handler(delivery: Delivery) -> None:
        raise AssertionError("the crashing fetcher below takes every delivery")

    consumer = await consumers(handler, tenant_id)
    consumer._loops[0].cancel()  # this replica only listens; the "crashing" one below fetches
    info = await js.consumer_info(EVENTS_STREAM, consumer.durable)
    config: ConsumerConfig = info.config
    config.ack_wait = 0.3
    config.ack_policy = AckPolicy.EXPLICIT
    await js.add_consumer(EVENTS_STREAM, config)
    poison = created(tenant_id)
    await publish_event(js, poison)
    crashing = await js.pull_subscribe_bind(durable=consumer.durable, stream=EVENTS_STREAM)
    subject = dead_letter_subject(consumer.durable)
    deadline = time.monotonic() + 30
    while not (letters := await messages_on(js, subject, DLQ_STREAM)):
        assert time.monotonic() < deadline, "no dead letter"
        try:
            await crashing.fetch(1, timeout=0.5)  # and never answered: the process "dies"
        except TimeoutError:
            pass
    [letter] = letters
    assert EventEnvelope.from_bytes(letter.data).id == poison.id
    assert letter.headers and "without an answer" in letter.headers["Dlq-Error"]
    await crashing.unsubscribe()


async def test_an_unreadable_message_is_dead_lettered_at_once_and_the_rest_go_on(
    js: JetStreamContext, engine: AsyncEngine, consumers: Callable[..., Awaitable[EventConsumer]]
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    handled: list[uuid.UUID] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.event.id)

    poison = await js.publish(f"events.{tenant_id}.incident.created", b"\x00 this is not an event")
    # The session's projector stops at it (as it should): move it on, as an operator would.
    await skip(engine, js, poison.seq, "test: poison for the event consumer", force=True)
    after = created(tenant_id)
    await publish_event(js, after)
    consumer = await consumers(handler, tenant_id)
    await until(lambda: after.id in handled)
    deadline = time.monotonic() + 20
    while not (letters := await messages_on(js, dead_letter_subject(consumer.durable), DLQ_STREAM)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    [letter] = letters
    assert letter.data == b"\x00 this is not an event"
    assert letter.headers and letter.headers["Dlq-Attempts"] == "1" and letter.headers["Dlq-Error"]
