"""What several of integrations' queries share: per-tenant caps, pages by id, one row in or out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement


async def lock_and_count(conn: AsyncConnection, table: Table, tenant_id: str) -> int:
    """Lock the tenant's rows of `table` and count them: creations of one tenant are serialised,
    so that a per-tenant cap holds under concurrent requests."""
    await conn.execute(select(table.c.id).where(table.c.tenant_id == tenant_id).with_for_update())
    return int(
        await conn.scalar(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)) or 0
    )


async def _page(
    conn: AsyncConnection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    after: uuid.UUID | None,
    limit: int,
    newest_first: bool = True,
) -> list[Row[Any]]:
    """Up to `limit` + 1 rows past the cursor `after`, by id (UUIDv7: creation order): the extra
    one says there is more."""
    query = select(table).where(*where)
    if after is not None:
        query = query.where(table.c.id < after if newest_first else table.c.id > after)
    order = table.c.id.desc() if newest_first else table.c.id
    return list((await conn.execute(query.order_by(order).limit(limit + 1))).all())


async def _insert_returning(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Row[Any]:
    return (await conn.execute(table.insert().values(**values).returning(table))).one()


async def _tenant_row(
    conn: AsyncConnection, table: Table, tenant_id: str, row_id: uuid.UUID, lock: bool = False
) -> Row[Any] | None:
    query = select(table).where(table.c.id == row_id, table.c.tenant_id == tenant_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def _update_returning(
    conn: AsyncConnection, table: Table, row_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    statement = update(table).where(table.c.id == row_id).values(**values).returning(table)
    return (await conn.execute(statement)).one()


async def _delete(conn: AsyncConnection, table: Table, row_id: uuid.UUID) -> None:
    await conn.execute(delete(table).where(table.c.id == row_id))
