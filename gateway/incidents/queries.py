"""The incident read models' queries (SQLAlchemy Core: they are the hot path)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.incidents.references import encode_cursor
from gateway.projection.tables import (
    evidence,
    follow_ups,
    hypotheses,
    hypothesis_feedback,
    incidents,
    postmortems,
    timeline,
    users,
)


async def get_incident(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    query = select(incidents).where(incidents.c.id == incident_id, incidents.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def get_incident_by_number(conn: AsyncConnection, tenant_id: str, number: int) -> Row[Any] | None:
    """The incident a person calls `INC-<number>` (numbered per tenant)."""
    query = select(incidents).where(incidents.c.tenant_id == tenant_id, incidents.c.number == number)
    return (await conn.execute(query)).first()


async def get_incidents(conn: AsyncConnection, tenant_id: str, ids: list[uuid.UUID]) -> list[Row[Any]]:
    """The tenant's incidents among `ids` (another tenant's are left out), in no particular order."""
    if not ids:
        return []
    query = select(incidents).where(incidents.c.tenant_id == tenant_id, incidents.c.id.in_(ids))
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class IncidentFilter:
    states: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    service_name: str | None = None
    assignee_id: str | None = None  # "none": unassigned ones
    text: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    oldest_first: bool = False


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_incidents(
    conn: AsyncConnection,
    tenant_id: str,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    where: IncidentFilter = IncidentFilter(),
) -> tuple[list[Row[Any]], str | None]:
    """Keyset-paginated on (created_at, id), newest first unless asked: stable under concurrent
    inserts, and every filter has an index that starts with the tenant."""
    conditions = [incidents.c.tenant_id == tenant_id]
    if where.states:
        conditions.append(incidents.c.state.in_(where.states))
    if where.severities:
        conditions.append(incidents.c.severity.in_(where.severities))
    if where.service_name:
        conditions.append(incidents.c.service_name == where.service_name)
    if where.assignee_id == "none":
        conditions.append(incidents.c.assignee_id.is_(None))
    elif where.assignee_id:
        conditions.append(incidents.c.assignee_id == where.assignee_id)
    if where.text:
        searchable = incidents.c.title + " " + incidents.c.description
        conditions.append(searchable.ilike(_like_pattern(where.text), escape="\\"))
    if where.created_from:
        conditions.append(incidents.c.created_at >= where.created_from)
    if where.created_to:
        conditions.append(incidents.c.created_at < where.created_to)
    position = tuple_(incidents.c.created_at, incidents.c.id)
    if after is not None:
        conditions.append(position > tuple_(*after) if where.oldest_first else position < tuple_(*after))
    order = (
        (incidents.c.created_at.asc(), incidents.c.id.asc())
        if where.oldest_first
        else (incidents.c.created_at.desc(), incidents.c.id.desc())
    )
    query = select(incidents).where(and_(*conditions)).order_by(*order).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def get_hypotheses(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int | None = None
) -> Row[Any] | None:
    """The latest generation, or the one asked for."""
    query = select(hypotheses).where(
        hypotheses.c.tenant_id == tenant_id, hypotheses.c.incident_id == incident_id
    )
    if generation is not None:
        query = query.where(hypotheses.c.generation == generation)
    return (await conn.execute(query.order_by(hypotheses.c.generation.desc()).limit(1))).first()


async def get_evidence(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int
) -> Row[Any] | None:
    query = select(evidence).where(
        evidence.c.tenant_id == tenant_id,
        evidence.c.incident_id == incident_id,
        evidence.c.generation == generation,
    )
    return (await conn.execute(query)).first()


async def get_timeline(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> list[Row[Any]]:
    query = (
        select(timeline)
        .where(timeline.c.tenant_id == tenant_id, timeline.c.incident_id == incident_id)
        .order_by(timeline.c.seq)
    )
    return list((await conn.execute(query)).all())


async def feedback_counts(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int
) -> dict[int, dict[str, int]]:
    """Per rank, how many responders confirmed or rejected it (each responder's latest verdict)."""
    f = hypothesis_feedback
    latest = (
        select(f.c.rank, f.c.given_by, f.c.verdict)
        .where(f.c.tenant_id == tenant_id, f.c.incident_id == incident_id, f.c.generation == generation)
        .distinct(f.c.rank, f.c.given_by)
        .order_by(f.c.rank, f.c.given_by, f.c.given_at.desc())
        .subquery()
    )
    counts: dict[int, dict[str, int]] = {}
    query = select(latest.c.rank, latest.c.verdict, func.count().label("n")).group_by(
        latest.c.rank, latest.c.verdict
    )
    for row in await conn.execute(query):
        counts.setdefault(row.rank, {"confirmed": 0, "rejected": 0})[row.verdict] = row.n
    return counts


async def get_postmortem(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    query = select(postmortems).where(
        postmortems.c.tenant_id == tenant_id, postmortems.c.incident_id == incident_id
    )
    return (await conn.execute(query)).first()


async def incident_follow_ups(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> list[Row[Any]]:
    query = (
        select(follow_ups)
        .where(follow_ups.c.tenant_id == tenant_id, follow_ups.c.incident_id == incident_id)
        .order_by(follow_ups.c.created_at, follow_ups.c.id)
    )
    return list((await conn.execute(query)).all())


async def list_follow_ups(
    conn: AsyncConnection,
    tenant_id: str,
    done: bool | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Row[Any]], str | None]:
    """Every incident's follow-ups, oldest first (the longest-waiting open ones lead), keyset-paginated
    on (created_at, id), with the incident's key and title."""
    conditions = [follow_ups.c.tenant_id == tenant_id]
    if done is not None:
        conditions.append(follow_ups.c.done.is_(done))
    if after is not None:
        conditions.append(tuple_(follow_ups.c.created_at, follow_ups.c.id) > tuple_(*after))
    query = (
        select(follow_ups, incidents.c.key.label("incident_key"), incidents.c.title.label("incident_title"))
        .join(
            incidents,
            and_(incidents.c.id == follow_ups.c.incident_id, incidents.c.tenant_id == tenant_id),
            isouter=True,
        )
        .where(and_(*conditions))
        .order_by(follow_ups.c.created_at, follow_ups.c.id)
        .limit(limit + 1)
    )
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def people(conn: AsyncConnection, tenant_id: str) -> dict[str, str]:
    """The organisation's users by id: their names, for who did what."""
    query = select(users.c.id, users.c.full_name).where(users.c.tenant_id == tenant_id)
    return {row.id: row.full_name for row in await conn.execute(query)}
