"""oncall: Slack requests seen (the page's Acknowledge button; a replayed click is refused).

Revision ID: 0016_oncall_slack_requests
Revises: 0015_oncall_people
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_oncall_slack_requests"
down_revision: str | Sequence[str] | None = "0015_oncall_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_requests",
        sa.Column("signature_sha256", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema="oncall",
    )
    op.create_index("ix_slack_requests_received", "slack_requests", ["received_at"], schema="oncall")


def downgrade() -> None:
    op.drop_table("slack_requests", schema="oncall")
