"""The gateway's read models (schema `gateway`): written only by the projection (`apply.py`), read by
the features' queries; and the projection's own control tables (checkpoints, skips, stalls)."""

from __future__ import annotations

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
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
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


async def last_seq(conn: AsyncConnection, name: str) -> int:
    value = (await conn.execute(select(checkpoints.c.last_seq).where(checkpoints.c.name == name))).scalar()
    return int(value or 0)


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
