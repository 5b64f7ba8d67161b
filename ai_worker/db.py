"""ai_worker's tables (schema `ai_worker`): its own view of past incidents, and what it generated."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.outbox import outbox_table

SCHEMA = "ai_worker"
metadata = MetaData(schema=SCHEMA)

# Built from incident events: what the worker knows of each tenant's history (no reads of
# another service's tables).
known_incidents = Table(
    "known_incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Index("ix_known_incidents_tenant_created", "tenant_id", "created_at"),
)

# One row per incident that got its hypotheses: what makes a redelivered event a no-op.
generations = Table(
    "generations",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("hypotheses", JSONB, nullable=False),
    Column("generated_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)


async def remember_incident(conn: AsyncConnection, values: dict[str, object]) -> None:
    await conn.execute(insert(known_incidents).values(**values).on_conflict_do_nothing())


async def history(
    conn: AsyncConnection,
    tenant_id: str,
    before: datetime,
    since: datetime,
    exclude: object,
    limit: int = 500,
) -> list[Row]:  # type: ignore[type-arg]
    query = (
        select(known_incidents)
        .where(
            known_incidents.c.tenant_id == tenant_id,
            known_incidents.c.created_at < before,
            known_incidents.c.created_at >= since,
            known_incidents.c.id != exclude,
        )
        .order_by(known_incidents.c.created_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
