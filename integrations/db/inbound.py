"""Per-tenant settings, and the inbound queue: notifications stored as they arrive, worked on per
tenant (advisory locks), their alert groups and alerts, what they did, pending auto-resolutions,
and the payloads refused."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.integrations import REJECTED_BODY_KEPT, InboundStatus
from integrations.db.common import _page
from integrations.db.tables import (
    CORRELATION_LOCK_CLASS,
    INBOUND_LOCK_CLASS,
    alert_groups,
    alerts,
    inbound,
    pending_resolutions,
    rejections,
    tenant_settings,
)

# ---- settings


async def auto_resolve(conn: AsyncConnection, tenant_id: str) -> bool:
    value = await conn.scalar(
        select(tenant_settings.c.auto_resolve).where(tenant_settings.c.tenant_id == tenant_id)
    )
    return True if value is None else bool(value)


async def save_settings(
    conn: AsyncConnection, tenant_id: str, user_id: str, now: datetime, **values: Any
) -> None:
    statement = insert(tenant_settings).values(
        tenant_id=tenant_id, updated_by=user_id, updated_at=now, **values
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[tenant_settings.c.tenant_id],
            set_={"updated_by": user_id, "updated_at": now, **values},
        )
    )


# ---- inbound


async def queue_inbound(
    conn: AsyncConnection,
    *,
    delivery_id: uuid.UUID,
    tenant_id: str,
    source: str,
    key_id: str,
    correlation_id: str,
    group_key: str,
    alert_count: int,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """A notification accepted, to be worked on in the background (due now)."""
    await conn.execute(
        inbound.insert().values(
            id=delivery_id,
            tenant_id=tenant_id,
            source=source,
            key_id=key_id,
            correlation_id=correlation_id[:64],
            group_key=group_key,
            alert_count=alert_count,
            payload=payload,
            status=InboundStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            received_at=now,
        )
    )


async def inbound_page(
    conn: AsyncConnection, tenant_id: str, status: str | None, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's notifications, newest first."""
    where = [inbound.c.tenant_id == tenant_id]
    if status is not None:
        where.append(inbound.c.status == status)
    return await _page(conn, inbound, where, after, limit)


async def keep_rejection(
    conn: AsyncConnection,
    *,
    rejection_id: uuid.UUID,
    tenant_id: str,
    endpoint: str,
    key_id: str,
    received_at: datetime,
    message: str,
    details: Any,
    body: str,
    keep: int,
) -> None:
    """Keep a refused payload (its body cut to REJECTED_BODY_KEPT), and only the tenant's last `keep`."""
    await conn.execute(
        rejections.insert().values(
            id=rejection_id,
            tenant_id=tenant_id,
            endpoint=endpoint,
            key_id=key_id,
            received_at=received_at,
            message=message,
            details=details,
            body=body[:REJECTED_BODY_KEPT],
            body_truncated=len(body) > REJECTED_BODY_KEPT,
        )
    )
    await prune_rejections(conn, tenant_id, keep)


async def rejections_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's refused payloads, newest first."""
    return await _page(conn, rejections, [rejections.c.tenant_id == tenant_id], after, limit)


async def tenants_with_work(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Tenants with a due notification at the head of one of their alert groups (one waiting out a
    back-off holds up the later ones of its group), or with resolutions queued."""
    older = inbound.alias("older")
    earlier_pending = (
        select(older.c.id)
        .where(
            older.c.tenant_id == inbound.c.tenant_id,
            older.c.group_key == inbound.c.group_key,
            older.c.status == "pending",
            older.c.id < inbound.c.id,
        )
        .exists()
    )
    due = (
        select(inbound.c.tenant_id)
        .where(inbound.c.status == "pending", inbound.c.next_attempt_at <= now, ~earlier_pending)
        .union(select(pending_resolutions.c.tenant_id))
        .limit(limit)
    )
    return [r[0] for r in await conn.execute(due)]


async def next_inbound(conn: AsyncConnection, tenant_id: str, limit: int) -> list[Row[Any]]:
    """The oldest unprocessed delivery of each of the tenant's alert groups, oldest first, at most
    `limit`: a group's later deliveries wait for its head, so each group's order is kept, while
    different groups are independent (an alert storm's groups go side by side)."""
    heads = (
        select(inbound)
        .where(inbound.c.tenant_id == tenant_id, inbound.c.status == "pending")
        .distinct(inbound.c.group_key)
        .order_by(inbound.c.group_key, inbound.c.id)
        .subquery()
    )
    return list((await conn.execute(select(heads).order_by(heads.c.id).limit(limit))).all())


async def lock_group(
    conn: AsyncConnection, tenant_id: str, group_hash: str, group_key: str, now: datetime
) -> Row[Any]:
    await conn.execute(
        insert(alert_groups)
        .values(
            tenant_id=tenant_id, group_hash=group_hash, group_key=group_key, created_at=now, updated_at=now
        )
        .on_conflict_do_nothing()
    )
    query = (
        select(alert_groups)
        .where(alert_groups.c.tenant_id == tenant_id, alert_groups.c.group_hash == group_hash)
        .with_for_update()
    )
    return (await conn.execute(query)).one()


async def known_alerts(
    conn: AsyncConnection, tenant_id: str, group_hash: str, fingerprints: Sequence[str]
) -> list[Row[Any]]:
    query = select(alerts).where(
        alerts.c.tenant_id == tenant_id,
        alerts.c.group_hash == group_hash,
        alerts.c.fingerprint.in_(list(fingerprints)),
    )
    return list((await conn.execute(query)).all())


async def save_alert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    statement = insert(alerts).values(**values)
    keys = {"tenant_id", "group_hash", "fingerprint"}
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[alerts.c.tenant_id, alerts.c.group_hash, alerts.c.fingerprint],
            set_={k: v for k, v in values.items() if k not in keys},
        )
    )


async def firing_alerts_of(conn: AsyncConnection, incident_id: uuid.UUID) -> int:
    return int(
        await conn.scalar(
            select(func.count())
            .select_from(alerts)
            .where(alerts.c.incident_id == incident_id, alerts.c.status == "firing")
        )
        or 0
    )


async def try_lock_inbound(conn: AsyncConnection, tenant_id: str) -> bool:
    """Take the session-level lock on the tenant's inbound queue, if no other replica holds it."""
    held = await conn.scalar(
        text("SELECT pg_try_advisory_lock(:c, hashtext(:t))"), {"c": INBOUND_LOCK_CLASS, "t": tenant_id}
    )
    return bool(held)


async def unlock_inbound(conn: AsyncConnection, tenant_id: str) -> None:
    await conn.execute(
        text("SELECT pg_advisory_unlock(:c, hashtext(:t))"), {"c": INBOUND_LOCK_CLASS, "t": tenant_id}
    )


async def lock_correlation(conn: AsyncConnection, tenant_id: str) -> None:
    """The tenant's correlation lock, held until the transaction ends."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:c, hashtext(:t))"), {"c": CORRELATION_LOCK_CLASS, "t": tenant_id}
    )


async def inbound_failed(
    conn: AsyncConnection,
    inbound_id: uuid.UUID,
    attempts: int,
    error: str,
    final: bool,
    retry_at: datetime,
    now: datetime,
) -> None:
    """An attempt failed: the notification fails for good (`final`) or waits until `retry_at`."""
    await conn.execute(
        update(inbound)
        .where(inbound.c.id == inbound_id)
        .values(
            attempts=attempts,
            last_error=error[:2_000],
            status=InboundStatus.FAILED.value if final else InboundStatus.PENDING.value,
            next_attempt_at=retry_at,
            processed_at=now if final else None,
        )
    )


async def inbound_processed(
    conn: AsyncConnection, inbound_id: uuid.UUID, attempts: int, now: datetime, outcome: dict[str, Any]
) -> None:
    await conn.execute(
        update(inbound)
        .where(inbound.c.id == inbound_id)
        .values(
            status=InboundStatus.PROCESSED.value,
            attempts=attempts,
            processed_at=now,
            last_error=None,
            outcome=outcome,
        )
    )


async def set_group_incident(
    conn: AsyncConnection, tenant_id: str, group_hash: str, incident_id: uuid.UUID, now: datetime
) -> None:
    """The alert group's alerts go to this incident from now on."""
    g = alert_groups
    await conn.execute(
        update(g)
        .where(g.c.tenant_id == tenant_id, g.c.group_hash == group_hash)
        .values(incident_id=incident_id, updated_at=now)
    )


async def queue_resolution(
    conn: AsyncConnection, incident_id: uuid.UUID, tenant_id: str, correlation_id: str, now: datetime
) -> None:
    await conn.execute(
        insert(pending_resolutions)
        .values(incident_id=incident_id, tenant_id=tenant_id, correlation_id=correlation_id, queued_at=now)
        .on_conflict_do_nothing()
    )


async def queued_resolutions(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    """The tenant's incidents queued for resolution, in the order they were queued."""
    p = pending_resolutions
    return list(
        (await conn.execute(select(p).where(p.c.tenant_id == tenant_id).order_by(p.c.queued_at))).all()
    )


async def drop_resolution(conn: AsyncConnection, incident_id: uuid.UUID) -> None:
    await conn.execute(delete(pending_resolutions).where(pending_resolutions.c.incident_id == incident_id))


async def prune_rejections(conn: AsyncConnection, tenant_id: str, keep: int) -> None:
    r = rejections
    oldest_kept = (
        select(r.c.id).where(r.c.tenant_id == tenant_id).order_by(r.c.id.desc()).offset(keep - 1).limit(1)
    ).scalar_subquery()
    await conn.execute(delete(r).where(r.c.tenant_id == tenant_id, r.c.id < oldest_kept))
