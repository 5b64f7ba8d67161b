"""Every schema's tables as the code declares them, for the migrations (autogenerate, and the test
that the migrations make exactly these: tests/integration/test_migrations_match_models.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

from ai_worker.db import metadata as ai_worker_metadata
from auth.db import metadata as auth_metadata
from gateway.http.idempotency import metadata as gateway_operational_metadata
from gateway.projection.tables import metadata as gateway_metadata
from incidents.db import metadata as incidents_metadata
from integrations.db import metadata as integrations_metadata
from oncall.db import metadata as oncall_metadata

METADATA: list[MetaData] = [
    auth_metadata,
    incidents_metadata,
    integrations_metadata,
    oncall_metadata,
    ai_worker_metadata,
    gateway_metadata,
    gateway_operational_metadata,
]
SCHEMAS = {m.schema for m in METADATA}


def include_schema(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's `include_name`: the services' schemas, nothing else of the database."""
    if type_ == "schema":
        return name in SCHEMAS
    return True
