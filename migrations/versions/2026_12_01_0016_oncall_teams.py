"""oncall: teams (a step target), and the indexes retention prunes by

Revision ID: 0016_oncall_teams
Revises: 0015_oncall_people
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_oncall_teams"
down_revision: str | Sequence[str] | None = "0015_oncall_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("members", postgresql.JSONB, nullable=False),
        # No foreign key: a deleted schedule leaves the team with a warning, not a failed delete.
        sa.Column("schedule_id", sa.Uuid),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="oncall",
    )
    op.create_index("ix_teams_tenant", "teams", ["tenant_id", "id"], schema="oncall")
    op.create_index(
        "ix_escalations_stopped",
        "escalations",
        ["updated_at"],
        schema="oncall",
        postgresql_where=sa.text("state = 'stopped'"),
    )
    op.create_index("ix_notifications_incident", "notifications", ["incident_id"], schema="oncall")


def downgrade() -> None:
    op.drop_index("ix_notifications_incident", table_name="notifications", schema="oncall")
    op.drop_index("ix_escalations_stopped", table_name="escalations", schema="oncall")
    op.drop_index("ix_teams_tenant", table_name="teams", schema="oncall")
    op.drop_table("teams", schema="oncall")
