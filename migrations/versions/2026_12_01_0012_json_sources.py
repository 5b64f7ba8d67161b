"""integrations: generic JSON sources (a JMESPath mapping each).

Revision ID: 0012_json_sources
Revises: 0011_outbox_claims
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_json_sources"
down_revision: str | Sequence[str] | None = "0011_outbox_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "json_sources",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("mapping", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="integrations",
    )
    op.create_index("ix_json_sources_tenant", "json_sources", ["tenant_id", "id"], schema="integrations")


def downgrade() -> None:
    op.drop_table("json_sources", schema="integrations")
