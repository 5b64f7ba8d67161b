"""an index on the gateway's incidents by their per-tenant number (`INC-42`, as the MCP server looks
them up)

Revision ID: 0012_incident_numbers
Revises: 0008_projection_skips
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_incident_numbers"
down_revision: str | None = "0008_projection_skips"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_gw_incidents_tenant_number", "incidents", ["tenant_id", "number"], schema="gateway")


def downgrade() -> None:
    op.drop_index("ix_gw_incidents_tenant_number", table_name="incidents", schema="gateway")
