"""incident lifecycle: assignees, notes, a user directory; list filters and hypothesis generations

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # incidents: the aggregate
    op.add_column("incidents", sa.Column("assignee_id", sa.String(64)), schema="incidents")
    op.create_table(
        "notes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incidents.incidents.id"), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema="incidents",
    )
    op.create_index("ix_incidents_notes_incident_id", "notes", ["incident_id"], schema="incidents")
    op.create_table(
        "directory",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        schema="incidents",
    )

    # gateway: read models
    op.add_column("incidents", sa.Column("assignee_id", sa.String(64)), schema="gateway")
    op.create_index(
        "ix_gw_incidents_tenant_state_created",
        "incidents",
        ["tenant_id", "state", "created_at", "id"],
        schema="gateway",
    )
    op.create_index(
        "ix_gw_incidents_tenant_severity_created",
        "incidents",
        ["tenant_id", "severity", "created_at", "id"],
        schema="gateway",
    )
    op.create_index(
        "ix_gw_incidents_tenant_service_created",
        "incidents",
        ["tenant_id", "service_name", "created_at", "id"],
        schema="gateway",
    )
    op.create_index(
        "ix_gw_incidents_tenant_assignee_created",
        "incidents",
        ["tenant_id", "assignee_id", "created_at", "id"],
        schema="gateway",
    )
    # Substring search over title and description (`q=`) without a sequential scan.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE INDEX ix_gw_incidents_text_trgm ON gateway.incidents "
        "USING gin ((title || ' ' || description) gin_trgm_ops)"
    )
    # One row per generation of hypotheses; the API serves the latest.
    op.add_column(
        "hypotheses",
        sa.Column("generation", sa.Integer(), nullable=False, server_default="1"),
        schema="gateway",
    )
    op.add_column("hypotheses", sa.Column("trigger", sa.String(64)), schema="gateway")
    op.add_column("hypotheses", sa.Column("fallback_reason", sa.Text()), schema="gateway")
    op.drop_constraint("hypotheses_pkey", "hypotheses", schema="gateway")
    op.create_primary_key("hypotheses_pkey", "hypotheses", ["incident_id", "generation"], schema="gateway")
    op.create_table(
        "evidence",
        sa.Column("incident_id", sa.Uuid(), primary_key=True),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("items", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("evidence", schema="gateway")
    op.drop_constraint("hypotheses_pkey", "hypotheses", schema="gateway")
    op.execute("DELETE FROM gateway.hypotheses WHERE generation > 1")
    op.create_primary_key("hypotheses_pkey", "hypotheses", ["incident_id"], schema="gateway")
    for column in ("fallback_reason", "trigger", "generation"):
        op.drop_column("hypotheses", column, schema="gateway")
    op.execute("DROP INDEX gateway.ix_gw_incidents_text_trgm")
    for name in ("assignee", "service", "severity", "state"):
        op.drop_index(f"ix_gw_incidents_tenant_{name}_created", "incidents", schema="gateway")
    op.drop_column("incidents", "assignee_id", schema="gateway")
    op.drop_table("directory", schema="incidents")
    op.drop_table("notes", schema="incidents")
    op.drop_column("incidents", "assignee_id", schema="incidents")
