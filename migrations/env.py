"""Alembic environment: async engine on asyncpg, every service's schema."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.models import METADATA, include_schema
from runtime.db import sqlalchemy_url

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    return include_schema(name, type_, parent_names)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(
        sqlalchemy_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=METADATA, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
