"""Alembic environment: async engine on asyncpg, every service's schema."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ai_worker.db import metadata as ai_worker_metadata
from auth.db import metadata as auth_metadata
from gateway.idempotency import metadata as gateway_operational_metadata
from gateway.read_models import metadata as gateway_metadata
from incidents.db import metadata as incidents_metadata
from runtime.db import sqlalchemy_url

METADATA: list[MetaData] = [
    auth_metadata,
    incidents_metadata,
    ai_worker_metadata,
    gateway_metadata,
    gateway_operational_metadata,
]
SCHEMAS = {m.schema for m in METADATA}

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name in SCHEMAS
    return True


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
