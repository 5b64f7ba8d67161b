"""auth's tables (schema `auth`) and its queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.outbox import outbox_table

SCHEMA = "auth"
metadata = MetaData(schema=SCHEMA)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey(tenants.c.id), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("full_name", String(120), nullable=False),
    # NULL until an invited user sets one.
    Column("password_hash", String(255)),
    Column("role", String(20), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    # Raised when every token the user holds must die (deactivation, password change); access
    # tokens carry it as `sep` and the gateway refuses older ones.
    Column("session_epoch", Integer, nullable=False, server_default="0"),
    # The user aggregate's version: each of its events carries the next one.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("invite_token_hash", String(64), unique=True),
    Column("invite_expires_at", DateTime(timezone=True)),
    Column("invited_by", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Rotating refresh tokens: only their SHA-256 is kept. A family is one login's chain of rotations;
# presenting a token that was already used revokes its whole family (someone else has a copy), and a
# family older than REFRESH_FAMILY_MAX_AGE_SECONDS refreshes no more.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column("user_id", String(64), ForeignKey(users.c.id), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # When the family's login happened, copied along each rotation: its absolute lifetime counts
    # from here (the tokens' own created_at slides with every rotation).
    Column("family_created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# Counted attempts for rate limits (failed logins, registrations), shared by every auth replica.
attempts = Table(
    "attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("key", String(320), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_auth_attempts_scope_key_at", "scope", "key", "at"),
    Index("ix_auth_attempts_at", "at"),
)

integration_keys = Table(
    "integration_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey(tenants.c.id), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("scopes", ARRAY(String(32)), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

outbox = outbox_table(metadata)


async def user_by_email(conn: AsyncConnection, email: str) -> Row[Any] | None:
    query = (
        select(users, tenants.c.name.label("tenant_name"), tenants.c.slug.label("tenant_slug"))
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .where(users.c.email == email)
    )
    return (await conn.execute(query)).first()


async def user_by_id(conn: AsyncConnection, user_id: str, *, for_update: bool = False) -> Row[Any] | None:
    query = (
        select(users, tenants.c.name.label("tenant_name"), tenants.c.slug.label("tenant_slug"))
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .where(users.c.id == user_id)
    )
    if for_update:
        query = query.with_for_update(of=users)
    return (await conn.execute(query)).first()


async def user_by_invite(conn: AsyncConnection, token_hash: str) -> Row[Any] | None:
    query = (
        select(users, tenants.c.name.label("tenant_name"), tenants.c.slug.label("tenant_slug"))
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .where(users.c.invite_token_hash == token_hash)
        .with_for_update(of=users)
    )
    return (await conn.execute(query)).first()


async def refresh_token_by_hash(conn: AsyncConnection, token_hash: str) -> Row[Any] | None:
    query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
    return (await conn.execute(query)).first()


async def revoke_family(conn: AsyncConnection, family_id: Any, now: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_sessions(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def lock_attempt_keys(conn: AsyncConnection, lock_ids: list[int]) -> None:
    """Serialise check-then-record per key across replicas (sorted, so two never deadlock)."""
    for lock_id in sorted(set(lock_ids)):
        await conn.execute(select(func.pg_advisory_xact_lock(lock_id)))


async def recent_attempts(
    conn: AsyncConnection, scope: str, key: str, since: datetime, limit: int
) -> list[datetime]:
    query = (
        select(attempts.c.at)
        .where(attempts.c.scope == scope, attempts.c.key == key, attempts.c.at > since)
        .order_by(attempts.c.at.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars())


async def record_attempt(conn: AsyncConnection, scope: str, key: str, at: datetime) -> int:
    inserted = await conn.execute(
        attempts.insert().values(scope=scope, key=key, at=at).returning(attempts.c.id)
    )
    return int(inserted.scalar_one())


async def forget_attempts(conn: AsyncConnection, ids: list[int]) -> None:
    if ids:
        await conn.execute(delete(attempts).where(attempts.c.id.in_(ids)))


async def clear_attempts(conn: AsyncConnection, scope: str, key: str) -> None:
    await conn.execute(delete(attempts).where(attempts.c.scope == scope, attempts.c.key == key))


async def purge_expired(conn: AsyncConnection, attempts_before: datetime, tokens_before: datetime) -> None:
    await conn.execute(delete(attempts).where(attempts.c.at < attempts_before))
    await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < tokens_before))


async def lock_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    """Serialise the tenant's count-then-insert (keys, invitations) across replicas."""
    await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())


async def count_active_keys(conn: AsyncConnection, tenant_id: str) -> int:
    query = select(func.count()).where(
        integration_keys.c.tenant_id == tenant_id, integration_keys.c.revoked_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def count_pending_invites(conn: AsyncConnection, tenant_id: str) -> int:
    query = select(func.count()).where(users.c.tenant_id == tenant_id, users.c.status == "invited")
    return int((await conn.execute(query)).scalar_one())


# ---------------------------------------------------------------- writes


async def insert_tenant(conn: AsyncConnection, tenant_id: str, name: str, slug: str) -> None:
    await conn.execute(tenants.insert().values(id=tenant_id, name=name, slug=slug))


async def insert_user(conn: AsyncConnection, **values: Any) -> None:
    """A new user (an owner at registration, or an invited one); a taken email raises IntegrityError."""
    await conn.execute(users.insert().values(**values))


async def bump_user(
    conn: AsyncConnection, user_id: str, now: datetime, *, end_sessions: bool = False, **values: Any
) -> Row[Any]:
    """Change a user and advance its aggregate version; `end_sessions` raises the session epoch, which
    kills every access token issued before. Returns the updated row."""
    if end_sessions:
        values["session_epoch"] = users.c.session_epoch + 1
    statement = (
        update(users)
        .where(users.c.id == user_id)
        .values(version=users.c.version + 1, updated_at=now, **values)
        .returning(users)
    )
    return (await conn.execute(statement)).one()


async def set_password_hash(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """A rehash with today's parameters: the same password, so no new version and no event."""
    await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


async def insert_refresh_token(
    conn: AsyncConnection,
    *,
    token_hash: str,
    family_id: uuid.UUID,
    user_id: str,
    tenant_id: str,
    now: datetime,
    family_created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        refresh_tokens.insert().values(
            id=uuid.uuid4(),
            token_hash=token_hash,
            family_id=family_id,
            user_id=user_id,
            tenant_id=tenant_id,
            created_at=now,
            family_created_at=family_created_at,
            expires_at=expires_at,
        )
    )


async def mark_refresh_token_used(conn: AsyncConnection, token_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == token_id).values(used_at=now))


async def insert_integration_key(conn: AsyncConnection, **values: Any) -> Row[Any]:
    return (await conn.execute(integration_keys.insert().values(**values).returning(integration_keys))).one()


async def integration_key_for_update(conn: AsyncConnection, tenant_id: str, key_id: str) -> Row[Any] | None:
    """The tenant's key, locked; another tenant's is not found."""
    query = (
        integration_keys.select()
        .where(integration_keys.c.id == key_id, integration_keys.c.tenant_id == tenant_id)
        .with_for_update()
    )
    return (await conn.execute(query)).first()


async def revoke_integration_key(conn: AsyncConnection, key_id: str, now: datetime) -> Row[Any]:
    statement = (
        update(integration_keys)
        .where(integration_keys.c.id == key_id)
        .values(revoked_at=now)
        .returning(integration_keys)
    )
    return (await conn.execute(statement)).one()
