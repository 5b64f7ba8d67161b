"""incidents' tables (schema `incidents`) and queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

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
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import FollowUpSnapshot, IncidentSnapshot, IncidentStateChanged, PostmortemSnapshot
from incidents.domain import incident_key
from runtime.consumer import consumed_table
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
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
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
    # The user aggregate's version the row reflects: an older or repeated event changes nothing.
    Column("version", Integer, nullable=False),
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

# An incident's postmortem: its current version (every version is on the log as an event).
postmortems = Table(
    "postmortems",
    metadata,
    Column("incident_id", Uuid, ForeignKey(incidents.c.id), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
)

follow_ups = Table(
    "follow_ups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("incident_id", Uuid, ForeignKey(incidents.c.id), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
)

outbox = outbox_table(metadata)
consumed = consumed_table(metadata)


def snapshot_of(row: Row[Any]) -> IncidentSnapshot:
    values = dict(row._mapping)
    values.update(
        id=str(row.id),
        key=incident_key(row.number),
        related_incident_id=str(row.related_incident_id) if row.related_incident_id else None,
    )
    return IncidentSnapshot.model_validate({k: v for k, v in values.items() if k in SNAPSHOT_FIELDS})


SNAPSHOT_FIELDS = frozenset(IncidentSnapshot.model_fields)
# Columns a change may rewrite: everything but the identity and the creation.
_MUTABLE = [
    c.name
    for c in incidents.columns
    if c.name not in {"id", "tenant_id", "number", "created_by", "created_at"}
]


async def insert_incident(conn: AsyncConnection, tenant_id: str, snapshot: IncidentSnapshot) -> None:
    row = snapshot.row(tenant_id)
    await conn.execute(incidents.insert().values({c.name: row[c.name] for c in incidents.columns}))


async def save_incident(conn: AsyncConnection, tenant_id: str, snapshot: IncidentSnapshot) -> None:
    """Store the snapshot over the version it was made from (the row is locked by the caller)."""
    row = snapshot.row(tenant_id)
    result = await conn.execute(
        update(incidents)
        .where(
            incidents.c.id == row["id"],
            incidents.c.tenant_id == tenant_id,
            incidents.c.version == snapshot.version - 1,
        )
        .values({name: row[name] for name in _MUTABLE})
    )
    if result.rowcount != 1:
        raise RuntimeError(f"incident {snapshot.id} is not at version {snapshot.version - 1}")


async def locked_incident(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    """The tenant's incident, locked for this transaction; another tenant's is not found."""
    query = (
        select(incidents)
        .where(incidents.c.id == incident_id, incidents.c.tenant_id == tenant_id)
        .with_for_update()
    )
    return (await conn.execute(query)).first()


async def next_incident_number(conn: AsyncConnection, tenant_id: str) -> int:
    first = insert(tenant_counters).values(tenant_id=tenant_id, last_number=1)
    statement = first.on_conflict_do_update(
        index_elements=[tenant_counters.c.tenant_id],
        set_={"last_number": tenant_counters.c.last_number + 1},
    ).returning(tenant_counters.c.last_number)
    return int((await conn.execute(statement)).scalar_one())


async def record_transition(
    conn: AsyncConnection,
    tenant_id: str,
    actor: str,
    moved: IncidentStateChanged,
    transition_id: uuid.UUID | None = None,
) -> None:
    await conn.execute(
        transitions.insert().values(
            id=transition_id or uuid.uuid4(),
            incident_id=uuid.UUID(moved.incident_id),
            tenant_id=tenant_id,
            from_state=moved.from_state.value,
            to_state=moved.to_state.value,
            note=moved.note,
            actor=actor,
            at=moved.changed_at,
        )
    )


async def already_done(
    conn: AsyncConnection, table: Table, tenant_id: str, incident_id: uuid.UUID, row_id: uuid.UUID
) -> bool:
    """Whether a transition or a note of this id was made for this incident (a command repeated)."""
    query = select(table.c.id).where(
        table.c.id == row_id, table.c.tenant_id == tenant_id, table.c.incident_id == incident_id
    )
    return (await conn.execute(query)).first() is not None


async def remember_member(
    conn: AsyncConnection, tenant_id: str, user_id: str, active: bool, version: int
) -> None:
    """The user's activity as of `version` of their aggregate, unless a newer one is known."""
    statement = insert(directory).values(user_id=user_id, tenant_id=tenant_id, active=active, version=version)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[directory.c.user_id],
            set_={"active": statement.excluded.active, "version": statement.excluded.version},
            where=(directory.c.version < statement.excluded.version) & (directory.c.tenant_id == tenant_id),
        )
    )


async def locked_postmortem(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> PostmortemSnapshot | None:
    query = (
        select(postmortems.c.snapshot)
        .where(postmortems.c.incident_id == incident_id, postmortems.c.tenant_id == tenant_id)
        .with_for_update()
    )
    raw = (await conn.execute(query)).scalar()
    return None if raw is None else PostmortemSnapshot.model_validate(raw)


async def save_postmortem(conn: AsyncConnection, tenant_id: str, snapshot: PostmortemSnapshot) -> None:
    values = {
        "incident_id": uuid.UUID(snapshot.incident_id),
        "tenant_id": tenant_id,
        "snapshot": snapshot.model_dump(mode="json"),
        "version": snapshot.version,
    }
    statement = insert(postmortems).values(values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[postmortems.c.incident_id],
            set_={"snapshot": statement.excluded.snapshot, "version": statement.excluded.version},
        )
    )


async def follow_ups_of(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> list[FollowUpSnapshot]:
    query = select(follow_ups.c.snapshot).where(
        follow_ups.c.incident_id == incident_id, follow_ups.c.tenant_id == tenant_id
    )
    found = [FollowUpSnapshot.model_validate(raw) for raw in (await conn.execute(query)).scalars()]
    return sorted(found, key=lambda f: (f.created_at, f.id))


async def locked_follow_up(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, follow_up_id: uuid.UUID
) -> FollowUpSnapshot | None:
    query = (
        select(follow_ups.c.snapshot)
        .where(
            follow_ups.c.id == follow_up_id,
            follow_ups.c.incident_id == incident_id,
            follow_ups.c.tenant_id == tenant_id,
        )
        .with_for_update()
    )
    raw = (await conn.execute(query)).scalar()
    return None if raw is None else FollowUpSnapshot.model_validate(raw)


async def save_follow_up(conn: AsyncConnection, tenant_id: str, snapshot: FollowUpSnapshot) -> None:
    values = {
        "id": uuid.UUID(snapshot.id),
        "incident_id": uuid.UUID(snapshot.incident_id),
        "tenant_id": tenant_id,
        "snapshot": snapshot.model_dump(mode="json"),
        "version": snapshot.version,
    }
    statement = insert(follow_ups).values(values)
    result = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[follow_ups.c.id],
            set_={"snapshot": statement.excluded.snapshot, "version": statement.excluded.version},
            # Only the same follow-up over the version before it (the row is locked by the caller).
            where=(follow_ups.c.tenant_id == tenant_id)
            & (follow_ups.c.incident_id == values["incident_id"])
            & (follow_ups.c.version == snapshot.version - 1),
        )
    )
    if result.rowcount != 1:
        raise RuntimeError(f"follow-up {snapshot.id} is not at version {snapshot.version - 1}")


async def incident_row(conn: AsyncConnection, incident_id: uuid.UUID) -> Row[Any] | None:
    """Any tenant's incident with this id (ids are global: a chosen id another tenant took is taken)."""
    return (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).first()


async def incident_exists(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> bool:
    query = select(incidents.c.id).where(incidents.c.id == incident_id, incidents.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first() is not None


async def member_is_active(conn: AsyncConnection, tenant_id: str, user_id: str) -> bool:
    """Whether the directory knows this user of the tenant as active (an unknown user is not)."""
    query = select(directory.c.active).where(
        directory.c.user_id == user_id, directory.c.tenant_id == tenant_id
    )
    member = (await conn.execute(query)).first()
    return member is not None and bool(member.active)


async def insert_note(
    conn: AsyncConnection,
    *,
    note_id: uuid.UUID,
    incident_id: uuid.UUID,
    tenant_id: str,
    body: str,
    author: str,
    at: datetime,
) -> None:
    await conn.execute(
        notes.insert().values(
            id=note_id, incident_id=incident_id, tenant_id=tenant_id, body=body, author=author, at=at
        )
    )
