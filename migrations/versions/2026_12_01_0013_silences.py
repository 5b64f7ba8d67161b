"""integrations: maintenance windows and silences.

Revision ID: 0013_silences
Revises: 0012_json_sources
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_silences"
down_revision: str | Sequence[str] | None = "0012_json_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("spec", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="integrations",
    )
    op.create_index("ix_silences_tenant", "silences", ["tenant_id", "id"], schema="integrations")


def downgrade() -> None:
    op.drop_table("silences", schema="integrations")
