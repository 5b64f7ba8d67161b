"""Slack links: one Slack member (of a workspace) per user of the organisation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.tables import slack_links


async def slack_link_of_member(
    conn: AsyncConnection, tenant_id: str, slack_team_id: str, slack_user_id: str
) -> Row[Any] | None:
    s = slack_links
    query = select(s).where(
        s.c.tenant_id == tenant_id, s.c.slack_team_id == slack_team_id, s.c.slack_user_id == slack_user_id
    )
    return (await conn.execute(query)).first()


async def slack_member_taken(
    conn: AsyncConnection, tenant_id: str, slack_team_id: str, slack_user_id: str, user_id: str
) -> bool:
    """Whether the Slack member is linked to another user than `user_id`."""
    s = slack_links
    query = select(s.c.user_id).where(
        s.c.tenant_id == tenant_id,
        s.c.slack_team_id == slack_team_id,
        s.c.slack_user_id == slack_user_id,
        s.c.user_id != user_id,
    )
    return (await conn.execute(query)).first() is not None


async def save_slack_link(
    conn: AsyncConnection, tenant_id: str, user_id: str, values: dict[str, Any]
) -> Row[Any]:
    s = slack_links
    statement = (
        insert(s)
        .values(tenant_id=tenant_id, user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[s.c.tenant_id, s.c.user_id], set_=values)
        .returning(s)
    )
    return (await conn.execute(statement)).one()


async def slack_links_of(conn: AsyncConnection, tenant_id: str, user_id: str | None) -> list[Row[Any]]:
    """The tenant's links (only `user_id`'s when given), by user, at most 1,000."""
    s = slack_links
    query = select(s).where(s.c.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(s.c.user_id == user_id)
    return list((await conn.execute(query.order_by(s.c.user_id).limit(1_000))).all())


async def slack_link(conn: AsyncConnection, tenant_id: str, user_id: str) -> Row[Any] | None:
    s = slack_links
    return (await conn.execute(select(s).where(s.c.tenant_id == tenant_id, s.c.user_id == user_id))).first()


async def delete_slack_link(conn: AsyncConnection, tenant_id: str, user_id: str) -> bool:
    """Whether the user had a link."""
    s = slack_links
    statement = delete(s).where(s.c.tenant_id == tenant_id, s.c.user_id == user_id).returning(s.c.user_id)
    return (await conn.execute(statement)).first() is not None
