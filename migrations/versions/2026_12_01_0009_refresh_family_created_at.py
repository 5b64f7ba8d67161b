"""refresh-token families remember when their login began (their absolute lifetime counts from it)

Revision ID: 0009_refresh_family_created_at
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_refresh_family_created_at"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("family_created_at", sa.DateTime(timezone=True)), schema="auth")
    # Existing families: their oldest token still kept is the best estimate of when they began.
    op.execute(
        "UPDATE auth.refresh_tokens AS t SET family_created_at = f.began FROM "
        "(SELECT family_id, min(created_at) AS began FROM auth.refresh_tokens GROUP BY family_id) AS f "
        "WHERE f.family_id = t.family_id"
    )
    op.alter_column(
        "refresh_tokens",
        "family_created_at",
        existing_type=sa.DateTime(timezone=True),
        nullable=False,
        schema="auth",
    )


def downgrade() -> None:
    op.drop_column("refresh_tokens", "family_created_at", schema="auth")
