"""Views of another service's aggregate, kept from the snapshots its events carry: a snapshot
replaces the stored row only when its version is newer (and the row is the same tenant's), so
every view converges to one state whatever order the events arrive in, and applying one twice
changes nothing."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert, insert
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
    result = await conn.execute(_upsert(table, tuple(values)), values)
    return bool(result.rowcount)


@functools.cache
def _upsert(table: Table, names: tuple[str, ...]) -> Insert:
    """The upsert of these columns, built once: every incident event runs one, and building it (a
    column a value) costs more than running it."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={name: statement.excluded[name] for name in names if name not in _IDENTITY},
        where=(table.c.version < statement.excluded.version)
        & (table.c.tenant_id == statement.excluded.tenant_id),
    )
