"""Bounded growth in the real database: finished work older than its retention is deleted, pending
and recent work never is, and every service runs its pruning by itself (the session sets
PRUNE_INTERVAL_SECONDS=1)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker import db as ai_db
from ai_worker.settings import AiWorkerSettings
from incidents import db as incidents_db
from integrations import db as integrations_db
from integrations.settings import IntegrationsSettings

NOW = datetime.now(UTC)
# The direct calls below prune with a cutoff of their own, two days, shorter than any default: the
# services' own loops (running all along) leave their rows alone, so what goes is the call's doing.
CUTOFF = timedelta(days=2)
OLD, RECENT = timedelta(days=3), timedelta(days=1)
INBOUND_RETENTION = timedelta(days=IntegrationsSettings().inbound_retention_days)
DELIVERY_RETENTION = timedelta(days=IntegrationsSettings().delivery_retention_days)
TRIGGER_RETENTION = timedelta(days=AiWorkerSettings().trigger_retention_days)


async def ids_left(engine: AsyncEngine, column: Any, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set(await conn.scalars(select(column).where(column.in_(ids))))


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not (done := await check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return done


async def _none(found: Awaitable[list[str]]) -> bool:
    return not await found


def inbound_row(tenant_id: str, status: str, age: timedelta, **values: Any) -> dict[str, Any]:
    at = datetime.now(UTC) - age
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "source": "alertmanager",
        "key_id": "k_test",
        "correlation_id": "test",
        "group_key": f"group-{uuid.uuid4().hex[:6]}",
        "alert_count": 1,
        "payload": {},
        "status": status,
        "attempts": 1,
        # A pending one is not due for a day: the live processor leaves it alone.
        "next_attempt_at": datetime.now(UTC) + timedelta(days=1),
        "received_at": at,
        "processed_at": None if status == "pending" else at,
    } | values


async def test_inbound_notifications_are_pruned_once_finished_and_old(engine: AsyncEngine) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    rows = {
        "processed_old": inbound_row(tenant_id, "processed", OLD),
        "failed_old": inbound_row(tenant_id, "failed", OLD),
        "pending_old": inbound_row(tenant_id, "pending", OLD * 10),
        "processed_recent": inbound_row(tenant_id, "processed", RECENT),
    }
    async with engine.begin() as conn:
        await conn.execute(integrations_db.inbound.insert(), list(rows.values()))
    assert await integrations_db.prune_inbound(engine, datetime.now(UTC) - CUTOFF) >= 2
    ids = [r["id"] for r in rows.values()]
    left = await ids_left(engine, integrations_db.inbound.c.id, ids)
    assert left == {rows["pending_old"]["id"], rows["processed_recent"]["id"]}
    async with engine.begin() as conn:
        await conn.execute(
            delete(integrations_db.inbound).where(integrations_db.inbound.c.tenant_id == tenant_id)
        )


async def a_webhook(engine: AsyncEngine, tenant_id: str) -> uuid.UUID:
    webhook_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            integrations_db.webhooks.insert().values(
                id=webhook_id,
                tenant_id=tenant_id,
                kind="generic",
                name="retention test",
                url="http://127.0.0.1:9/never",
                event_types=[],
                enabled=False,
                created_by="u_test",
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
    return webhook_id


def delivery_row(tenant_id: str, webhook_id: uuid.UUID, status: str, age: timedelta) -> dict[str, Any]:
    at = datetime.now(UTC) - age
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "webhook_id": webhook_id,
        "event_id": uuid.uuid4(),
        "event_type": "incident.created",
        "body": b"{}",
        "status": status,
        "attempts": 1,
        # A pending one is not due for a day (backing off): the live sender leaves it alone.
        "next_attempt_at": datetime.now(UTC) + timedelta(days=1),
        "created_at": at,
        "updated_at": at,
        "delivered_at": at if status == "succeeded" else None,
    }


async def test_webhook_deliveries_are_pruned_once_finished_and_old(engine: AsyncEngine) -> None:
    tenant_id = f"t_{uuid.uuid4().hex}"
    webhook_id = await a_webhook(engine, tenant_id)
    rows = {
        "succeeded_old": delivery_row(tenant_id, webhook_id, "succeeded", OLD),
        "failed_old": delivery_row(tenant_id, webhook_id, "failed", OLD),
        "pending_old": delivery_row(tenant_id, webhook_id, "pending", OLD * 20),
        "succeeded_recent": delivery_row(tenant_id, webhook_id, "succeeded", RECENT),
    }
    async with engine.begin() as conn:
        await conn.execute(integrations_db.deliveries.insert(), list(rows.values()))
    assert await integrations_db.prune_deliveries(engine, datetime.now(UTC) - CUTOFF) >= 2
    d = integrations_db.deliveries
    left = await ids_left(engine, d.c.id, [r["id"] for r in rows.values()])
    assert left == {rows["pending_old"]["id"], rows["succeeded_recent"]["id"]}
    async with engine.begin() as conn:
        await conn.execute(
            delete(integrations_db.webhooks).where(integrations_db.webhooks.c.id == webhook_id)
        )


def trigger_row(generation: int | None, age: timedelta) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "incident_id": uuid.uuid4(),  # an incident the worker never heard of: it leaves these alone
        "tenant_id": "t_retention",
        "kind": "incident.created",
        "received_at": datetime.now(UTC) - age,
        "generation": generation,
    }


async def test_covered_triggers_are_pruned_once_old_and_waiting_ones_never(engine: AsyncEngine) -> None:
    rows = {
        "covered_old": trigger_row(1, OLD),
        "waiting_old": trigger_row(None, OLD * 20),
        "covered_recent": trigger_row(2, RECENT),
    }
    async with engine.begin() as conn:
        await conn.execute(ai_db.triggers.insert(), list(rows.values()))
    assert await ai_db.prune_triggers(engine, datetime.now(UTC) - CUTOFF) >= 1
    t = ai_db.triggers
    left = await ids_left(engine, t.c.event_id, [r["event_id"] for r in rows.values()])
    assert left == {rows["waiting_old"]["event_id"], rows["covered_recent"]["event_id"]}
    async with engine.begin() as conn:
        await conn.execute(delete(t).where(t.c.event_id == rows["waiting_old"]["event_id"]))


async def test_each_service_prunes_by_itself(engine: AsyncEngine) -> None:
    """No call from the test: the services' own loops delete what has aged past its retention."""
    tenant_id = f"t_{uuid.uuid4().hex}"
    published = {
        "id": uuid.uuid4(),
        "event_type": "probe.recorded",
        "tenant_id": tenant_id,
        "payload": b"{}",
        "created_at": NOW - timedelta(hours=3),
        "published_at": NOW - timedelta(hours=3),
        "seq": 1,
    }
    inbound = inbound_row(tenant_id, "processed", INBOUND_RETENTION + timedelta(days=1))
    webhook_id = await a_webhook(engine, tenant_id)
    delivery = delivery_row(tenant_id, webhook_id, "succeeded", DELIVERY_RETENTION + timedelta(days=1))
    covered = trigger_row(1, TRIGGER_RETENTION + timedelta(days=1))
    async with engine.begin() as conn:
        await conn.execute(incidents_db.outbox.insert().values(**published))
        await conn.execute(integrations_db.inbound.insert().values(**inbound))
        await conn.execute(integrations_db.deliveries.insert().values(**delivery))
        await conn.execute(ai_db.triggers.insert().values(**covered))

    watched = [
        (incidents_db.outbox, incidents_db.outbox.c.id, published["id"]),
        (integrations_db.inbound, integrations_db.inbound.c.id, inbound["id"]),
        (integrations_db.deliveries, integrations_db.deliveries.c.id, delivery["id"]),
        (ai_db.triggers, ai_db.triggers.c.event_id, covered["event_id"]),
    ]

    async def remaining() -> list[str]:
        return [t.fullname for t, column, row_id in watched if await ids_left(engine, column, [row_id])]

    await eventually(lambda: _none(remaining()))
    assert await remaining() == []
    async with engine.begin() as conn:
        await conn.execute(
            delete(integrations_db.webhooks).where(integrations_db.webhooks.c.id == webhook_id)
        )


async def test_stopped_escalations_are_pruned_with_their_pages_and_notifications(engine: AsyncEngine) -> None:
    """Stopped long enough ago: the escalation, its pages and notifications go; a recent one, and an
    active one however old, stay with everything of theirs."""
    from oncall import db as oncall_db

    def escalation(state: str, age: timedelta) -> dict[str, Any]:
        at = datetime.now(UTC) - age
        return {
            "incident_id": uuid.uuid4(),  # no incident: nothing else ever looks at these rows
            "tenant_id": "t_retention",
            "policy_id": uuid.uuid4(),
            "policy": {"steps": [], "repeat": 0},
            "incident": {},
            "started_at": at,
            "state": state,
            "fired": [[0, 0]],
            "next_due_at": None,  # never due: the timer loop leaves even the active one alone
            "stopped_reason": "resolved" if state == "stopped" else None,
            "updated_at": at,
        }

    rows = {
        "stopped_old": escalation("stopped", OLD),
        "stopped_recent": escalation("stopped", RECENT),
        "active_old": escalation("active", OLD * 20),
    }
    pages, notifications = [], []
    for row in rows.values():
        page = {
            "id": uuid.uuid4(),
            "tenant_id": "t_retention",
            "incident_id": row["incident_id"],
            "user_id": "u_retention",
            "round": 0,
            "step": 0,
            "created_at": row["started_at"],
            "expires_at": row["started_at"] + timedelta(days=1),
        }
        pages.append(page)
        notifications.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": "t_retention",
                "page_id": page["id"],
                "incident_id": row["incident_id"],
                "contact_method_id": uuid.uuid4(),
                "status": "sent",
                "due_at": row["started_at"],
                "attempts": 1,
                "updated_at": row["updated_at"],
            }
        )
    async with engine.begin() as conn:
        await conn.execute(oncall_db.escalations.insert(), list(rows.values()))
        await conn.execute(oncall_db.pages.insert(), pages)
        await conn.execute(oncall_db.notifications.insert(), notifications)
    assert await oncall_db.prune_escalations(engine, datetime.now(UTC) - CUTOFF) >= 3
    kept = {rows["stopped_recent"]["incident_id"], rows["active_old"]["incident_id"]}
    e, p, n = oncall_db.escalations, oncall_db.pages, oncall_db.notifications
    assert await ids_left(engine, e.c.incident_id, [r["incident_id"] for r in rows.values()]) == kept
    assert {
        pg["incident_id"]
        for pg in pages
        if pg["id"] in await ids_left(engine, p.c.id, [x["id"] for x in pages])
    } == kept
    left = await ids_left(engine, n.c.id, [x["id"] for x in notifications])
    assert {x["incident_id"] for x in notifications if x["id"] in left} == kept
    async with engine.begin() as conn:
        await conn.execute(delete(n).where(n.c.incident_id.in_(kept)))
        await conn.execute(delete(p).where(p.c.incident_id.in_(kept)))
        await conn.execute(delete(e).where(e.c.incident_id.in_(kept)))
