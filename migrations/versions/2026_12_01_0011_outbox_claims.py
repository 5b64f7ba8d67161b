"""outbox claims (a lease instead of row locks held while publishing), and the indexes pruning reads

Revision ID: 0011_outbox_claims
Revises: 0003, 0005, 0006, 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_outbox_claims"
# Every service's schema has an outbox: this follows each one's latest revision.
down_revision: str | Sequence[str] | None = ("0003", "0005", "0006", "0007")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_SCHEMAS = ("auth", "incidents", "ai_worker", "integrations")


def upgrade() -> None:
    for schema in OUTBOX_SCHEMAS:
        op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True)), schema=schema)
        op.create_index(
            "ix_outbox_published",
            "outbox",
            ["published_at"],
            schema=schema,
            postgresql_where=sa.text("published_at IS NOT NULL"),
        )
    op.create_index(
        "ix_inbound_finished",
        "inbound",
        ["processed_at"],
        schema="integrations",
        postgresql_where=sa.text("status <> 'pending'"),
    )
    op.create_index(
        "ix_deliveries_finished",
        "deliveries",
        ["updated_at"],
        schema="integrations",
        postgresql_where=sa.text("status <> 'pending'"),
    )
    op.create_index(
        "ix_triggers_covered",
        "triggers",
        ["received_at"],
        schema="ai_worker",
        postgresql_where=sa.text("generation IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_triggers_covered", table_name="triggers", schema="ai_worker")
    op.drop_index("ix_deliveries_finished", table_name="deliveries", schema="integrations")
    op.drop_index("ix_inbound_finished", table_name="inbound", schema="integrations")
    for schema in OUTBOX_SCHEMAS:
        op.drop_index("ix_outbox_published", table_name="outbox", schema=schema)
        op.drop_column("outbox", "claimed_until", schema=schema)
