"""The gateway's read models (schema `gateway`), written only by the projector, read by the API.
Reads use SQLAlchemy Core: they are the hot path."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    and_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Index("ix_gw_incidents_tenant_created", "tenant_id", "created_at", "id"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Index("ix_gw_timeline_incident_seq", "incident_id", "seq"),
)

hypotheses = Table(
    "hypotheses",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("items", JSONB, nullable=False),
    Column("generated_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def encode_cursor(created_at: datetime, incident_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(incident_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on anything that is not a cursor this gateway made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, incident_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created_at), uuid.UUID(incident_id)
    except (binascii.Error, ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


async def get_incident(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    query = select(incidents).where(incidents.c.id == incident_id, incidents.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def list_incidents(
    conn: AsyncConnection, tenant_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> tuple[list[Row[Any]], str | None]:
    """Newest first, keyset-paginated on (created_at, id): stable under concurrent inserts."""
    conditions = [incidents.c.tenant_id == tenant_id]
    if after is not None:
        conditions.append(tuple_(incidents.c.created_at, incidents.c.id) < tuple_(*after))
    query = (
        select(incidents)
        .where(and_(*conditions))
        .order_by(incidents.c.created_at.desc(), incidents.c.id.desc())
        .limit(limit + 1)
    )
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def get_hypotheses(conn: AsyncConnection, incident_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(hypotheses).where(hypotheses.c.incident_id == incident_id))).first()


async def get_timeline(conn: AsyncConnection, incident_id: uuid.UUID) -> list[Row[Any]]:
    query = select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.seq)
    return list((await conn.execute(query)).all())


async def last_seq(conn: AsyncConnection, name: str) -> int:
    value = (await conn.execute(select(checkpoints.c.last_seq).where(checkpoints.c.name == name))).scalar()
    return int(value or 0)
