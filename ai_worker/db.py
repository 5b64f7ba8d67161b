"""ai_worker's tables (schema `ai_worker`): its own view of incidents, deploys and alerts built from
events (no reads of another service's tables), the generations it made and the triggers it saw."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ai_worker.evidence import PastIncident, services_named
from runtime.consumer import consumed_table
from runtime.outbox import outbox_table
from runtime.retention import delete_in_batches

SCHEMA = "ai_worker"
metadata = MetaData(schema=SCHEMA)

known_incidents = Table(
    "known_incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    # What the incident was last resolved with (its root cause, or else the resolving note), and the
    # incident version of that resolution.
    Column("resolution", Text),
    Column("resolution_version", Integer, nullable=False, server_default=text("0")),
    # While set and in the future, a worker is generating for this incident (a lease, so a crashed
    # worker does not block the incident for ever).
    Column("claimed_until", DateTime(timezone=True)),
    Index("ix_known_incidents_tenant_created", "tenant_id", "created_at"),
    Index("ix_known_incidents_tenant_service", "tenant_id", "service_name", "state"),
)

generations = Table(
    "generations",
    metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("fallback_reason", Text),
    Column("event_id", Uuid, nullable=False),
    Column("evidence_event_id", Uuid),
    Column("hypotheses", JSONB, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("generated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("incident_id", "generation", name="generations_pkey"),
)

deploys = Table(
    "deploys",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("deploy_id", String(200), nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("version", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("commit", Text),
    Column("author", Text),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),
    PrimaryKeyConstraint("tenant_id", "deploy_id"),
    Index("ix_deploys_tenant_service_time", "tenant_id", "service_name", "deployed_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("fingerprint", String(200), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("alertname", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("labels", JSONB, nullable=False),
    Column("annotations", JSONB, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True)),
    Column("generator_url", Text),
    Column("event_id", Uuid, nullable=False),
    # When the event that last wrote the row happened: an older redelivery never overwrites it.
    Column("event_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("incident_id", "fingerprint"),
)

triggers = Table(
    "triggers",
    metadata,
    Column("event_id", Uuid, nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # The generation that covered this trigger; NULL while it waits to be coalesced.
    Column("generation", Integer),
    PrimaryKeyConstraint("event_id", "incident_id"),
    Index("ix_triggers_pending", "incident_id", postgresql_where=text("generation IS NULL")),
    # What pruning reads: covered triggers by age.
    Index("ix_triggers_covered", "received_at", postgresql_where=text("generation IS NOT NULL")),
)

outbox = outbox_table(metadata)
consumed = consumed_table(metadata)


async def lock_incident(conn: AsyncConnection, incident_id: uuid.UUID) -> None:
    """Serialise everything that decides about one incident's generations, until the transaction
    ends. An advisory lock rather than a row lock: an alert may arrive before its incident does."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"ai_worker.incident:{incident_id}"},
    )


async def record_resolution(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, resolution: str | None, version: int
) -> None:
    """The resolution of `version`, unless a later resolution is recorded (the row exists: the
    resolving event's snapshot was applied first, in the same transaction)."""
    k = known_incidents
    await conn.execute(
        update(k)
        .where(k.c.id == incident_id, k.c.tenant_id == tenant_id, k.c.resolution_version < version)
        .values(resolution=resolution, resolution_version=version)
    )


async def incident(conn: AsyncConnection, incident_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(known_incidents).where(known_incidents.c.id == incident_id))).first()


async def open_incidents_of_service(
    conn: AsyncConnection, tenant_id: str, service_name: str
) -> list[uuid.UUID]:
    """The open incidents a deploy of the service may explain: the service's own, and those whose
    report names it ("since catalog-api started returning ...")."""
    k = known_incidents
    like = "%" + service_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.execute(
        select(k.c.id, k.c.service_name, k.c.title, k.c.description)
        .where(
            k.c.tenant_id == tenant_id,
            k.c.state != "resolved",
            or_(
                k.c.service_name == service_name,
                k.c.title.ilike(like, escape="\\"),
                k.c.description.ilike(like, escape="\\"),
            ),
        )
        .order_by(k.c.created_at, k.c.id)
    )
    return [
        row.id
        for row in rows
        if row.service_name == service_name
        or services_named(f"{row.title}. {row.description}", [service_name])
    ]


def _history_query() -> Select[Any]:
    k = known_incidents
    return (
        select(
            k.c.key,
            k.c.title,
            k.c.description,
            k.c.service_name,
            k.c.state,
            k.c.created_at,
            cast(k.c.id, String),
            k.c.resolved_at,
            k.c.resolution,
        )
        .where(
            k.c.tenant_id == bindparam("tenant_id"),
            k.c.created_at < bindparam("before"),
            k.c.created_at >= bindparam("since"),
            k.c.id != bindparam("exclude", type_=Uuid),
        )
        .order_by(k.c.created_at.desc())
        .limit(bindparam("limit"))
    )


# The columns in `PastIncident`'s order, the id as text: each row becomes one without a look-up by
# name. Built once, like TRIGGER_STATE: every generation reads it.
HISTORY = _history_query()


async def history(
    conn: AsyncConnection,
    tenant_id: str,
    before: datetime,
    since: datetime,
    exclude: object,
    limit: int = 500,
) -> list[PastIncident]:
    """The tenant's incidents created in [since, before), newest first, as the evidence reads them
    (every generation reads up to `limit` of them)."""
    rows = await conn.execute(
        HISTORY,
        {"tenant_id": tenant_id, "before": before, "since": since, "exclude": exclude, "limit": limit},
    )
    return [PastIncident(*row) for row in rows]


async def record_deploy(conn: AsyncConnection, values: dict[str, object]) -> None:
    await conn.execute(insert(deploys).values(**values).on_conflict_do_nothing())


async def deploys_of_service(
    conn: AsyncConnection, tenant_id: str, service_name: str, since: datetime, until: datetime
) -> list[Row[Any]]:
    d = deploys
    query = (
        select(d)
        .where(
            d.c.tenant_id == tenant_id,
            d.c.service_name == service_name,
            d.c.deployed_at >= since,
            d.c.deployed_at <= until,
        )
        .order_by(d.c.deployed_at.desc(), d.c.deploy_id)
        .limit(50)
    )
    return list((await conn.execute(query)).all())


async def deployed_services(
    conn: AsyncConnection, tenant_id: str, since: datetime, until: datetime
) -> list[str]:
    """The services of the tenant deployed in the window (at most 200 names)."""
    d = deploys
    query = (
        select(d.c.service_name)
        .where(d.c.tenant_id == tenant_id, d.c.deployed_at >= since, d.c.deployed_at <= until)
        .group_by(d.c.service_name)
        .order_by(d.c.service_name)
        .limit(200)
    )
    return [row.service_name for row in (await conn.execute(query)).all()]


async def record_alert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    statement = insert(alerts).values(**values)
    changing = {k: statement.excluded[k] for k in values if k not in ("incident_id", "fingerprint")}
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[alerts.c.incident_id, alerts.c.fingerprint],
            set_=changing,
            where=alerts.c.event_at <= statement.excluded.event_at,
        )
    )


async def alerts_of_incident(conn: AsyncConnection, incident_id: uuid.UUID) -> list[Row[Any]]:
    query = (
        select(alerts)
        .where(alerts.c.incident_id == incident_id)
        .order_by(alerts.c.starts_at, alerts.c.fingerprint)
        .limit(50)
    )
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class TriggerState:
    """What deciding about one trigger reads, under the incident's lock, in one statement."""

    seen: bool  # the trigger was recorded before
    covered_by: int | None  # the generation that covered it, if one did
    incident: Row[Any] | None  # the worker's view of the incident (None: not known yet)
    last: tuple[int, datetime] | None  # the incident's latest generation: number, when
    waiting: list[uuid.UUID]  # the incident's triggers no generation covers yet, oldest first


def _trigger_state_query() -> Select[Any]:
    t, g, k = triggers, generations, known_incidents
    event_id, incident_id = bindparam("event_id", type_=Uuid), bindparam("incident_id", type_=Uuid)
    last = (
        select(g.c.generation, g.c.generated_at)
        .where(g.c.incident_id == incident_id)
        .order_by(g.c.generation.desc())
        .limit(1)
        .lateral("last")
    )
    one = select(literal(1).label("one")).subquery("one")
    w = triggers.alias("waiting")
    waiting = (
        select(w.c.event_id)
        .where(w.c.incident_id == incident_id, w.c.generation.is_(None))
        .order_by(w.c.received_at, w.c.event_id)
    )
    return select(
        t.c.event_id.label("trigger_event_id"),
        t.c.generation.label("trigger_generation"),
        last.c.generation.label("last_generation"),
        last.c.generated_at.label("last_generated_at"),
        func.array(waiting.scalar_subquery(), type_=ARRAY(Uuid)).label("waiting"),
        *k.c,
    ).select_from(
        one.outerjoin(t, and_(t.c.event_id == event_id, t.c.incident_id == incident_id))
        .outerjoin(k, k.c.id == incident_id)
        .outerjoin(last, true())
    )


# Built once: it runs for every trigger, and building it costs more than its cached compilation.
TRIGGER_STATE = _trigger_state_query()


async def trigger_state(conn: AsyncConnection, event_id: uuid.UUID, incident_id: uuid.UUID) -> TriggerState:
    row = (await conn.execute(TRIGGER_STATE, {"event_id": event_id, "incident_id": incident_id})).one()
    return TriggerState(
        seen=row.trigger_event_id is not None,
        covered_by=row.trigger_generation,
        incident=row if row.id is not None else None,
        last=(int(row.last_generation), row.last_generated_at) if row.last_generation is not None else None,
        waiting=list(row.waiting),
    )


async def add_trigger(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    incident_id: uuid.UUID,
    tenant_id: str,
    kind: str,
    at: datetime,
) -> None:
    await conn.execute(
        insert(triggers)
        .values(event_id=event_id, incident_id=incident_id, tenant_id=tenant_id, kind=kind, received_at=at)
        .on_conflict_do_nothing()
    )


async def pending_triggers(conn: AsyncConnection, incident_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    t = triggers
    query = (
        select(t.c.event_id, t.c.kind)
        .where(t.c.incident_id == incident_id, t.c.generation.is_(None))
        .order_by(t.c.received_at, t.c.event_id)
    )
    return [(row.event_id, row.kind) for row in await conn.execute(query)]


async def cover_triggers(
    conn: AsyncConnection, incident_id: uuid.UUID, event_ids: Sequence[uuid.UUID], generation: int
) -> None:
    if event_ids:
        t = triggers
        await conn.execute(
            update(t)
            .where(t.c.incident_id == incident_id, t.c.event_id.in_(event_ids), t.c.generation.is_(None))
            .values(generation=generation)
        )


async def add_covered_trigger(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    incident_id: uuid.UUID,
    tenant_id: str,
    kind: str,
    at: datetime,
    generation: int,
) -> None:
    """Record the trigger as covered by `generation`, whether or not it was recorded waiting before
    (a generation decided and made in one transaction never writes it waiting first)."""
    statement = insert(triggers).values(
        event_id=event_id,
        incident_id=incident_id,
        tenant_id=tenant_id,
        kind=kind,
        received_at=at,
        generation=generation,
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[triggers.c.event_id, triggers.c.incident_id],
            set_={"generation": statement.excluded.generation},
            where=triggers.c.generation.is_(None),
        )
    )


async def set_claim(conn: AsyncConnection, incident_id: uuid.UUID, until: datetime | None) -> None:
    await conn.execute(
        update(known_incidents).where(known_incidents.c.id == incident_id).values(claimed_until=until)
    )


async def generation(
    conn: AsyncConnection, incident_id: uuid.UUID, number: int | None = None
) -> Row[Any] | None:
    """One generation of an incident's hypotheses, the latest when no number is given."""
    query = select(generations).where(generations.c.incident_id == incident_id)
    if number is not None:
        query = query.where(generations.c.generation == number)
    return (await conn.execute(query.order_by(generations.c.generation.desc()).limit(1))).first()


async def prune_triggers(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete triggers a generation covered that arrived before `older_than`; waiting ones stay."""
    t = triggers
    return await delete_in_batches(engine, t, and_(t.c.generation.is_not(None), t.c.received_at < older_than))
