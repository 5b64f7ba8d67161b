"""Pruning what integrations keeps for a while only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.db.tables import deliveries, inbound
from runtime.retention import delete_in_batches


async def prune_inbound(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete notifications processed or failed before `older_than`; pending ones stay."""
    i = inbound
    return await delete_in_batches(engine, i, and_(i.c.status != "pending", i.c.processed_at < older_than))


async def prune_deliveries(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete deliveries that succeeded or failed, last changed before `older_than`; pending ones
    (due, backing off or being sent) stay."""
    d = deliveries
    return await delete_in_batches(engine, d, and_(d.c.status != "pending", d.c.updated_at < older_than))
