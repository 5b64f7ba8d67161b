"""oncall: each person's secret calendar address

Revision ID: 0014_oncall_calendar_feeds
Revises: 0013_oncall_escalations
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_oncall_calendar_feeds"
down_revision: str | Sequence[str] | None = "0013_oncall_escalations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="oncall",
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds", schema="oncall")
