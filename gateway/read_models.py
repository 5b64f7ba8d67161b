"""The gateway's read models (schema `gateway`), written only by the projector, read by the API.
Reads use SQLAlchemy Core: they are the hot path."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    and_,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)
# Advisory lock id: the projector holds it shared for each batch; a rebuild holds it exclusively
# while it catches up and swaps, so no batch lands in between.
PROJECTION_LOCK = 0x5EC0_0001

incidents = Table(
    "incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key", String(32), nullable=False),
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
    # The earlier incident this one continues (an alert firing again after its incident was resolved).
    Column("related_incident_id", Uuid),
    Index("ix_gw_incidents_tenant_created", "tenant_id", "created_at", "id"),
    # An incident by its key (INC-42), as the MCP tools name them.
    Index("ix_gw_incidents_tenant_number", "tenant_id", "number"),
    # The list's filters, each in the list's order.
    Index("ix_gw_incidents_tenant_state_created", "tenant_id", "state", "created_at", "id"),
    Index("ix_gw_incidents_tenant_severity_created", "tenant_id", "severity", "created_at", "id"),
    Index("ix_gw_incidents_tenant_service_created", "tenant_id", "service_name", "created_at", "id"),
    Index("ix_gw_incidents_tenant_assignee_created", "tenant_id", "assignee_id", "created_at", "id"),
    # Substring search over title and description (`q=`) without a sequential scan (pg_trgm).
    Index(
        "ix_gw_incidents_text_trgm",
        text("(title || ' ' || description) gin_trgm_ops"),
        postgresql_using="gin",
    ),
)

timeline = Table(
    "timeline",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Index("ix_gw_timeline_incident_seq", "incident_id", "seq"),
)

hypotheses = Table(
    "hypotheses",
    metadata,
    # The tenant leads the key: an event naming another tenant's incident (an import, say) can
    # neither show up in, nor take the place of, that incident's generations.
    Column("tenant_id", String(64), primary_key=True),
    Column("incident_id", Uuid, primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("engine", String(32), nullable=False),
    Column("items", JSONB, nullable=False),
    Column("generated_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("trigger", String(64)),
    Column("fallback_reason", Text),
)

evidence = Table(
    "evidence",
    metadata,
    # The tenant leads the key: an event naming another tenant's incident (an import, say) can
    # neither show up in, nor take the place of, that incident's generations.
    Column("tenant_id", String(64), primary_key=True),
    Column("incident_id", Uuid, primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("items", JSONB, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)

hypothesis_feedback = Table(
    "hypothesis_feedback",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("claim", Text, nullable=False),
    Column("engine", String(32), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("comment", Text, nullable=False),
    Column("given_by", String(64), nullable=False),
    Column("given_at", DateTime(timezone=True), nullable=False),
    Index("ix_gw_feedback_tenant_incident", "tenant_id", "incident_id"),
)

# Each incident's postmortem at its latest version (projected from postmortem.* events).
postmortems = Table(
    "postmortems",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("incident_id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("markdown", Text, nullable=False),
    Column("citations", JSONB, nullable=False),
    Column("engine", String(32), nullable=False),
    Column("fallback_reason", Text),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("published_version", Integer),
)

follow_ups = Table(
    "follow_ups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("title", String(200), nullable=False),
    Column("owner", String(120)),
    Column("due_date", Date),
    Column("done", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Index("ix_gw_follow_ups_tenant_done_created", "tenant_id", "done", "created_at", "id"),
    Index("ix_gw_follow_ups_incident", "incident_id"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# Operators' decisions to move the projector past an event it cannot apply (`sre-copilot
# projections skip`); the projector passes exactly these sequences without applying them.
projection_skips = Table(
    "projection_skips",
    metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Where a projection is stopped, and why, while it is (written by the projector, read by the skip
# command; a row goes once the checkpoint passes its sequence).
projection_stalls = Table(
    "projection_stalls",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("event_type", Text),
    Column("event_id", Text),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Tables about the projection rather than projected from events: a rebuild leaves them alone.
CONTROL_TABLES = frozenset({"checkpoints", "projection_skips", "projection_stalls"})


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# A cursor is the last row's position: its creation time in microseconds since the epoch and its id,
# `<microseconds>.<32 hex digits>`. Every string of that shape is a position (the document states the
# pattern), so a cursor is never refused once it has the shape.
CURSOR_PATTERN = r"^-?[0-9]{1,16}\.[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, incident_id: uuid.UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{incident_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on anything not of the cursor's shape (`CURSOR_PATTERN`)."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ValueError("invalid cursor")
    micros, hex_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)


async def get_incident(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    query = select(incidents).where(incidents.c.id == incident_id, incidents.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def get_incident_by_number(conn: AsyncConnection, tenant_id: str, number: int) -> Row[Any] | None:
    """The incident a person calls `INC-<number>` (numbered per tenant)."""
    query = select(incidents).where(incidents.c.tenant_id == tenant_id, incidents.c.number == number)
    return (await conn.execute(query)).first()


async def get_incidents(conn: AsyncConnection, tenant_id: str, ids: list[uuid.UUID]) -> list[Row[Any]]:
    """The tenant's incidents among `ids` (another tenant's are left out), in no particular order."""
    if not ids:
        return []
    query = select(incidents).where(incidents.c.tenant_id == tenant_id, incidents.c.id.in_(ids))
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class IncidentFilter:
    states: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    service_name: str | None = None
    assignee_id: str | None = None  # "none": unassigned ones
    text: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    oldest_first: bool = False


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_incidents(
    conn: AsyncConnection,
    tenant_id: str,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    where: IncidentFilter = IncidentFilter(),
) -> tuple[list[Row[Any]], str | None]:
    """Keyset-paginated on (created_at, id), newest first unless asked: stable under concurrent
    inserts, and every filter has an index that starts with the tenant."""
    conditions = [incidents.c.tenant_id == tenant_id]
    if where.states:
        conditions.append(incidents.c.state.in_(where.states))
    if where.severities:
        conditions.append(incidents.c.severity.in_(where.severities))
    if where.service_name:
        conditions.append(incidents.c.service_name == where.service_name)
    if where.assignee_id == "none":
        conditions.append(incidents.c.assignee_id.is_(None))
    elif where.assignee_id:
        conditions.append(incidents.c.assignee_id == where.assignee_id)
    if where.text:
        searchable = incidents.c.title + " " + incidents.c.description
        conditions.append(searchable.ilike(_like_pattern(where.text), escape="\\"))
    if where.created_from:
        conditions.append(incidents.c.created_at >= where.created_from)
    if where.created_to:
        conditions.append(incidents.c.created_at < where.created_to)
    position = tuple_(incidents.c.created_at, incidents.c.id)
    if after is not None:
        conditions.append(position > tuple_(*after) if where.oldest_first else position < tuple_(*after))
    order = (
        (incidents.c.created_at.asc(), incidents.c.id.asc())
        if where.oldest_first
        else (incidents.c.created_at.desc(), incidents.c.id.desc())
    )
    query = select(incidents).where(and_(*conditions)).order_by(*order).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def get_hypotheses(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int | None = None
) -> Row[Any] | None:
    """The latest generation, or the one asked for."""
    query = select(hypotheses).where(
        hypotheses.c.tenant_id == tenant_id, hypotheses.c.incident_id == incident_id
    )
    if generation is not None:
        query = query.where(hypotheses.c.generation == generation)
    return (await conn.execute(query.order_by(hypotheses.c.generation.desc()).limit(1))).first()


async def get_evidence(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int
) -> Row[Any] | None:
    query = select(evidence).where(
        evidence.c.tenant_id == tenant_id,
        evidence.c.incident_id == incident_id,
        evidence.c.generation == generation,
    )
    return (await conn.execute(query)).first()


async def incident_metrics(
    conn: AsyncConnection, tenant_id: str, created_from: datetime, created_to: datetime
) -> dict[str, Any]:
    """Counts by state and severity, and time to acknowledge / resolve (seconds), over the incidents
    created in [created_from, created_to)."""
    window = and_(
        incidents.c.tenant_id == tenant_id,
        incidents.c.created_at >= created_from,
        incidents.c.created_at < created_to,
    )
    by_state = {
        r.state: r.n
        for r in await conn.execute(
            select(incidents.c.state, func.count().label("n")).where(window).group_by(incidents.c.state)
        )
    }
    by_severity = {
        r.severity: r.n
        for r in await conn.execute(
            select(incidents.c.severity, func.count().label("n")).where(window).group_by(incidents.c.severity)
        )
    }

    async def durations(end: Any) -> dict[str, float | int | None]:
        seconds = func.extract("epoch", end - incidents.c.created_at)
        row = (
            await conn.execute(
                select(
                    func.count(end).label("n"),
                    func.avg(seconds).label("mean"),
                    func.percentile_cont(0.5).within_group(seconds).label("p50"),
                    func.percentile_cont(0.9).within_group(seconds).label("p90"),
                ).where(window, end.is_not(None))
            )
        ).one()
        return {
            "count": int(row.n),
            "mean_seconds": None if row.mean is None else round(float(row.mean), 3),
            "p50_seconds": None if row.p50 is None else round(float(row.p50), 3),
            "p90_seconds": None if row.p90 is None else round(float(row.p90), 3),
        }

    # Open now, whatever their age (the window does not apply), and the window's incidents per UTC day.
    open_now = and_(incidents.c.tenant_id == tenant_id, incidents.c.state != "resolved")
    open_by: dict[str, dict[str, int]] = {}
    for name, column in (("by_state", incidents.c.state), ("by_severity", incidents.c.severity)):
        counted = select(column.label("k"), func.count().label("n")).where(open_now).group_by(column)
        open_by[name] = {r.k: r.n for r in await conn.execute(counted)}
    day = func.to_char(func.timezone("UTC", incidents.c.created_at), "YYYY-MM-DD")
    per_day = await conn.execute(
        select(day.label("day"), func.count().label("n")).where(window).group_by(day).order_by(day)
    )

    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_severity": by_severity,
        "time_to_acknowledge": await durations(incidents.c.acknowledged_at),
        "time_to_resolve": await durations(incidents.c.resolved_at),
        "open": {"total": sum(open_by["by_state"].values()), **open_by},
        "created_per_day": [{"day": r.day, "count": r.n} for r in per_day],
    }


async def get_timeline(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> list[Row[Any]]:
    query = (
        select(timeline)
        .where(timeline.c.tenant_id == tenant_id, timeline.c.incident_id == incident_id)
        .order_by(timeline.c.seq)
    )
    return list((await conn.execute(query)).all())


async def last_seq(conn: AsyncConnection, name: str) -> int:
    value = (await conn.execute(select(checkpoints.c.last_seq).where(checkpoints.c.name == name))).scalar()
    return int(value or 0)


# ---- identity: users, tenants and integration keys, projected from auth's events (see
# projector.apply_identity_event). The gateway checks tokens and keys against these on every request.

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("full_name", String(120), nullable=False),
    Column("role", String(20), nullable=False),
    Column("status", String(16), nullable=False),
    Column("session_epoch", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_gw_users_tenant_id", "tenant_id", "id"),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

integration_keys = Table(
    "integration_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_gw_integration_keys_tenant_id", "tenant_id", "id"),
)


async def feedback_counts(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, generation: int
) -> dict[int, dict[str, int]]:
    """Per rank, how many responders confirmed or rejected it (each responder's latest verdict)."""
    f = hypothesis_feedback
    latest = (
        select(f.c.rank, f.c.given_by, f.c.verdict)
        .where(f.c.tenant_id == tenant_id, f.c.incident_id == incident_id, f.c.generation == generation)
        .distinct(f.c.rank, f.c.given_by)
        .order_by(f.c.rank, f.c.given_by, f.c.given_at.desc())
        .subquery()
    )
    counts: dict[int, dict[str, int]] = {}
    query = select(latest.c.rank, latest.c.verdict, func.count().label("n")).group_by(
        latest.c.rank, latest.c.verdict
    )
    for row in await conn.execute(query):
        counts.setdefault(row.rank, {"confirmed": 0, "rejected": 0})[row.verdict] = row.n
    return counts


async def accuracy_inputs(
    conn: AsyncConnection, tenant_id: str, resolved_from: datetime, resolved_to: datetime
) -> tuple[list[Any], list[Any], list[Any]]:
    """The incidents resolved in the window, their hypothesis generations and confirmations."""
    resolved = list(
        (
            await conn.execute(
                select(incidents.c.id, incidents.c.created_at, incidents.c.resolved_at).where(
                    incidents.c.tenant_id == tenant_id,
                    incidents.c.state == "resolved",
                    incidents.c.resolved_at >= resolved_from,
                    incidents.c.resolved_at < resolved_to,
                )
            )
        ).all()
    )
    ids = [r.id for r in resolved]
    if not ids:
        return resolved, [], []
    generations = list(
        (
            await conn.execute(
                select(
                    hypotheses.c.incident_id,
                    hypotheses.c.engine,
                    hypotheses.c.generated_at,
                    hypotheses.c["items"],  # `.c.items` is the collection's own method
                ).where(hypotheses.c.tenant_id == tenant_id, hypotheses.c.incident_id.in_(ids))
            )
        ).all()
    )
    f = hypothesis_feedback
    confirmations = list(
        (
            await conn.execute(
                select(f.c.incident_id, f.c.claim, f.c.given_at).where(
                    f.c.tenant_id == tenant_id, f.c.incident_id.in_(ids), f.c.verdict == "confirmed"
                )
            )
        ).all()
    )
    return resolved, generations, confirmations


async def get_postmortem(conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID) -> Row[Any] | None:
    query = select(postmortems).where(
        postmortems.c.tenant_id == tenant_id, postmortems.c.incident_id == incident_id
    )
    return (await conn.execute(query)).first()


async def incident_follow_ups(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID
) -> list[Row[Any]]:
    query = (
        select(follow_ups)
        .where(follow_ups.c.tenant_id == tenant_id, follow_ups.c.incident_id == incident_id)
        .order_by(follow_ups.c.created_at, follow_ups.c.id)
    )
    return list((await conn.execute(query)).all())


async def list_follow_ups(
    conn: AsyncConnection,
    tenant_id: str,
    done: bool | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Row[Any]], str | None]:
    """Every incident's follow-ups, oldest first (the longest-waiting open ones lead), keyset-paginated
    on (created_at, id), with the incident's key and title."""
    conditions = [follow_ups.c.tenant_id == tenant_id]
    if done is not None:
        conditions.append(follow_ups.c.done.is_(done))
    if after is not None:
        conditions.append(tuple_(follow_ups.c.created_at, follow_ups.c.id) > tuple_(*after))
    query = (
        select(follow_ups, incidents.c.key.label("incident_key"), incidents.c.title.label("incident_title"))
        .join(
            incidents,
            and_(incidents.c.id == follow_ups.c.incident_id, incidents.c.tenant_id == tenant_id),
            isouter=True,
        )
        .where(and_(*conditions))
        .order_by(follow_ups.c.created_at, follow_ups.c.id)
        .limit(limit + 1)
    )
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def people(conn: AsyncConnection, tenant_id: str) -> dict[str, str]:
    """The organisation's users by id: their names, for who did what."""
    query = select(users.c.id, users.c.full_name).where(users.c.tenant_id == tenant_id)
    return {row.id: row.full_name for row in await conn.execute(query)}
