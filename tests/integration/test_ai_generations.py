"""The AI worker on the real platform (NATS JetStream, PostgreSQL, every service): evidence before
hypotheses, numbered generations triggered by alerts, deploys and regenerate requests, coalescing,
and idempotence under redelivery. Generations past the first are read from the stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker import db as ai_db
from ai_worker.evidence import render
from ai_worker.generation import MAX_GENERATING
from ai_worker.handlers import FILTER_SUBJECTS
from contracts.envelope import EventEnvelope
from contracts.events import (
    AlertAttached,
    DeployRecorded,
    EvidenceItem,
    Severity,
)
from contracts.subjects import AI_WORKER_CONSUMER, EVENTS_STREAM
from runtime.consumer import reconcile_consumer
from tests.conftest import INCIDENT, Tenant, register_tenant
from tests.events import created as created_event

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], seconds: float = 15.0) -> T:
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def messages_on(js: JetStreamContext, subject: str) -> list[Msg]:
    """Every message stored on `subject`, oldest first. (tests/integration/streams.py's helper
    misses the plain asyncio.TimeoutError that nats-py's fetch raises when its deadline runs out
    between its two requests, which fails a test at random.)"""
    sub = await js.pull_subscribe(
        subject,
        stream=EVENTS_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=5.0
        ),
    )
    found: list[Msg] = []
    try:
        while True:
            try:
                batch = await sub.fetch(256, timeout=0.2)
            except (TimeoutError, nats.errors.TimeoutError):
                return found
            found.extend(batch)
    finally:
        await sub.unsubscribe()


async def stream_of(
    js: JetStreamContext, tenant_id: str, incident_id: str
) -> list[tuple[int, EventEnvelope]]:
    """Every event of the tenant about this incident, in stream order, with its sequence."""
    found = []
    for msg in await messages_on(js, f"events.{tenant_id}.>"):
        event = EventEnvelope.from_bytes(msg.data)
        if event.aggregate_id == incident_id or event.data.get("incident_id") == incident_id:
            found.append((msg.metadata.sequence.stream, event))
    return found


async def generations_of(
    js: JetStreamContext, tenant_id: str, incident_id: str, at_least: int
) -> list[tuple[int, EventEnvelope]]:
    async def enough() -> list[tuple[int, EventEnvelope]]:
        events = [
            (s, e) for s, e in await stream_of(js, tenant_id, incident_id) if e.type == "hypothesis.generated"
        ]
        return events if len(events) >= at_least else []

    found = await eventually(enough)
    assert found, f"fewer than {at_least} generation(s) for {incident_id}"
    return found


async def caught_up(js: JetStreamContext, seq: int) -> None:
    """The ai_worker consumer has acked everything up to `seq` (so whatever it was going to do
    about that message is done and published)."""

    async def done() -> bool:
        info = await js.consumer_info(EVENTS_STREAM, AI_WORKER_CONSUMER)
        return info.ack_floor.stream_seq >= seq

    assert await eventually(done), f"ai_worker did not get past {seq}"


async def publish(js: JetStreamContext, event: EventEnvelope, msg_id: str | None = None) -> int:
    ack = await js.publish(
        f"events.{event.tenant_id}.{event.type}",
        event.to_bytes(),
        stream=EVENTS_STREAM,
        headers={"Nats-Msg-Id": msg_id or str(event.id)},
    )
    return int(ack.seq)


def alert_event(
    tenant_id: str, incident_id: str, name: str = "KubeContainerOOMKilled", fingerprint: str = "fp-1"
) -> EventEnvelope:
    return EventEnvelope(
        type="alert.attached",
        tenant_id=tenant_id,
        aggregate_id=incident_id,
        correlation_id=f"alert-{fingerprint}",
        actor="integration:alertmanager",
        data=AlertAttached(
            incident_id=incident_id,
            fingerprint=fingerprint,
            status="firing",
            alertname=name,
            labels={"alertname": name, "service": "payment-api", "severity": "critical"},
            annotations={"summary": f"{name} on payment-api"},
            starts_at=datetime.now(UTC) - timedelta(minutes=10),
            generator_url="http://prometheus:9090/graph?g0.expr=container_oom_events_total+%3E+0&g0.tab=1",
        ).model_dump(mode="json"),
    )


def deploy_event(tenant_id: str, service: str, version: str, deployed_at: datetime) -> EventEnvelope:
    deploy_id = f"dep-{uuid.uuid4().hex[:8]}"
    return EventEnvelope(
        type="deploy.recorded",
        tenant_id=tenant_id,
        aggregate_id=deploy_id,
        correlation_id=f"deploy-{deploy_id}",
        actor="integration:ci",
        data=DeployRecorded(
            deploy_id=deploy_id,
            service_name=service,
            version=version,
            environment="production",
            commit="0123456789abcdef",
            author="alice",
            deployed_at=deployed_at,
        ).model_dump(mode="json"),
    )


async def create_incident(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any] = INCIDENT
) -> dict[str, Any]:
    response = await client.post("/api/v1/incidents", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return response.json()


def items_of(event: EventEnvelope) -> list[EvidenceItem]:
    return [EvidenceItem.model_validate(i) for i in event.data["items"]]


async def test_a_new_incident_gets_evidence_then_hypotheses_caused_by_its_creation(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    incident = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)
    events = await stream_of(js, tenant.tenant_id, incident["id"])
    kinds = [e.type for _, e in events]
    assert kinds[:3] == ["incident.created", "evidence.collected", "hypothesis.generated"]
    (_, created), (collected_seq, collected), (generated_seq, generated) = events[:3]
    assert collected_seq < generated_seq
    for event in (collected, generated):
        assert event.causation_id == str(created.id)
        assert event.correlation_id == created.correlation_id
        assert event.aggregate_id == incident["id"]
        assert event.data["generation"] == 1
    assert generated.data["trigger"] == "incident.created"
    assert generated.data["engine"] == "rules" and generated.data["fallback_reason"] is None

    items = items_of(collected)
    assert items[0] == EvidenceItem(
        kind="report",
        summary="“High CPU usage on payment-api.”",
        source=f"incident {incident['key']}",
        time=datetime.fromisoformat(incident["created_at"]),
    )
    rendered = {render(i) for i in items}
    hypotheses = generated.data["hypotheses"]
    assert len(hypotheses) == 3 and sum(h["confidence"] for h in hypotheses) <= 1
    for h in hypotheses:
        assert h["evidence"][0].startswith(f"Confidence {h['confidence']:.2f}")
        # Every other line is one of the published items, rendered.
        assert set(h["evidence"][1:]) <= rendered

    # What the API serves is that generation.
    served = (await client.get(f"/api/v1/incidents/{incident['id']}/hypotheses", headers=tenant.auth)).json()
    assert [h["claim"] for h in served["items"]] == [h["claim"] for h in hypotheses]


async def test_an_attached_alert_makes_generation_two_and_its_redelivery_nothing(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, engine: AsyncEngine
) -> None:
    incident = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)

    alert = alert_event(tenant.tenant_id, incident["id"])
    await publish(js, alert)
    generations = await generations_of(js, tenant.tenant_id, incident["id"], 2)
    second = generations[1][1]
    assert second.data["generation"] == 2
    assert second.data["trigger"] == "alert.attached"
    assert second.causation_id == str(alert.id)
    assert any("KubeContainerOOMKilled" in line for h in second.data["hypotheses"] for line in h["evidence"])
    events = await stream_of(js, tenant.tenant_id, incident["id"])
    collected = [(s, e) for s, e in events if e.type == "evidence.collected" and e.data["generation"] == 2]
    assert len(collected) == 1 and collected[0][0] < generations[1][0]
    assert collected[0][1].causation_id == str(alert.id)
    alerts = [i for i in items_of(collected[0][1]) if i.kind == "alert"]
    assert [i.source for i in alerts] == ["alertmanager fp-1"]
    assert alerts[0].summary.startswith("Alert KubeContainerOOMKilled firing since")
    assert alerts[0].link and "g0.expr=container_oom_events_total" in alerts[0].link

    # The same envelope again (a redelivery after a lost ack looks exactly like this).
    seq = await publish(js, alert, msg_id=f"{alert.id}-again")
    await caught_up(js, seq)
    events = await stream_of(js, tenant.tenant_id, incident["id"])
    assert [e.data["generation"] for _, e in events if e.type == "hypothesis.generated"] == [1, 2]
    assert [e.data["generation"] for _, e in events if e.type == "evidence.collected"] == [1, 2]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ai_db.triggers.c.kind, ai_db.triggers.c.generation).where(
                    ai_db.triggers.c.incident_id == uuid.UUID(incident["id"])
                )
            )
        ).all()
    assert sorted((r.kind, r.generation) for r in rows) == [("alert.attached", 2), ("incident.created", 1)]


async def test_a_deploy_of_the_service_regenerates_with_the_deploy_as_evidence(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    incident = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)
    started = datetime.fromisoformat(incident["created_at"])
    elsewhere = deploy_event(tenant.tenant_id, "search-api", "v1.0.0", started - timedelta(minutes=3))
    deploy = deploy_event(tenant.tenant_id, "payment-api", "v9.9.9", started - timedelta(minutes=4))
    await publish(js, elsewhere)
    seq = await publish(js, deploy)

    generations = await generations_of(js, tenant.tenant_id, incident["id"], 2)
    second = generations[1][1]
    assert second.causation_id == str(deploy.id)
    assert second.data["trigger"] == "deploy.recorded"
    top_two = second.data["hypotheses"][:2]
    assert any(h["claim"].startswith("A recent change to payment-api") for h in top_two)
    change = next(h for h in second.data["hypotheses"] if h["claim"].startswith("A recent change"))
    assert "v9.9.9 deployed 4 min before the start" in change["evidence"][0]
    assert any(
        line.startswith("Closest deploy before the start: payment-api v9.9.9 deployed to production 4 min")
        for line in change["evidence"]
    )
    # The deploy of another service triggered nothing.
    await caught_up(js, seq)
    assert len(await generations_of(js, tenant.tenant_id, incident["id"], 2)) == 2


async def test_a_resolved_incident_is_not_regenerated_and_its_note_becomes_a_root_cause(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    first = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, first["id"], 1)
    note = "connection pool exhausted: raised the pool size from 10 to 50"
    moved = await client.post(
        f"/api/v1/incidents/{first['id']}/transitions",
        json={"to": "resolved", "note": note},
        headers=tenant.auth,
    )
    assert moved.status_code == 200, moved.text
    events = await stream_of(js, tenant.tenant_id, first["id"])
    resolved_seq = max(s for s, e in events if e.type == "incident.state_changed")
    await caught_up(js, resolved_seq)

    seq = await publish(js, alert_event(tenant.tenant_id, first["id"]))
    await caught_up(js, seq)
    assert len(await generations_of(js, tenant.tenant_id, first["id"], 1)) == 1

    second = await create_incident(client, tenant)
    [(_, generated)] = await generations_of(js, tenant.tenant_id, second["id"], 1)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    cited = f"{first['key']}, resolved {today}: {note}"
    assert any(line.startswith(cited) for h in generated.data["hypotheses"] for line in h["evidence"])


async def test_alerts_that_arrive_before_their_incident_are_covered_by_its_first_generation(
    js: JetStreamContext, engine: AsyncEngine
) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    incident_id = str(uuid.uuid4())
    first = alert_event(tenant_id, incident_id, "KubeContainerOOMKilled", "fp-a")
    second = alert_event(tenant_id, incident_id, "HighMemoryUsage", "fp-b")
    await publish(js, first)
    await caught_up(js, await publish(js, second))

    created = created_event(
        tenant_id,
        incident_id,
        number=1,
        title="worker restarting",
        description="worker pods restarted 14 times in the last hour",
        service_name="payment-api",
        severity=Severity.HIGH,
        correlation_id="test-created",
    )
    await caught_up(js, await publish(js, created))
    events = await stream_of(js, tenant_id, incident_id)
    generated = [e for _, e in events if e.type == "hypothesis.generated"]
    assert len(generated) == 1
    assert generated[0].causation_id == str(created.id)
    collected = next(e for _, e in events if e.type == "evidence.collected")
    assert {i.source for i in items_of(collected) if i.kind == "alert"} == {
        "alertmanager fp-a",
        "alertmanager fp-b",
    }
    assert generated[0].data["hypotheses"][0]["claim"] == "A memory leak or OOM kills in payment-api"
    async with engine.connect() as conn:
        covered = (
            await conn.execute(
                select(ai_db.triggers.c.generation).where(
                    ai_db.triggers.c.incident_id == uuid.UUID(incident_id)
                )
            )
        ).scalars()
        assert sorted(covered) == [1, 1, 1]


async def test_a_burst_of_triggers_coalesces(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    incident = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)
    last = 0
    for i in range(5):
        last = await publish(js, alert_event(tenant.tenant_id, incident["id"], f"Alert{i}", f"fp-{i}"))
    await caught_up(js, last)
    generations = [
        e
        for _, e in await stream_of(js, tenant.tenant_id, incident["id"])
        if e.type == "hypothesis.generated"
    ]
    # Five triggers inside the window: one more generation (two if the machine was slow enough for
    # the first to land after the window), never five.
    assert 2 <= len(generations) <= 3, [g.data["trigger"] for g in generations]
    assert [g.data["generation"] for g in generations] == list(range(1, len(generations) + 1))
    latest = [
        e for _, e in await stream_of(js, tenant.tenant_id, incident["id"]) if e.type == "evidence.collected"
    ][-1]
    assert {i.source for i in items_of(latest) if i.kind == "alert"} == {
        f"alertmanager fp-{i}" for i in range(5)
    }


async def test_triggers_waiting_for_their_incident_do_not_hold_up_another_incidents_first_generation(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, engine: AsyncEngine
) -> None:
    """An alert storm: many triggers of one incident wait (for a coalescing window, or here for
    another worker's lease on it). They must not take every slot, or the next incident's
    hypotheses wait behind them."""
    storm = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, storm["id"], 1)
    # As if another replica were generating for it for the next few seconds.
    async with engine.begin() as conn:
        await conn.execute(
            update(ai_db.known_incidents)
            .where(ai_db.known_incidents.c.id == uuid.UUID(storm["id"]))
            .values(claimed_until=datetime.now(UTC) + timedelta(seconds=6))
        )
    for i in range(2 * MAX_GENERATING):
        await publish(js, alert_event(tenant.tenant_id, storm["id"], f"Storm{i}", f"storm-{i}"))
    calm = await create_incident(client, tenant)
    first = (await generations_of(js, tenant.tenant_id, calm["id"], 1))[0]
    storm_generations = await generations_of(js, tenant.tenant_id, storm["id"], 2)
    # The calm incident's first generation did not wait for the storm's lease to run out.
    assert first[0] < storm_generations[-1][0], (first[0], [s for s, _ in storm_generations])


async def regenerate(nc: Client, tenant: Tenant, incident_id: str, role: str = "responder") -> dict[str, Any]:
    body = {
        "correlation_id": f"regen-{uuid.uuid4().hex[:8]}",
        "caller": {"tenant_id": tenant.tenant_id, "user_id": tenant.user_id, "role": role},
        "incident_id": incident_id,
    }
    reply = await nc.request("cmd.ai_worker.regenerate", json.dumps(body).encode(), timeout=10)
    return json.loads(reply.data)


async def test_a_regenerate_request_makes_a_new_generation(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, nc: Client
) -> None:
    incident = await create_incident(client, tenant)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)
    accepted = await regenerate(nc, tenant, incident["id"])
    assert accepted["incident_id"] == incident["id"] and accepted["seq"] > 0
    generations = await generations_of(js, tenant.tenant_id, incident["id"], 2)
    second = generations[1][1]
    assert second.data["trigger"] == "regenerate"
    assert second.causation_id == accepted["request_id"]
    assert second.actor == tenant.user_id
    requested = [
        e
        for _, e in await stream_of(js, tenant.tenant_id, incident["id"])
        if e.type == "hypothesis.regeneration_requested"
    ]
    assert [str(e.id) for e in requested] == [accepted["request_id"]]


async def test_a_deploy_of_a_service_the_report_names_regenerates_and_others_do_not(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    body = {
        "title": "Storefront shows product cards without prices",
        "description": "Cards render without prices since catalog-api started returning a new shape.",
        "service_name": "storefront",
        "severity": "high",
    }
    incident = await create_incident(client, tenant, body)
    await generations_of(js, tenant.tenant_id, incident["id"], 1)
    started = datetime.fromisoformat(incident["created_at"])
    # Neither its service nor named in the report ("catalog" alone is not "catalog-api" either).
    unrelated = deploy_event(tenant.tenant_id, "search-api", "v1.0.0", started - timedelta(minutes=2))
    partial = deploy_event(tenant.tenant_id, "catalog", "v3.0.0", started - timedelta(minutes=3))
    await publish(js, unrelated)
    await caught_up(js, await publish(js, partial))
    assert len(await generations_of(js, tenant.tenant_id, incident["id"], 1)) == 1
    named = deploy_event(tenant.tenant_id, "catalog-api", "v12.0.0", started - timedelta(minutes=6))
    await publish(js, named)
    second = (await generations_of(js, tenant.tenant_id, incident["id"], 2))[1][1]
    assert second.data["trigger"] == "deploy.recorded" and second.causation_id == str(named.id)
    first = second.data["hypotheses"][0]
    assert first["claim"] == "A recent change to storefront (a bad deploy) introduced a regression"
    assert "catalog-api v12.0.0 deployed 6 min before the start" in first["evidence"][0]
    everything = " ".join(e for h in second.data["hypotheses"] for e in h["evidence"])
    assert "search-api" not in everything and "catalog v3.0.0" not in everything


async def test_regenerate_is_for_responders_of_the_incidents_tenant(
    client: httpx.AsyncClient, tenant: Tenant, nc: Client
) -> None:
    incident = await create_incident(client, tenant)
    assert (await regenerate(nc, tenant, incident["id"], role="viewer"))["error"]["code"] == "forbidden"
    other = await register_tenant(client, "Other")
    assert (await regenerate(nc, other, incident["id"]))["error"]["code"] == "not_found"
    assert (await regenerate(nc, tenant, "not-a-uuid"))["error"]["code"] == "not_found"
    assert (await regenerate(nc, tenant, str(uuid.uuid4())))["error"]["code"] == "not_found"
    bad = await nc.request("cmd.ai_worker.regenerate", b'{"correlation_id": "x"}', timeout=10)
    assert json.loads(bad.data)["error"]["code"] == "validation_error"


async def test_an_older_durable_is_brought_to_the_current_filters(js: JetStreamContext) -> None:
    info = await js.consumer_info(EVENTS_STREAM, AI_WORKER_CONSUMER)
    assert sorted(info.config.filter_subjects or []) == sorted(FILTER_SUBJECTS)

    durable = f"test_reconcile_{uuid.uuid4().hex[:8]}"
    await js.add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            durable_name=durable,
            filter_subject="events.*.incident.>",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            inactive_threshold=30.0,
        ),
    )
    try:
        assert await reconcile_consumer(js, durable, FILTER_SUBJECTS)
        updated = await js.consumer_info(EVENTS_STREAM, durable)
        assert sorted(updated.config.filter_subjects or []) == sorted(FILTER_SUBJECTS)
        assert not updated.config.filter_subject
        assert not await reconcile_consumer(js, durable, FILTER_SUBJECTS)
        assert not await reconcile_consumer(js, f"{durable}_missing", FILTER_SUBJECTS)
    finally:
        await js.delete_consumer(EVENTS_STREAM, durable)
