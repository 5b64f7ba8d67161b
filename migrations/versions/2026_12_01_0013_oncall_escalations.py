"""oncall: escalation policies, routing, contact methods, escalations (the due-time table), pages,
notifications, keys

Revision ID: 0013_oncall_escalations
Revises: 0012_oncall_schedules
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_oncall_escalations"
down_revision: str | Sequence[str] | None = "0012_oncall_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "oncall"
TABLES = ("keys", "notifications", "pages", "escalations", "contact_methods", "routing", "policies")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("steps", postgresql.JSONB(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_policies_tenant", "policies", ["tenant_id", "id"], schema=SCHEMA)
    op.create_table(
        "routing",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("rules", postgresql.JSONB(), nullable=False),
        sa.Column("default_policy_id", sa.Uuid()),
        sa.Column("updated_by", sa.String(64), nullable=False),
        _at("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "contact_methods",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("delay_minutes", sa.Float(), nullable=False),
        sa.Column("secret", sa.Text()),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_contact_methods_user", "contact_methods", ["tenant_id", "user_id"], schema=SCHEMA)
    op.create_table(
        "escalations",
        sa.Column("incident_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("policy", postgresql.JSONB(), nullable=False),
        sa.Column("incident", postgresql.JSONB(), nullable=False),
        _at("started_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fired", postgresql.JSONB(), nullable=False),
        _at("next_due_at", nullable=True),
        sa.Column("stopped_reason", sa.String(32)),
        _at("updated_at"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_escalations_due",
        "escalations",
        ["next_due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("acknowledged_at", nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_pages_incident", "pages", ["incident_id"], schema=SCHEMA)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "page_id", sa.Uuid(), sa.ForeignKey(f"{SCHEMA}.pages.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("contact_method_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _at("due_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("lease_until", nullable=True),
        sa.Column("last_error", sa.Text()),
        _at("updated_at"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("secret", sa.Text(), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table, schema=SCHEMA)
