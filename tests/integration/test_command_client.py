"""runtime.commands.CommandClient against the session's nats-server: the subject from the model, the
correlation id and trace context on the wire, an ErrorReply as CommandFailed, the reply validated;
the gateway's HTTP mapping of the same failures; and every command subject declared in contracts
answered by a running service."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ValidationError

import contracts.commands as cc
from contracts.commands import Command, CommandFailed, Done, ErrorCode
from gateway.commands import CommandClient as GatewayCommands
from gateway.errors import ApiError
from runtime import commands, tracing
from runtime.bus import connect
from sre_copilot.supervisor import Platform

SERVICE = f"cc_{uuid.uuid4().hex[:8]}"


class Echo(Command):
    SUBJECT: ClassVar[str] = f"cmd.{SERVICE}.echo"
    text: str
    fail: bool = False
    bad_reply: bool = False


class Silent(Command):
    SUBJECT: ClassVar[str] = f"cmd.{SERVICE}.silent"


class Nobody(Command):
    SUBJECT: ClassVar[str] = f"cmd.{SERVICE}.nobody"


class Echoed(BaseModel):
    text: str
    correlation_id: str
    traceparent: str | None


@pytest.fixture(scope="module")
async def responder(nc: Client) -> AsyncIterator[list[Msg]]:
    seen: list[Msg] = []

    async def echo(msg: Msg) -> None:
        seen.append(msg)
        body = json.loads(msg.data)
        if body.get("fail"):
            reply: dict[str, Any] = {
                "error": {"code": "conflict", "message": "moved on", "details": {"state": "resolved"}}
            }
        elif body.get("bad_reply"):
            reply = {"unexpected": True}
        else:
            traceparent = (msg.headers or {}).get("traceparent")
            reply = {
                "text": body["text"],
                "correlation_id": body["correlation_id"],
                "traceparent": traceparent,
            }
        await msg.respond(json.dumps(reply).encode())

    async def silent(msg: Msg) -> None:
        seen.append(msg)

    subs = [await nc.subscribe(Echo.subject(), cb=echo), await nc.subscribe(Silent.subject(), cb=silent)]
    await nc.flush()
    yield seen
    for sub in subs:
        await sub.unsubscribe()


async def test_the_client_sends_on_the_models_subject_with_correlation_and_trace(
    nc: Client, responder: list[Msg]
) -> None:
    tracing.configure_tracing("command-client-tests", exporter=InMemorySpanExporter())
    client = commands.CommandClient(nc, timeout=5)
    with structlog.contextvars.bound_contextvars(correlation_id="from-the-request"):
        echoed = await client.call(Echo(correlation_id="", text="hello"), Echoed)
        own = await client.call(Echo(correlation_id="its-own", text="again"), Echoed)
    assert echoed.text == "hello" and echoed.correlation_id == "from-the-request"
    assert own.correlation_id == "its-own"
    # Fields left unset stay off the wire: a handler can tell "absent" from a default or null.
    assert "fail" not in json.loads(responder[0].data)
    assert echoed.traceparent and echoed.traceparent.startswith("00-")

    with pytest.raises(CommandFailed) as failed:
        await client.call(Echo(correlation_id="c", text="x", fail=True), Echoed)
    assert (failed.value.code, failed.value.message, failed.value.details) == (
        ErrorCode.CONFLICT,
        "moved on",
        {"state": "resolved"},
    )
    with pytest.raises(ValidationError):
        await client.call(Echo(correlation_id="c", text="x", bad_reply=True), Echoed)

    with pytest.raises(commands.NoResponders) as nobody:
        await client.call(Nobody(correlation_id="c"), Done)
    assert nobody.value.service == SERVICE
    with pytest.raises(commands.CommandTimedOut) as late:
        await client.call(Silent(correlation_id="c"), Done, timeout=0.2)
    # An OSError, as nats-py's timeout is: command handlers answer "unavailable" for it.
    assert isinstance(late.value, TimeoutError) and late.value.service == SERVICE
    assert [m.subject for m in responder][-1] == Silent.subject()


async def test_the_gateway_maps_the_same_failures_to_http(
    nc: Client, platform: Platform, responder: list[Msg]
) -> None:
    gateway = GatewayCommands(nc, timeout=5)
    echoed = await gateway.call(Echo, {"text": "hi"}, Echoed)
    assert echoed.text == "hi"
    cases: list[tuple[Any, dict[str, Any], float | None, int, str]] = [
        (Echo, {"text": "x", "fail": True}, None, 409, "conflict"),
        # Refused before it is sent, as the handler would have refused it.
        (Echo, {"text": 1}, None, 422, "validation_error"),
        (Nobody, {}, None, 503, "unavailable"),
        (Silent, {}, 0.2, 504, "timeout"),
        (f"cmd.{SERVICE}.nobody", {}, None, 503, "unavailable"),
    ]
    for command, body, timeout, status, code in cases:
        with pytest.raises(ApiError) as raised:
            await gateway.call(command, body, Echoed, timeout=timeout)
        assert (raised.value.status, raised.value.code) == (status, code), command

    assert platform.nats_url
    closed = await connect(platform.nats_url, "command-client-closed", reconnect=False)
    await closed.close()
    with pytest.raises(ApiError) as down:
        await GatewayCommands(closed, timeout=5).call(Echo, {"text": "x"}, Echoed)
    assert (down.value.status, down.value.code) == (503, "unavailable")
    with pytest.raises(commands.BusUnavailable):
        await commands.CommandClient(closed, timeout=5).call(Echo(correlation_id="c", text="x"), Echoed)


def declared_commands() -> list[type[Command]]:
    return [
        model
        for _, model in inspect.getmembers(cc, inspect.isclass)
        if issubclass(model, Command) and model is not Command and model.__module__ == cc.__name__
    ]


async def test_every_declared_subject_is_one_commands_and_a_service_handles_it(nc: Client) -> None:
    models = declared_commands()
    subjects = [model.subject() for model in models]
    assert len(set(subjects)) == len(subjects), subjects

    async def ask(subject: str) -> Any:
        # An empty body: every handler refuses it as invalid, which shows it is there.
        return json.loads((await nc.request(subject, b"{}", timeout=10)).data)

    replies = await asyncio.gather(*(ask(subject) for subject in subjects))
    for subject, reply in zip(subjects, replies, strict=True):
        assert reply["error"]["code"] == ErrorCode.VALIDATION.value, (subject, reply)
