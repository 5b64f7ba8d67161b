"""The two ways the AI worker writes a generation, on the real database.

With the rules and no Prometheus a generation waits on nothing, so it is decided, made and written
in one transaction under the incident's lock (`Generator.at_once`). With Prometheus (or Claude) to
wait on it takes three steps: a lease, the engine with no transaction open, then the commit. Both
must number the generation after the last one, cover the trigger and the triggers waiting for it,
leave no lease behind, stage evidence then hypotheses, and make nothing of a covered trigger.

The generator runs in the test process against the platform's database with an incident of its own
in the worker's view (no event announces it, so the running worker never acts on it); Prometheus is
answered at the HTTP transport."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker import db as ai_db
from ai_worker.generation import Generator, Trigger
from ai_worker.settings import AiWorkerSettings
from contracts.envelope import EventEnvelope
from runtime.service import Service
from tests.conftest import Tenant


def cpu_ramp(request: httpx.Request) -> httpx.Response:
    """CPU that jumps at the start; every other query has no data."""
    if "process_cpu_seconds_total" not in request.url.params["query"]:
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}})
    start = float(request.url.params["start"])
    values = [[start + m * 60, "0.2" if m < 30 else "1.9"] for m in range(46)]
    return httpx.Response(
        200,
        json={
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
        },
    )


@pytest.fixture(params=["at_once", "three_steps"])
async def generator(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Generator]:
    three_steps = request.param == "three_steps"
    settings = AiWorkerSettings(
        ai_engine="rules",
        coalesce_window_seconds=0,
        prometheus_url="http://prometheus.test" if three_steps else None,
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(cpu_ramp)) if three_steps else None
    made = Generator(cast(Service, SimpleNamespace(engine=engine)), settings, prometheus_http=http)
    assert made.at_once is not three_steps
    yield made
    await made.close()


async def known_incident(engine: AsyncEngine, tenant_id: str) -> uuid.UUID:
    incident_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            ai_db.known_incidents.insert().values(
                id=incident_id,
                tenant_id=tenant_id,
                key=f"INC-{incident_id.hex[:6]}",
                title="High CPU usage on payment-api",
                description="CPU pegged at 100% since the deploy",
                service_name="payment-api",
                severity="high",
                state="detected",
                version=1,
                created_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    return incident_id


def trigger_for(incident_id: uuid.UUID, tenant_id: str, kind: str = "incident.created") -> Trigger:
    return Trigger(
        event_id=uuid.uuid4(),
        kind=kind,
        incident_id=incident_id,
        tenant_id=tenant_id,
        correlation_id=f"test-{uuid.uuid4().hex[:8]}",
    )


async def settle_outbox(engine: AsyncEngine, events: list[EventEnvelope]) -> None:
    """The staged rows are there; then marked published, so the platform's relay leaves them."""
    ids = [e.id for e in events]
    async with engine.begin() as conn:
        staged = (
            await conn.execute(
                select(ai_db.outbox.c.id, ai_db.outbox.c.event_type).where(ai_db.outbox.c.id.in_(ids))
            )
        ).all()
        await conn.execute(
            update(ai_db.outbox).where(ai_db.outbox.c.id.in_(ids)).values(published_at=datetime.now(UTC))
        )
    assert {row.id: row.event_type for row in staged} == {e.id: e.type for e in events}


async def test_a_generation_covers_its_trigger_and_those_waiting_and_leaves_no_lease(
    generator: Generator, engine: AsyncEngine, tenant: Tenant
) -> None:
    incident_id = await known_incident(engine, tenant.tenant_id)
    # An alert's trigger already waiting (it came while another generation held the incident).
    waiting = trigger_for(incident_id, tenant.tenant_id, "alert.attached")
    async with engine.begin() as conn:
        await ai_db.add_trigger(
            conn, waiting.event_id, incident_id, tenant.tenant_id, waiting.kind, datetime.now(UTC)
        )
    created = trigger_for(incident_id, tenant.tenant_id)

    first = await generator.handle(created)
    assert [e.type for e in first] == ["evidence.collected", "hypothesis.generated"]
    assert [e.aggregate_version for e in first] == [1, 1]
    assert all(e.causation_id == str(created.event_id) for e in first)
    assert first[1].data["generation"] == 1 and first[1].data["trigger"] == "incident.created"
    kinds = {item["kind"] for item in first[0].data["items"]}
    assert ("metric" in kinds) is not generator.at_once  # the three steps read Prometheus
    await settle_outbox(engine, first)

    async with engine.connect() as conn:
        covered = dict(
            (
                await conn.execute(
                    select(ai_db.triggers.c.event_id, ai_db.triggers.c.generation).where(
                        ai_db.triggers.c.incident_id == incident_id
                    )
                )
            ).all()
        )
        lease = (
            await conn.execute(
                select(ai_db.known_incidents.c.claimed_until).where(ai_db.known_incidents.c.id == incident_id)
            )
        ).scalar_one()
        row = await ai_db.generation(conn, incident_id)
    assert covered == {created.event_id: 1, waiting.event_id: 1}
    assert lease is None
    assert row is not None and row.generation == 1 and row.event_id == first[1].id
    assert row.evidence_event_id == first[0].id

    # Redelivered: covered already, nothing more.
    assert await generator.handle(created) == []
    assert await generator.handle(waiting) == []

    # A later trigger: the next number.
    again = trigger_for(incident_id, tenant.tenant_id, "regenerate")
    second = await generator.handle(again)
    assert [e.aggregate_version for e in second] == [2, 2] and second[1].data["generation"] == 2
    await settle_outbox(engine, second)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(ai_db.generations)
                .where(ai_db.generations.c.incident_id == incident_id)
            )
        ).scalar_one()
    assert count == 2


async def test_a_trigger_before_its_incident_waits_and_one_for_another_tenant_is_dropped(
    generator: Generator, engine: AsyncEngine, tenant: Tenant
) -> None:
    unknown = uuid.uuid4()
    early = trigger_for(unknown, tenant.tenant_id, "alert.attached")
    assert await generator.handle(early) == []
    async with engine.connect() as conn:
        pending = await ai_db.pending_triggers(conn, unknown)
    assert pending == [(early.event_id, "alert.attached")]

    incident_id = await known_incident(engine, tenant.tenant_id)
    assert await generator.handle(trigger_for(incident_id, "another-tenant")) == []
    async with engine.connect() as conn:
        assert await ai_db.generation(conn, incident_id) is None
        assert await ai_db.pending_triggers(conn, incident_id) == []
