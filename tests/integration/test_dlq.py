"""Dead letters on the real bus: `sre-copilot dlq` lists, shows, replays and drops what
`runtime.consumer.dead_letter` stored; and the `DLQ` stream's limits.

The consumer side of a replay is a responder of the test's own on `cmd.dlq.<consumer>.replay` (a
real subscription on the session's NATS, under a consumer name no service uses), which records what
it was sent and answers as it is told: that drives the CLI's side of the protocol for real."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy
from typer.testing import CliRunner, Result

from contracts.envelope import EventEnvelope
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, dead_letter_replay_subject, event_subject
from runtime import consumer as consumers
from runtime.bus import DAY_SECONDS, connect, declare_streams, publish_event
from runtime.dlq import DeadLetter, DlqError, dead_letter, dead_letters
from runtime.settings import StreamSettings
from sre_copilot import embedded
from sre_copilot.cli import app
from sre_copilot.supervisor import Platform
from tests.events import probe

runner = CliRunner()


def fresh_consumer() -> str:
    return f"test_dlq_{uuid.uuid4().hex[:12]}"


async def dlq(platform: Platform, *args: str, input: str | None = None) -> Result:
    """`sre-copilot dlq ...` in a thread (it runs its own event loop), against the session's NATS."""
    assert platform.nats_url
    argv = ["dlq", *args, "--nats-url", platform.nats_url]
    return await asyncio.to_thread(lambda: runner.invoke(app, argv, input=input, env={"COLUMNS": "250"}))


async def given_up_on(js: JetStreamContext, consumer: str, error: str = "database said no") -> EventEnvelope:
    """An event really delivered by JetStream, then given up on by `consumer` the way every
    consumer does it (runtime.consumer.dead_letter)."""
    tenant = f"t_{uuid.uuid4().hex}"
    event = probe(tenant, correlation_id=f"corr-{uuid.uuid4().hex[:8]}")
    await publish_event(js, event)
    sub = await js.pull_subscribe(
        event_subject(tenant, event.type),
        stream=EVENTS_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT, inactive_threshold=5.0
        ),
    )
    try:
        [msg] = await sub.fetch(1, timeout=5)
        await consumers.dead_letter(js, consumer, msg, RuntimeError(error), attempt=5)
    finally:
        await sub.unsubscribe()
    return event


async def letters_of(js: JetStreamContext, consumer: str) -> list[DeadLetter]:
    return [letter async for letter in dead_letters(js, consumer)]


class Responder:
    """Stands in for the consumer's replay handler: records each request, answers with `answer`."""

    def __init__(self, answer: Callable[[Msg], dict[str, Any]]) -> None:
        self.answer = answer
        self.got: list[tuple[bytes, dict[str, str]]] = []

    async def handle(self, msg: Msg) -> None:
        self.got.append((msg.data, dict(msg.headers or {})))
        await msg.respond(json.dumps(self.answer(msg)).encode())


@asynccontextmanager
async def responding(
    nc: Client, consumer: str, answer: Callable[[Msg], dict[str, Any]]
) -> AsyncIterator[Responder]:
    responder = Responder(answer)
    sub = await nc.subscribe(dead_letter_replay_subject(consumer), cb=responder.handle)
    await nc.flush()  # subscribed on the server before the CLI asks
    try:
        yield responder
    finally:
        await sub.unsubscribe()


def ok(_: Msg) -> dict[str, Any]:
    return {"ok": True}


async def test_list_and_show_read_what_a_consumer_gave_up_on(
    js: JetStreamContext, platform: Platform
) -> None:
    mine, other = fresh_consumer(), fresh_consumer()
    event = await given_up_on(js, mine)
    # A message that was never an event (given up on at once: it does not parse).
    await js.publish(
        f"dlq.{mine}",
        b"\x00 not an event",
        stream=DLQ_STREAM,
        headers={
            "Dlq-Consumer": mine,
            "Dlq-Original-Subject": "events.t_x.incident.created",
            "Dlq-Original-Seq": "7",
            "Dlq-Attempts": "1",
            "Dlq-Error": "ValueError: not JSON",
        },
    )
    await given_up_on(js, other)

    listed = await dlq(platform, "list", "--consumer", mine, "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["consumer"] for r in rows] == [mine, mine]
    real, garbage = rows
    assert real["event_type"] == "deploy.recorded" and real["event_id"] == str(event.id)
    assert real["original_subject"] == event_subject(event.tenant_id, event.type)
    assert isinstance(real["original_seq"], int) and real["original_seq"] > 0
    assert real["attempts"] == 5 and real["error"] == "RuntimeError: database said no"
    assert real["time"] and real["id"] < garbage["id"]
    assert garbage["event_type"] is None and garbage["error"] == "ValueError: not JSON"

    table = await dlq(platform, "list")
    assert table.exit_code == 0, table.output
    lines = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.count("│") > 5}
    assert mine in lines[str(real["id"])] and "deploy.recorded" in lines[str(real["id"])]
    assert "(not an event)" in lines[str(garbage["id"])]
    assert any(other in line for line in lines.values())

    shown = await dlq(platform, "show", str(real["id"]))
    assert shown.exit_code == 0, shown.output
    assert f"Dlq-Consumer: {mine}" in shown.stdout
    assert "Dlq-Error: RuntimeError: database said no" in shown.stdout
    assert f"Correlation-Id: {event.correlation_id}" in shown.stdout  # the original headers too
    body = shown.stdout[shown.stdout.index("{") :]
    assert json.loads(body)["id"] == str(event.id)

    as_json = json.loads((await dlq(platform, "show", str(real["id"]), "--json")).stdout)
    assert as_json["event"]["data"] == event.data and as_json["headers"]["Dlq-Original-Seq"] == str(
        real["original_seq"]
    )
    not_json = await dlq(platform, "show", str(garbage["id"]))
    assert "not a JSON event" in not_json.stdout and "not an event" in not_json.stdout

    missing = await dlq(platform, "show", str(10**12))
    assert missing.exit_code == 1 and f"no dead letter {10**12}" in missing.stderr
    bad = await dlq(platform, "list", "--consumer", "a.>")
    assert bad.exit_code == 2


async def test_replay_hands_the_letter_to_its_consumer_and_deletes_it_once_handled(
    nc: Client, js: JetStreamContext, platform: Platform
) -> None:
    consumer = fresh_consumer()
    event = await given_up_on(js, consumer)
    [letter] = await letters_of(js, consumer)

    async with responding(nc, consumer, ok) as responder:
        replayed = await dlq(platform, "replay", str(letter.id))
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {letter.id}" in replayed.stdout
    [(data, headers)] = responder.got
    assert EventEnvelope.from_bytes(data).id == event.id
    assert data == event.to_bytes()  # the stored bytes, untouched
    assert headers["Dlq-Consumer"] == consumer
    assert headers["Dlq-Original-Seq"] == str(letter.original_seq)
    assert headers["Dlq-Error"] == "RuntimeError: database said no"
    assert headers["Correlation-Id"] == event.correlation_id
    with pytest.raises(DlqError):
        await dead_letter(js, letter.id)  # handled: gone from DLQ
    again = await dlq(platform, "replay", str(letter.id))
    assert again.exit_code == 1 and "no dead letter" in again.stderr


async def test_a_refused_replay_keeps_the_letter_and_says_why(
    nc: Client, js: JetStreamContext, platform: Platform
) -> None:
    consumer = fresh_consumer()
    await given_up_on(js, consumer)
    [letter] = await letters_of(js, consumer)

    def still_broken(_: Msg) -> dict[str, Any]:
        return {"error": {"code": "internal", "message": "the projector still cannot apply it"}}

    async with responding(nc, consumer, still_broken) as responder:
        refused = await dlq(platform, "replay", str(letter.id))
    assert refused.exit_code == 1
    assert "internal: the projector still cannot apply it" in refused.stderr
    assert len(responder.got) == 1
    assert (await dead_letter(js, letter.id)).id == letter.id  # kept

    # Nobody listening (the service is down, or predates replays): kept too, and said so.
    unanswered = await dlq(platform, "replay", str(letter.id))
    assert unanswered.exit_code == 1 and "nobody answers" in unanswered.stderr
    assert (await dead_letter(js, letter.id)).id == letter.id


async def test_replay_all_of_a_consumer_deletes_what_was_handled_and_keeps_the_rest(
    nc: Client, js: JetStreamContext, platform: Platform
) -> None:
    consumer, bystander = fresh_consumer(), fresh_consumer()
    events = [await given_up_on(js, consumer) for _ in range(3)]
    await given_up_on(js, bystander)
    refused_id = str(events[1].id)

    def answer(msg: Msg) -> dict[str, Any]:
        if json.loads(msg.data)["id"] == refused_id:
            return {"error": {"code": "conflict", "message": "not yet", "details": []}}
        return {"ok": True}

    async with responding(nc, consumer, answer) as responder:
        replayed = await dlq(platform, "replay", "--all", "--consumer", consumer)
    assert replayed.exit_code == 1, replayed.output
    assert "replayed 2, failed 1" in replayed.stdout
    assert "conflict: not yet" in replayed.stderr
    # Oldest first, each once.
    assert [json.loads(data)["id"] for data, _ in responder.got] == [str(e.id) for e in events]
    assert [letter.event_id for letter in await letters_of(js, consumer)] == [refused_id]
    assert len(await letters_of(js, bystander)) == 1  # another consumer's are not touched

    async with responding(nc, consumer, ok):
        rest = await dlq(platform, "replay", "--all", "--consumer", consumer)
    assert rest.exit_code == 0 and "replayed 1, failed 0" in rest.stdout
    assert await letters_of(js, consumer) == []
    nothing = await dlq(platform, "replay", "--all", "--consumer", consumer)
    assert nothing.exit_code == 0 and "no dead letters to replay" in nothing.stdout

    assert (await dlq(platform, "replay")).exit_code == 2  # ids or --all
    assert (await dlq(platform, "replay", "1", "--all")).exit_code == 2


async def test_drop_deletes_only_after_confirmation(js: JetStreamContext, platform: Platform) -> None:
    consumer = fresh_consumer()
    for _ in range(2):
        await given_up_on(js, consumer)
    first, second = await letters_of(js, consumer)

    declined = await dlq(platform, "drop", str(first.id), input="n\n")
    assert declined.exit_code == 1
    assert [x.id for x in await letters_of(js, consumer)] == [first.id, second.id]
    no_answer = await dlq(platform, "drop", str(first.id))  # no terminal, no input: not dropped
    assert no_answer.exit_code == 1
    assert len(await letters_of(js, consumer)) == 2

    confirmed = await dlq(platform, "drop", str(first.id), input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert [x.id for x in await letters_of(js, consumer)] == [second.id]
    forced = await dlq(platform, "drop", str(second.id), "--yes")
    assert forced.exit_code == 0 and "dropped 1" in forced.stdout
    assert await letters_of(js, consumer) == []


async def test_dlq_has_limits_and_events_has_none(js: JetStreamContext) -> None:
    dlq_config = (await js.stream_info(DLQ_STREAM)).config
    assert dlq_config.max_age == pytest.approx(30 * DAY_SECONDS)
    assert dlq_config.max_msgs == 100_000 and dlq_config.max_bytes == 256 * 1024**2
    assert dlq_config.discard == DiscardPolicy.OLD
    events_config = (await js.stream_info(EVENTS_STREAM)).config
    assert not events_config.max_age  # 0: no age limit
    assert events_config.max_msgs == -1 and events_config.max_bytes == -1


async def test_applying_new_dlq_limits_and_the_oldest_letters_go_first(
    tmp_path: Path,
) -> None:
    server = embedded.start_nats(tmp_path, durable=False)
    try:
        nc = await connect(server.url, "tests", reconnect=False)
        js = nc.jetstream()
        await declare_streams(js, StreamSettings())
        smaller = StreamSettings(dlq_max_age_days=2, dlq_max_messages=2)
        # A start with other limits reports the difference and changes nothing...
        [drift] = await declare_streams(js, smaller)
        assert drift.stream == DLQ_STREAM and set(drift.differences) == {"max_age", "max_msgs"}
        assert (await js.stream_info(DLQ_STREAM)).config.max_msgs == 100_000
        # ... `streams apply` makes it.
        await declare_streams(js, smaller, apply=True)
        config = (await js.stream_info(DLQ_STREAM)).config
        assert config.max_age == pytest.approx(2 * DAY_SECONDS) and config.max_msgs == 2
        for n in range(3):  # past the limit a dead letter is still taken: the oldest goes
            await js.publish("dlq.someone", f"letter {n}".encode(), stream=DLQ_STREAM)
        kept = [letter.data async for letter in dead_letters(js)]
        assert kept == [b"letter 1", b"letter 2"]
        events_config = (await js.stream_info(EVENTS_STREAM)).config
        assert not events_config.max_age
        assert events_config.max_msgs == -1 and events_config.max_bytes == -1
        await nc.close()
    finally:
        server.stop()


async def test_a_store_too_small_for_the_byte_limit_still_gets_its_streams(tmp_path: Path) -> None:
    """nats-server sets a stream's byte limit aside up front: on a small store (here 64 MB) the
    DLQ is declared without one, bounded by age and count, instead of keeping services from
    starting."""
    port = embedded.free_port()
    config = tmp_path / "nats.conf"
    config.write_text(
        f'listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: "{tmp_path}"\n  max_file_store: 64MB\n}}\n'
    )
    log = tmp_path / "nats.log"
    with log.open("ab") as out:
        process = subprocess.Popen([embedded.nats_server_binary(), "-c", str(config)], stdout=out, stderr=out)
    try:
        embedded._wait_for_port(port, process, "nats-server", log, 20.0)
        nc = await connect(f"nats://127.0.0.1:{port}", "tests", reconnect=False)
        js = nc.jetstream()
        for _ in range(2):  # created, then declared again as at every start
            await declare_streams(js, StreamSettings())
            dlq_config = (await js.stream_info(DLQ_STREAM)).config
            assert dlq_config.max_bytes == -1
            assert dlq_config.max_msgs == 100_000 and dlq_config.max_age == pytest.approx(30 * DAY_SECONDS)
        await js.publish("dlq.someone", b"a dead letter", stream=DLQ_STREAM)
        await nc.close()
    finally:
        process.terminate()
        process.wait(10)
