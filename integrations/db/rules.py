"""What a tenant configures inbound alerts with: generic JSON sources, silences and correlation
rules (and the alerts a rule's preview is run over)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.common import _delete, _insert_returning, _page, _tenant_row, _update_returning
from integrations.db.tables import (
    alert_groups,
    alerts,
    correlation_rules,
    inbound,
    json_sources,
    known_incidents,
    silences,
)

# ---- generic JSON sources


async def insert_json_source(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, json_sources, values)


async def json_sources_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's JSON sources, newest first."""
    return await _page(conn, json_sources, [json_sources.c.tenant_id == tenant_id], after, limit)


async def json_source(conn: AsyncConnection, tenant_id: str, source_id: uuid.UUID) -> Row[Any] | None:
    return await _tenant_row(conn, json_sources, tenant_id, source_id)


async def update_json_source(conn: AsyncConnection, source_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    return await _update_returning(conn, json_sources, source_id, values)


async def delete_json_source(conn: AsyncConnection, source_id: uuid.UUID) -> None:
    await _delete(conn, json_sources, source_id)


# ---- silences and correlation rules


async def insert_silence(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, silences, values)


async def silence(conn: AsyncConnection, tenant_id: str, silence_id: uuid.UUID) -> Row[Any] | None:
    return await _tenant_row(conn, silences, tenant_id, silence_id)


async def delete_silence(conn: AsyncConnection, silence_id: uuid.UUID) -> None:
    await _delete(conn, silences, silence_id)


async def insert_correlation_rule(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, correlation_rules, values)


async def correlation_rules_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's correlation rules, oldest first: the order they are tried in."""
    c = correlation_rules
    return await _page(conn, c, [c.c.tenant_id == tenant_id], after, limit, newest_first=False)


async def correlation_rule(
    conn: AsyncConnection, tenant_id: str, rule_id: uuid.UUID, lock: bool = False
) -> Row[Any] | None:
    return await _tenant_row(conn, correlation_rules, tenant_id, rule_id, lock=lock)


async def update_correlation_rule(
    conn: AsyncConnection, rule_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    return await _update_returning(conn, correlation_rules, rule_id, values)


async def delete_correlation_rule(conn: AsyncConnection, rule_id: uuid.UUID) -> None:
    await _delete(conn, correlation_rules, rule_id)


async def tenant_silences(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    query = select(silences).where(silences.c.tenant_id == tenant_id).order_by(silences.c.id.desc())
    return list((await conn.execute(query)).all())


async def tenant_correlation_rules(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    """Oldest first: the order they are tried in."""
    c = correlation_rules
    return list((await conn.execute(select(c).where(c.c.tenant_id == tenant_id).order_by(c.c.id))).all())


async def correlation_candidates(
    conn: AsyncConnection, tenant_id: str, earliest: datetime, latest: datetime, limit: int
) -> list[Row[Any]]:
    """Firing alerts of the tenant that started between `earliest` and `latest`, attached to an
    incident that is not resolved, with their group's key (the `limit` that started last)."""
    a, g, k = alerts, alert_groups, known_incidents
    query = (
        select(a, g.c.group_key)
        .join(g, and_(g.c.tenant_id == a.c.tenant_id, g.c.group_hash == a.c.group_hash))
        .join(k, k.c.id == a.c.incident_id)
        .where(
            a.c.tenant_id == tenant_id,
            a.c.status == "firing",
            a.c.starts_at >= earliest,
            a.c.starts_at <= latest,
            k.c.tenant_id == tenant_id,
            k.c.state != "resolved",
        )
        .order_by(a.c.starts_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def recent_inbound_alerts(
    conn: AsyncConnection, tenant_id: str, since: datetime, sources: Sequence[str], limit: int
) -> list[Any]:
    """Processed alert notifications received since `since`, newest first."""
    i = inbound
    query = (
        select(i.c.id, i.c.source, i.c.group_key, i.c.payload, i.c.outcome, i.c.received_at)
        .where(
            i.c.tenant_id == tenant_id,
            i.c.received_at >= since,
            i.c.source.in_(list(sources)),
            i.c.status == "processed",
        )
        .order_by(i.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
