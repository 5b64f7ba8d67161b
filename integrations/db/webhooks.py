"""Outgoing webhooks, their deliveries and the claims senders of every replica take on them, and
the key their secrets are encrypted with when none is configured."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.common import _insert_returning, _page, _update_returning
from integrations.db.tables import DELIVERY_CLAIM_LOCK, deliveries, keyring, webhooks

# ---- webhooks and deliveries


async def subscribed_webhooks(
    conn: AsyncConnection, tenant_id: str, event_type: str, occurred_at: datetime
) -> list[Row[Any]]:
    """Enabled webhooks of the tenant that asked for this event type and existed when it happened
    (a consumer catching up does not send a new webhook the past)."""
    query = select(webhooks).where(
        webhooks.c.tenant_id == tenant_id,
        webhooks.c.enabled.is_(True),
        webhooks.c.event_types.contains([event_type]),
        webhooks.c.created_at <= occurred_at,
    )
    return list((await conn.execute(query)).all())


async def enqueue(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(
            insert(deliveries).on_conflict_do_nothing(constraint="uq_deliveries_webhook_event"), rows
        )


async def webhook(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> Row[Any] | None:
    query = select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def insert_webhook(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, webhooks, values)


async def webhooks_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's webhooks, newest first."""
    return await _page(conn, webhooks, [webhooks.c.tenant_id == tenant_id], after, limit)


async def webhook_kind(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> str | None:
    w = webhooks
    query = select(w.c.kind).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id)
    kind: str | None = await conn.scalar(query)
    return kind


async def update_webhook(
    conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any] | None:
    """The webhook changed, or None when the tenant has no such webhook."""
    w = webhooks
    statement = update(w).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id)
    return (await conn.execute(statement.values(**values).returning(w))).first()


async def delete_webhook(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> bool:
    """Whether the tenant had that webhook (its deliveries go with it)."""
    w = webhooks
    statement = delete(w).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id).returning(w.c.id)
    return (await conn.execute(statement)).first() is not None


async def deliveries_page(
    conn: AsyncConnection,
    tenant_id: str,
    webhook_id: uuid.UUID,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Row[Any]]:
    """A webhook's deliveries, newest first."""
    d = deliveries
    where = [d.c.webhook_id == webhook_id, d.c.tenant_id == tenant_id]
    if status is not None:
        where.append(d.c.status == status)
    return await _page(conn, d, where, after, limit)


async def locked_delivery(
    conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> Row[Any] | None:
    d = deliveries
    query = select(d).where(d.c.id == delivery_id, d.c.webhook_id == webhook_id, d.c.tenant_id == tenant_id)
    return (await conn.execute(query.with_for_update())).first()


async def update_delivery(conn: AsyncConnection, delivery_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    return await _update_returning(conn, deliveries, delivery_id, values)


async def webhook_by_id(conn: AsyncConnection, webhook_id: uuid.UUID) -> Row[Any] | None:
    """Any tenant's webhook: a Slack click names its webhook before anything tells its tenant."""
    return (await conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))).first()


# ---- claims


async def sending_now(conn: AsyncConnection, now: datetime) -> dict[uuid.UUID, int]:
    """Deliveries being sent right now by any replica (claimed, lease running), per webhook."""
    d = deliveries
    query = (
        select(d.c.webhook_id, func.count())
        .where(d.c.status == "pending", d.c.lease_until.is_not(None), d.c.lease_until >= now)
        .group_by(d.c.webhook_id)
    )
    return {webhook_id: int(n) for webhook_id, n in await conn.execute(query)}


async def claim_due(
    conn: AsyncConnection, now: datetime, exclude: Sequence[uuid.UUID], limit: int
) -> list[Any]:
    """Pending deliveries that are due and held by no sender, oldest due first, locked for this
    transaction (other replicas skip them)."""
    d = deliveries
    conditions = [
        d.c.status == "pending",
        d.c.next_attempt_at <= now,
        (d.c.lease_until.is_(None)) | (d.c.lease_until < now),
    ]
    if exclude:
        conditions.append(d.c.webhook_id.not_in(list(exclude)))
    query = (
        select(d.c.id, d.c.webhook_id)
        .where(and_(*conditions))
        .order_by(d.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(query)).all())


async def lock_claims(conn: AsyncConnection) -> None:
    """Claims take turns (DELIVERY_CLAIM_LOCK, held until the transaction ends)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DELIVERY_CLAIM_LOCK})


async def lease_deliveries(
    conn: AsyncConnection, delivery_ids: Sequence[uuid.UUID], lease_until: datetime, now: datetime
) -> list[Row[Any]]:
    """Claim the deliveries until `lease_until`, counting the attempt; what a sender needs of them."""
    d = deliveries
    statement = (
        update(d)
        .where(d.c.id.in_(list(delivery_ids)))
        .values(lease_until=lease_until, attempts=d.c.attempts + 1, updated_at=now)
        .returning(d.c.id, d.c.webhook_id, d.c.tenant_id, d.c.event_type, d.c.body, d.c.attempts)
    )
    return list((await conn.execute(statement)).all())


async def record_attempt(conn: AsyncConnection, delivery_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))


async def next_due(conn: AsyncConnection, exclude: Sequence[uuid.UUID]) -> datetime | None:
    """When the next delivery a sender could claim comes due (a held one: when its lease ends)."""
    d = deliveries
    due = func.greatest(d.c.next_attempt_at, func.coalesce(d.c.lease_until, d.c.next_attempt_at))
    query = select(func.min(due)).where(d.c.status == "pending")
    if exclude:
        query = query.where(d.c.webhook_id.not_in(list(exclude)))
    value: datetime | None = await conn.scalar(query)
    return value


# ---- the secret box's key, when none is configured


async def keyring_key(conn: AsyncConnection, generated: str, now: datetime) -> str:
    """The key every replica shares: `generated` if none was stored yet, else the stored one."""
    await conn.execute(insert(keyring).values(id=1, key=generated, created_at=now).on_conflict_do_nothing())
    key: str = (await conn.execute(select(keyring.c.key).where(keyring.c.id == 1))).scalar_one()
    return key
