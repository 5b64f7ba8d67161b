"""Every view of an incident against the incidents service's own table, field by field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import IncidentSnapshot

# Every view of the incident; each is compared on the columns it shares with the snapshot.
VIEWS = ("gateway.incidents", "ai_worker.known_incidents", "integrations.known_incidents")
SNAPSHOT_COLUMNS = [name for name in IncidentSnapshot.model_fields if name != "key"] + ["tenant_id"]


async def _rows(engine: AsyncEngine, table: str, tenant_id: str) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {table} WHERE tenant_id = :t"), {"t": tenant_id})
        return {str(row.id): dict(row._mapping) for row in result}


async def view_differences(engine: AsyncEngine, tenant_id: str) -> list[str]:
    """What any view holds differently from `incidents.incidents` for the tenant (empty: all agree)."""
    source = await _rows(engine, "incidents.incidents", tenant_id)
    differences: list[str] = []
    for table in VIEWS:
        view = await _rows(engine, table, tenant_id)
        if set(view) != set(source):
            differences.append(f"{table}: ids differ ({len(view)} against {len(source)})")
        for incident_id, expected in source.items():
            row = view.get(incident_id)
            if row is None:
                continue
            for column in SNAPSHOT_COLUMNS:
                if column in row and row[column] != expected[column]:
                    differences.append(
                        f"{table} {incident_id} {column}: {row[column]!r} != {expected[column]!r}"
                    )
    return differences
