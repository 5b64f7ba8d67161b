"""integrations' own view of incidents, from incidents' and ai_worker's events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.tables import known_incidents


async def incident(conn: AsyncConnection, incident_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(known_incidents).where(known_incidents.c.id == incident_id))).first()


async def change_incident(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, version: int, **values: Any
) -> bool:
    """Apply a change over an older version; False when the incident is not in the view at all."""
    k = known_incidents
    result = await conn.execute(
        update(k)
        .where(k.c.id == incident_id, k.c.tenant_id == tenant_id, k.c.version < version)
        .values(version=version, **values)
    )
    return bool(result.rowcount) or await incident(conn, incident_id) is not None


async def record_hypotheses(
    conn: AsyncConnection,
    tenant_id: str,
    incident_id: uuid.UUID,
    generation: int,
    top: str,
    confidence: float,
) -> bool:
    """Record the generation's top hypothesis unless a later one is; False: the incident is not known."""
    k = known_incidents
    result = await conn.execute(
        update(k)
        .where(k.c.id == incident_id, k.c.tenant_id == tenant_id, k.c.hypotheses_generation < generation)
        .values(hypotheses_generation=generation, top_hypothesis=top, top_confidence=confidence)
    )
    return bool(result.rowcount) or await incident(conn, incident_id) is not None
