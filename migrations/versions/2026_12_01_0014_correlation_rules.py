"""integrations: correlation rules, and the index correlation reads firing alerts by.

Revision ID: 0014_correlation_rules
Revises: 0013_silences
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_correlation_rules"
down_revision: str | Sequence[str] | None = "0013_silences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "correlation_rules",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("spec", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="integrations",
    )
    op.create_index(
        "ix_correlation_rules_tenant", "correlation_rules", ["tenant_id", "id"], schema="integrations"
    )
    op.create_index(
        "ix_alerts_firing_starts",
        "alerts",
        ["tenant_id", "starts_at"],
        schema="integrations",
        postgresql_where=sa.text("status = 'firing'"),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_firing_starts", table_name="alerts", schema="integrations")
    op.drop_table("correlation_rules", schema="integrations")
