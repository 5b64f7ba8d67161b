"""ai_worker evidence: its own view of deploys and alerts, numbered generations, trigger bookkeeping

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "ai_worker"


def upgrade() -> None:
    # The note an incident was resolved with is its recorded root cause; the lease keeps two
    # replicas (or two triggers) from generating for one incident at the same time.
    op.add_column("known_incidents", sa.Column("resolution", sa.Text()), schema=SCHEMA)
    op.add_column("known_incidents", sa.Column("claimed_until", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_index(
        "ix_known_incidents_tenant_service",
        "known_incidents",
        ["tenant_id", "service_name", "state"],
        schema=SCHEMA,
    )

    # One row per generation (1, 2, ...) instead of one per incident.
    op.add_column(
        "generations",
        sa.Column("generation", sa.Integer(), nullable=False, server_default=sa.text("1")),
        schema=SCHEMA,
    )
    op.add_column(
        "generations",
        sa.Column("trigger", sa.String(64), nullable=False, server_default="incident.created"),
        schema=SCHEMA,
    )
    op.add_column("generations", sa.Column("fallback_reason", sa.Text()), schema=SCHEMA)
    op.add_column(
        "generations",
        sa.Column("evidence", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )
    op.add_column("generations", sa.Column("evidence_event_id", sa.Uuid()), schema=SCHEMA)
    op.drop_constraint("generations_pkey", "generations", schema=SCHEMA, type_="primary")
    op.create_primary_key("generations_pkey", "generations", ["incident_id", "generation"], schema=SCHEMA)

    op.create_table(
        "deploys",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("deploy_id", sa.String(200), nullable=False),
        sa.Column("service_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("commit", sa.Text()),
        sa.Column("author", sa.Text()),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deploy_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_deploys_tenant_service_time",
        "deploys",
        ["tenant_id", "service_name", "deployed_at"],
        schema=SCHEMA,
    )

    op.create_table(
        "alerts",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("alertname", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("labels", postgresql.JSONB(), nullable=False),
        sa.Column("annotations", postgresql.JSONB(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("generator_url", sa.Text()),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "fingerprint"),
        schema=SCHEMA,
    )

    # Every trigger (event id x incident) the worker has seen; `generation` is the one that covered
    # it, NULL while it waits (coalescing). What makes a redelivered trigger a no-op.
    op.create_table(
        "triggers",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer()),
        sa.PrimaryKeyConstraint("event_id", "incident_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_triggers_pending",
        "triggers",
        ["incident_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("generation IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_triggers_pending", table_name="triggers", schema=SCHEMA)
    op.drop_table("triggers", schema=SCHEMA)
    op.drop_table("alerts", schema=SCHEMA)
    op.drop_index("ix_deploys_tenant_service_time", table_name="deploys", schema=SCHEMA)
    op.drop_table("deploys", schema=SCHEMA)
    op.execute("DELETE FROM ai_worker.generations WHERE generation > 1")
    op.drop_constraint("generations_pkey", "generations", schema=SCHEMA, type_="primary")
    op.create_primary_key("generations_pkey", "generations", ["incident_id"], schema=SCHEMA)
    for column in ("evidence_event_id", "evidence", "fallback_reason", "trigger", "generation"):
        op.drop_column("generations", column, schema=SCHEMA)
    op.drop_index("ix_known_incidents_tenant_service", table_name="known_incidents", schema=SCHEMA)
    op.drop_column("known_incidents", "claimed_until", schema=SCHEMA)
    op.drop_column("known_incidents", "resolution", schema=SCHEMA)
