"""Deploys, and what a service went through lately (its deploys and alerts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.tables import alerts, deploys, known_incidents


async def insert_deploy(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any] | None:
    """The deploy, or None when one of that id is recorded already."""
    statement = insert(deploys).values(**values).on_conflict_do_nothing().returning(deploys)
    return (await conn.execute(statement)).first()


async def deploy(conn: AsyncConnection, tenant_id: str, deploy_id: str) -> Row[Any]:
    query = select(deploys).where(deploys.c.tenant_id == tenant_id, deploys.c.id == deploy_id)
    return (await conn.execute(query)).one()


async def service_deploys(
    conn: AsyncConnection,
    tenant_id: str,
    service_name: str,
    since: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` deploys of the service, latest first, from `since`, before the position `before`
    (deployed_at, id)."""
    d = deploys
    query = select(d).where(d.c.tenant_id == tenant_id, d.c.service_name == service_name)
    if since is not None:
        query = query.where(d.c.deployed_at >= since)
    if before is not None:
        query = query.where(tuple_(d.c.deployed_at, d.c.id) < tuple_(*before))
    query = query.order_by(d.c.deployed_at.desc(), d.c.id.desc()).limit(limit)
    return list((await conn.execute(query)).all())


async def service_alerts(
    conn: AsyncConnection,
    tenant_id: str,
    service_name: str,
    since: datetime | None,
    before: tuple[datetime, str, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` alerts labelled with the service or attached to one of its incidents, latest
    started first, from `since`, before the position `before` (starts_at, group_hash, fingerprint)."""
    a, k = alerts, known_incidents
    of_service = select(k.c.id).where(k.c.tenant_id == tenant_id, k.c.service_name == service_name)
    query = select(a).where(
        a.c.tenant_id == tenant_id,
        or_(a.c.labels["service"].astext == service_name, a.c.incident_id.in_(of_service)),
    )
    if since is not None:
        query = query.where(a.c.starts_at >= since)
    if before is not None:
        query = query.where(tuple_(a.c.starts_at, a.c.group_hash, a.c.fingerprint) < tuple_(*before))
    query = query.order_by(a.c.starts_at.desc(), a.c.group_hash.desc(), a.c.fingerprint.desc())
    return list((await conn.execute(query.limit(limit))).all())
