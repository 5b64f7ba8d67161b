"""the gateway's Idempotency-Key store (operational state, not a projection)

Revision ID: 0008_idempotency_keys
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_idempotency_keys"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("lock_token", sa.Uuid()),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("status_code", sa.Integer()),
        sa.Column("content_type", sa.String(128)),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="gateway",
    )
    op.create_index("ix_gw_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], schema="gateway")


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema="gateway")
