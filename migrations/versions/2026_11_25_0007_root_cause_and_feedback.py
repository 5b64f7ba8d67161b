"""root causes recorded at resolution, and responders' feedback on hypotheses

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("root_cause", sa.Text()), schema="incidents")
    op.add_column("incidents", sa.Column("root_cause", sa.Text()), schema="gateway")
    op.create_table(
        "hypothesis_feedback",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("given_by", sa.String(64), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        schema="gateway",
    )
    op.create_index(
        "ix_gw_feedback_tenant_incident",
        "hypothesis_feedback",
        ["tenant_id", "incident_id"],
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("hypothesis_feedback", schema="gateway")
    op.drop_column("incidents", "root_cause", schema="gateway")
    op.drop_column("incidents", "root_cause", schema="incidents")
