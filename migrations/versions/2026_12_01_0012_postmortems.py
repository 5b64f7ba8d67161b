"""postmortems and follow-up actions: incidents' tables and the gateway's read models

Revision ID: 0012_postmortems
Revises: 0011_outbox_claims
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0012_postmortems"
down_revision: str | Sequence[str] | None = "0011_outbox_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "postmortems",
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incidents.incidents.id"), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("snapshot", JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        schema="incidents",
    )
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incidents.incidents.id"), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("snapshot", JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        schema="incidents",
    )
    op.create_index("ix_incidents_follow_ups_incident_id", "follow_ups", ["incident_id"], schema="incidents")

    op.create_table(
        "postmortems",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("citations", JSONB(), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("fallback_reason", sa.Text()),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("published_version", sa.Integer()),
        schema="gateway",
    )
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(120)),
        sa.Column("due_date", sa.Date()),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        schema="gateway",
    )
    op.create_index(
        "ix_gw_follow_ups_tenant_done_created",
        "follow_ups",
        ["tenant_id", "done", "created_at", "id"],
        schema="gateway",
    )
    op.create_index("ix_gw_follow_ups_incident", "follow_ups", ["incident_id"], schema="gateway")


def downgrade() -> None:
    op.drop_table("follow_ups", schema="gateway")
    op.drop_table("postmortems", schema="gateway")
    op.drop_table("follow_ups", schema="incidents")
    op.drop_table("postmortems", schema="incidents")
