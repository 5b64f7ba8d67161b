"""incident events carry the whole incident: its timing fields in incidents' table; each consuming
service records the events it handled (by event id); the user directory guarded by the user's version;
hypotheses and evidence keyed by tenant first

Revision ID: 0010_snapshot_events
Revises: 0005, 0006, 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_snapshot_events"
down_revision: str | Sequence[str] | None = ("0005", "0006", "0007")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSUMING_SCHEMAS = ("incidents", "ai_worker", "integrations")


def upgrade() -> None:
    op.add_column("incidents", sa.Column("acknowledged_at", sa.DateTime(timezone=True)), schema="incidents")
    op.add_column("incidents", sa.Column("resolved_at", sa.DateTime(timezone=True)), schema="incidents")
    # The same timings the gateway derived from the transitions, now part of the aggregate.
    op.execute(
        """
        UPDATE incidents.incidents AS i SET
            acknowledged_at = (
                SELECT min(t.at) FROM incidents.transitions t
                WHERE t.incident_id = i.id AND t.from_state = 'detected'
            ),
            resolved_at = CASE WHEN i.state = 'resolved' THEN (
                SELECT max(t.at) FROM incidents.transitions t
                WHERE t.incident_id = i.id AND t.to_state = 'resolved'
            ) END
        """
    )
    # Rows written before carry no user version: the next event of each user replaces them.
    op.add_column(
        "directory",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        schema="incidents",
    )
    op.drop_column("directory", "last_seq", schema="incidents")
    op.add_column(
        "known_incidents",
        sa.Column("resolution_version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        schema="ai_worker",
    )
    for schema in CONSUMING_SCHEMAS:
        op.create_table(
            "consumed_events",
            sa.Column("consumer", sa.String(64), primary_key=True),
            sa.Column("event_id", sa.Uuid(), primary_key=True),
            sa.Column(
                "consumed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
            ),
            schema=schema,
        )
        op.create_index(
            f"ix_{schema}_consumed_events_consumed_at", "consumed_events", ["consumed_at"], schema=schema
        )
    for table in ("hypotheses", "evidence"):
        op.drop_constraint(f"{table}_pkey", table, schema="gateway", type_="primary")
        op.create_primary_key(
            f"{table}_pkey", table, ["tenant_id", "incident_id", "generation"], schema="gateway"
        )


def downgrade() -> None:
    for table in ("hypotheses", "evidence"):
        op.drop_constraint(f"{table}_pkey", table, schema="gateway", type_="primary")
        op.create_primary_key(f"{table}_pkey", table, ["incident_id", "generation"], schema="gateway")
    for schema in CONSUMING_SCHEMAS:
        op.drop_table("consumed_events", schema=schema)
    op.drop_column("known_incidents", "resolution_version", schema="ai_worker")
    op.add_column(
        "directory",
        sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        schema="incidents",
    )
    op.drop_column("directory", "version", schema="incidents")
    op.drop_column("incidents", "resolved_at", schema="incidents")
    op.drop_column("incidents", "acknowledged_at", schema="incidents")
