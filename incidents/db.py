"""incidents' tables (schema `incidents`) and queries."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.outbox import outbox_table

SCHEMA = "incidents"
metadata = MetaData(schema=SCHEMA)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("assignee_id", String(64)),
    Column("root_cause", Text),
    # The earlier incident this one continues (set by integrations when an alert fires again).
    Column("related_incident_id", Uuid),
    UniqueConstraint("tenant_id", "number", name="uq_incidents_tenant_number"),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("incident_id", Uuid, ForeignKey(incidents.c.id), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("author", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Who belongs to which tenant, built from auth's user events, so an assignee can be checked
# without reading auth's tables.
directory = Table(
    "directory",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("incident_id", Uuid, ForeignKey(incidents.c.id), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_transitions_incident", "incident_id", "at"),
)

# Per-tenant incident numbers (INC-1, INC-2, ...) without gaps from concurrent creates.
tenant_counters = Table(
    "tenant_counters",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("last_number", BigInteger, nullable=False),
)

outbox = outbox_table(metadata)


async def next_incident_number(conn: AsyncConnection, tenant_id: str) -> int:
    first = insert(tenant_counters).values(tenant_id=tenant_id, last_number=1)
    statement = first.on_conflict_do_update(
        index_elements=[tenant_counters.c.tenant_id],
        set_={"last_number": tenant_counters.c.last_number + 1},
    ).returning(tenant_counters.c.last_number)
    return int((await conn.execute(statement)).scalar_one())
