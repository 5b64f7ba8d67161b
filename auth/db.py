"""auth's tables (schema `auth`) and its queries."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.outbox import outbox_table

SCHEMA = "auth"
metadata = MetaData(schema=SCHEMA)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey(tenants.c.id), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("full_name", String(120), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)


async def user_by_email(conn: AsyncConnection, email: str) -> Row | None:  # type: ignore[type-arg]
    query = (
        select(users, tenants.c.name.label("tenant_name"), tenants.c.slug.label("tenant_slug"))
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .where(users.c.email == email)
    )
    return (await conn.execute(query)).first()
