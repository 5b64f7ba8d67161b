"""The migrations make exactly the tables, columns and indexes the code declares (alembic's own
comparison, as `alembic revision --autogenerate` would run it, over every service's schema): a
rebuild creates its scratch tables from the declarations, and autogenerate starts from them."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from migrations.models import METADATA, include_schema


async def test_the_migrated_database_is_what_the_code_declares(engine: AsyncEngine) -> None:
    def compare(sync: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync,
            opts={
                "include_schemas": True,
                "include_name": include_schema,
                "compare_type": True,
                "target_metadata": METADATA,
            },
        )
        with warnings.catch_warnings():
            # The trigram index's operator class is part of its expression, which alembic cannot
            # compare (it says so); its name and table still are.
            warnings.filterwarnings("ignore", message=".*operator clause.*")
            return list(compare_metadata(context, METADATA))  # type: ignore[arg-type]  # a list works, as in env.py

    async with engine.connect() as conn:
        differences = await conn.run_sync(compare)
    assert differences == [], differences
