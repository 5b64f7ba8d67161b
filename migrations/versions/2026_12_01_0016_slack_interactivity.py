"""integrations: Slack interactivity (users linked to Slack members, Slack requests seen).

Revision ID: 0016_slack_interactivity
Revises: 0013_silences
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_slack_interactivity"
down_revision: str | Sequence[str] | None = "0013_silences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_links",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("slack_team_id", sa.String(64), nullable=False),
        sa.Column("slack_user_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "slack_team_id", "slack_user_id", name="uq_slack_links_member"),
        schema="integrations",
    )
    op.create_table(
        "slack_requests",
        sa.Column("signature_sha256", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema="integrations",
    )
    op.create_index("ix_slack_requests_received", "slack_requests", ["received_at"], schema="integrations")


def downgrade() -> None:
    op.drop_table("slack_requests", schema="integrations")
    op.drop_table("slack_links", schema="integrations")
