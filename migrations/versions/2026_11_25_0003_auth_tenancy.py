"""auth and tenancy: user status and session epochs, invitations, refresh tokens, rate-limit attempts,
integration keys; the gateway's read models of users, tenants and integration keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ---- auth.users: a status instead of is_active, invitations, session epochs, versions
    op.add_column(
        "users", sa.Column("status", sa.String(16), nullable=False, server_default="active"), schema="auth"
    )
    op.execute("UPDATE auth.users SET status = CASE WHEN is_active THEN 'active' ELSE 'deactivated' END")
    op.drop_column("users", "is_active", schema="auth")
    op.alter_column("users", "password_hash", existing_type=sa.String(255), nullable=True, schema="auth")
    op.add_column(
        "users", sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"), schema="auth"
    )
    op.add_column(
        "users", sa.Column("version", sa.Integer(), nullable=False, server_default="1"), schema="auth"
    )
    op.add_column("users", sa.Column("invite_token_hash", sa.String(64)), schema="auth")
    op.add_column("users", sa.Column("invite_expires_at", sa.DateTime(timezone=True)), schema="auth")
    op.add_column("users", sa.Column("invited_by", sa.String(64)), schema="auth")
    op.add_column(
        "users",
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="auth",
    )
    op.create_unique_constraint(
        "uq_auth_users_invite_token_hash", "users", ["invite_token_hash"], schema="auth"
    )

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("auth.users.id"), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema="auth",
    )
    op.create_index("ix_auth_refresh_tokens_family_id", "refresh_tokens", ["family_id"], schema="auth")
    op.create_index("ix_auth_refresh_tokens_user_id", "refresh_tokens", ["user_id"], schema="auth")

    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="auth",
    )
    op.create_index("ix_auth_attempts_scope_key_at", "attempts", ["scope", "key", "at"], schema="auth")
    op.create_index("ix_auth_attempts_at", "attempts", ["at"], schema="auth")

    op.create_table(
        "integration_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("auth.tenants.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema="auth",
    )
    op.create_index("ix_auth_integration_keys_tenant_id", "integration_keys", ["tenant_id"], schema="auth")

    # ---- gateway read models, projected from auth's events
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="gateway",
    )
    op.create_index("ix_gw_users_tenant_id", "users", ["tenant_id", "id"], schema="gateway")
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="gateway",
    )
    op.create_table(
        "integration_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("scopes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema="gateway",
    )
    op.create_index(
        "ix_gw_integration_keys_tenant_id", "integration_keys", ["tenant_id", "id"], schema="gateway"
    )


def downgrade() -> None:
    op.drop_index("ix_gw_integration_keys_tenant_id", table_name="integration_keys", schema="gateway")
    op.drop_table("integration_keys", schema="gateway")
    op.drop_table("tenants", schema="gateway")
    op.drop_index("ix_gw_users_tenant_id", table_name="users", schema="gateway")
    op.drop_table("users", schema="gateway")

    op.drop_index("ix_auth_integration_keys_tenant_id", table_name="integration_keys", schema="auth")
    op.drop_table("integration_keys", schema="auth")
    op.drop_index("ix_auth_attempts_at", table_name="attempts", schema="auth")
    op.drop_index("ix_auth_attempts_scope_key_at", table_name="attempts", schema="auth")
    op.drop_table("attempts", schema="auth")
    op.drop_index("ix_auth_refresh_tokens_user_id", table_name="refresh_tokens", schema="auth")
    op.drop_index("ix_auth_refresh_tokens_family_id", table_name="refresh_tokens", schema="auth")
    op.drop_table("refresh_tokens", schema="auth")

    op.drop_constraint("uq_auth_users_invite_token_hash", "users", schema="auth")
    for column in (
        "updated_at",
        "invited_by",
        "invite_expires_at",
        "invite_token_hash",
        "version",
        "session_epoch",
    ):
        op.drop_column("users", column, schema="auth")
    # Users still invited have no password; a downgrade cannot keep them.
    op.execute("DELETE FROM auth.users WHERE password_hash IS NULL")
    op.alter_column("users", "password_hash", existing_type=sa.String(255), nullable=False, schema="auth")
    op.add_column(
        "users", sa.Column("is_active", sa.Boolean(), nullable=False, server_default="true"), schema="auth"
    )
    op.execute("UPDATE auth.users SET is_active = (status = 'active')")
    op.drop_column("users", "status", schema="auth")
