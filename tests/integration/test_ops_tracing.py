"""One trace from an HTTP request to the consumer of the event it caused: HTTP (FastAPI's server
span) -> CommandClient -> NATS headers -> the `Service` command wrapper -> `publish_event` -> the
event's NATS headers on JetStream -> `consuming()`. In this process, against the session's NATS,
with an in-memory exporter."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI, Request
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.commands import Command, Done
from contracts.envelope import EventEnvelope
from contracts.events import TenantCreated
from contracts.subjects import EVENTS_STREAM, tenant_events
from gateway.commands import CommandClient
from runtime import tracing
from runtime.bus import publish_event
from runtime.observe import consuming
from runtime.service import Service
from runtime.settings import ServiceSettings
from sre_copilot.supervisor import Platform

SERVICE = "ops_tracing"
SUBJECT = f"cmd.{SERVICE}.emit"


class Emit(Command):
    SUBJECT: ClassVar[str] = SUBJECT
    tenant_id: str


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("ops-tests", exporter=exporter)
    return exporter


@pytest.fixture(scope="module")
async def emitter(platform: Platform, spans: InMemorySpanExporter) -> AsyncIterator[Service]:
    """A small service of its own on the session's bus, with one command that publishes an event."""
    assert platform.nats_url and platform.database_url
    service = Service(
        SERVICE, ServiceSettings(nats_url=platform.nats_url, database_url=platform.database_url)
    )

    @service.handles(Emit)
    async def emit(cmd: Emit) -> Done:
        # A tenant nobody uses: the session's projector applies it harmlessly.
        event = EventEnvelope(
            type="tenant.created",
            tenant_id=cmd.tenant_id,
            aggregate_id=cmd.tenant_id,
            actor="system",
            correlation_id=cmd.correlation_id,
            data=TenantCreated(name="Tracing", slug=cmd.tenant_id).model_dump(mode="json"),
        )
        return Done(seq=await publish_event(service.js, event))

    await service.app.start()
    yield service
    await service.app.stop()


def http_app(nc: Client) -> FastAPI:
    app = FastAPI()
    commands = CommandClient(nc, timeout=10)

    @app.post("/emit/{tenant_id}")
    async def emit(tenant_id: str, request: Request) -> dict[str, int | None]:
        done = await commands.call(Emit, {"tenant_id": tenant_id}, Done)
        return {"seq": done.seq}

    return app


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in finished if s.name == name]
    assert len(found) == 1, [s.name for s in finished]
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_from_http_to_the_consumer_of_the_event(
    emitter: Service, nc: Client, js: JetStreamContext, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    tenant_id = f"t_trace{uuid.uuid4().hex[:12]}"
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("browser") as browser:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        transport = httpx.ASGITransport(app=http_app(nc))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            response = await http.post(f"/emit/{tenant_id}", headers=headers)
    assert response.status_code == 200, response.text
    seq = response.json()["seq"]
    assert seq is not None

    # The event, as a consumer receives it from JetStream, carries the trace in its headers.
    sub = await js.pull_subscribe(
        tenant_events(tenant_id),
        stream=EVENTS_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT, inactive_threshold=30.0
        ),
    )
    [msg] = await sub.fetch(1, timeout=10)
    assert msg.metadata.sequence.stream == seq
    event = EventEnvelope.from_bytes(msg.data)
    assert "traceparent" in (msg.headers or {})
    with consuming("ops_tracing_test", event, msg.headers):
        pass
    await msg.ack()
    await sub.unsubscribe()

    finished = spans.get_finished_spans()
    trace_id = browser.get_span_context().trace_id
    clients = [s for s in finished if s.name == SUBJECT and s.kind == trace.SpanKind.CLIENT]
    servers = [s for s in finished if s.name == SUBJECT and s.kind == trace.SpanKind.SERVER]
    assert len(clients) == 1 and len(servers) == 1, [(s.name, s.kind) for s in finished]
    client, server = clients[0], servers[0]
    http_server = next(
        s for s in finished if s.kind == trace.SpanKind.SERVER and s.name != SUBJECT and s.parent is not None
    )
    producer = by_name(finished, "publish tenant.created")
    consumer = by_name(finished, "ops_tracing_test tenant.created")

    chain = [http_server, client, server, producer, consumer]
    assert {s.context.trace_id for s in chain} == {trace_id}
    assert parent_of(http_server) == browser.get_span_context().span_id
    # Each step is a descendant of the one before (FastAPI may add operation spans in between).
    spans_by_id = {s.context.span_id: s for s in finished}
    for earlier, later in itertools.pairwise(chain):
        ancestors = []
        cursor = parent_of(later)
        while cursor is not None and cursor in spans_by_id:
            ancestors.append(cursor)
            cursor = parent_of(spans_by_id[cursor])
        assert earlier.context.span_id in ancestors, (earlier.name, later.name)
    assert parent_of(server) == client.context.span_id  # across NATS, directly
    assert parent_of(consumer) == producer.context.span_id  # across JetStream, directly
    assert consumer.kind == trace.SpanKind.CONSUMER and producer.kind == trace.SpanKind.PRODUCER
