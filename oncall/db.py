"""oncall's tables (schema `oncall`) and queries: schedules and their overrides, the outbox and the
record of consumed events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.consumer import consumed_table
from runtime.outbox import outbox_table

SCHEMA = "oncall"
metadata = MetaData(schema=SCHEMA)

outbox = outbox_table(metadata)
consumed = consumed_table(metadata)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: creation order
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=False),
    # The layers as the API states them (contracts.oncall.LayerSpec), bottom-up.
    Column("layers", JSONB, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_schedules_tenant", "tenant_id", "id"),
)

# Ordered by id (UUIDv7): where two overlap, the later one wins.
overrides = Table(
    "overrides",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("schedule_id", Uuid, ForeignKey(schedules.c.id, ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_overrides_schedule", "schedule_id", "id"),
)


async def schedule(conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID, lock: bool = False) -> Any:
    query = select(schedules).where(schedules.c.id == schedule_id, schedules.c.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def overrides_of(conn: AsyncConnection, schedule_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    found: dict[uuid.UUID, list[Any]] = {s: [] for s in schedule_ids}
    if not schedule_ids:
        return found
    rows = await conn.execute(
        select(overrides).where(overrides.c.schedule_id.in_(schedule_ids)).order_by(overrides.c.id)
    )
    for row in rows:
        found[row.schedule_id].append(row)
    return found
