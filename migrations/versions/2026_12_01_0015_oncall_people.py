"""oncall: its view of people (active or not), from auth's events

Revision ID: 0015_oncall_people
Revises: 0014_oncall_calendar_feeds
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_oncall_people"
down_revision: str | Sequence[str] | None = "0014_oncall_calendar_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="oncall",
    )


def downgrade() -> None:
    op.drop_table("people", schema="oncall")
