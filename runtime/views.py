"""Views of another service's aggregate, kept from the snapshots its events carry: a snapshot
replaces the stored row only when its version is newer (and the row is the same tenant's), so
every view converges to one state whatever order the events arrive in, and applying one twice
changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import IncidentSnapshot

# Never rewritten by a newer snapshot: who the row is.
_IDENTITY = frozenset({"id", "tenant_id"})


def snapshot_values(table: Table, tenant_id: str, snapshot: IncidentSnapshot) -> dict[str, Any]:
    """The snapshot's values for the columns `table` has."""
    row = snapshot.row(tenant_id)
    return {column.name: row[column.name] for column in table.columns if column.name in row}


async def apply_snapshot(
    conn: AsyncConnection, table: Table, tenant_id: str, snapshot: IncidentSnapshot
) -> bool:
    """Insert the incident, or replace an older version of it; True when the row changed."""
    values = snapshot_values(table, tenant_id, snapshot)
    statement = insert(table).values(values)
    result = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={name: statement.excluded[name] for name in values if name not in _IDENTITY},
            where=(table.c.version < statement.excluded.version)
            & (table.c.tenant_id == statement.excluded.tenant_id),
        )
    )
    return bool(result.rowcount)
