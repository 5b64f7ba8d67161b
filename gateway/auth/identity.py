"""The gateway's view of identity: auth's user, tenant and integration-key events projected into its
own read models (called by the projector, in the projector's transaction), and the queries on them.

Every apply is idempotent: creations do nothing when the row exists; changes apply only over an older
aggregate version."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import ErrorCode
from contracts.envelope import EventEnvelope
from contracts.events import (
    EVENT_TYPES,
    EventData,
    IntegrationKeyCreated,
    IntegrationKeyRevoked,
    TenantCreated,
    UserActivated,
    UserCreated,
    UserDeactivated,
    UserInvited,
    UserPasswordChanged,
    UserReactivated,
    UserRoleChanged,
    UserStatus,
)
from gateway.errors import ApiError
from gateway.projection import tables

# What `apply_identity_event` applies: every event of these aggregates.
IDENTITY_TYPES = frozenset(
    event_type
    for event_type, _version in EVENT_TYPES
    if event_type.split(".")[0] in ("tenant", "user", "integration_key")
)


async def apply_identity_event(conn: AsyncConnection, event: EventEnvelope, data: EventData) -> None:
    """Apply one of auth's events to the identity read models; anything else is ignored."""
    if isinstance(data, TenantCreated):
        await conn.execute(
            insert(tables.tenants)
            .values(id=event.tenant_id, name=data.name, slug=data.slug, created_at=event.occurred_at)
            .on_conflict_do_nothing()
        )
    elif isinstance(data, UserCreated | UserInvited):
        status = UserStatus.INVITED if isinstance(data, UserInvited) else UserStatus.ACTIVE
        await conn.execute(
            insert(tables.users)
            .values(
                id=data.user_id,
                tenant_id=event.tenant_id,
                email=data.email,
                full_name=data.full_name,
                role=data.role.value,
                status=status.value,
                session_epoch=0,
                version=event.aggregate_version,
                created_at=event.occurred_at,
                updated_at=event.occurred_at,
            )
            .on_conflict_do_nothing()
        )
    elif isinstance(data, UserActivated):
        await _change_user(
            conn, event, data.user_id, status=UserStatus.ACTIVE.value, full_name=data.full_name
        )
    elif isinstance(data, UserReactivated):
        await _change_user(conn, event, data.user_id, status=UserStatus.ACTIVE.value)
    elif isinstance(data, UserDeactivated):
        await _change_user(
            conn, event, data.user_id, status=UserStatus.DEACTIVATED.value, session_epoch=data.session_epoch
        )
    elif isinstance(data, UserRoleChanged):
        await _change_user(conn, event, data.user_id, role=data.to_role.value)
    elif isinstance(data, UserPasswordChanged):
        await _change_user(conn, event, data.user_id, session_epoch=data.session_epoch)
    elif isinstance(data, IntegrationKeyCreated):
        await conn.execute(
            insert(tables.integration_keys)
            .values(
                id=data.key_id,
                tenant_id=event.tenant_id,
                name=data.name,
                scopes=[s.value for s in data.scopes],
                secret_sha256=data.secret_sha256,
                created_by=data.created_by,
                created_at=data.created_at,
            )
            .on_conflict_do_nothing()
        )
    elif isinstance(data, IntegrationKeyRevoked):
        keys = tables.integration_keys
        await conn.execute(
            update(keys)
            .where(keys.c.id == data.key_id, keys.c.tenant_id == event.tenant_id, keys.c.revoked_at.is_(None))
            .values(revoked_at=data.revoked_at)
        )


async def _change_user(conn: AsyncConnection, event: EventEnvelope, user_id: str, **values: Any) -> None:
    await conn.execute(
        update(tables.users)
        .where(
            tables.users.c.id == user_id,
            tables.users.c.tenant_id == event.tenant_id,
            tables.users.c.version < event.aggregate_version,
        )
        .values(version=event.aggregate_version, updated_at=event.occurred_at, **values)
    )


# ---- queries


async def get_principal(conn: AsyncConnection, user_id: str) -> Any:
    """What every authenticated request checks: is the user still active, with which role and epoch."""
    users = tables.users
    query = select(users.c.tenant_id, users.c.role, users.c.status, users.c.session_epoch).where(
        users.c.id == user_id
    )
    return (await conn.execute(query)).first()


async def get_user(conn: AsyncConnection, tenant_id: str, user_id: str) -> Row[Any] | None:
    query = select(tables.users).where(tables.users.c.id == user_id, tables.users.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def list_users(conn: AsyncConnection, tenant_id: str, limit: int, after: str | None) -> list[Row[Any]]:
    """Oldest first; ids are UUIDv7-based, so their order is their creation order (keyset on id)."""
    query = select(tables.users).where(tables.users.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tables.users.c.id > after)
    return list((await conn.execute(query.order_by(tables.users.c.id).limit(limit + 1))).all())


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> Row[Any] | None:
    return (await conn.execute(select(tables.tenants).where(tables.tenants.c.id == tenant_id))).first()


async def get_integration_key(conn: AsyncConnection, key_id: str) -> Row[Any] | None:
    return (
        await conn.execute(select(tables.integration_keys).where(tables.integration_keys.c.id == key_id))
    ).first()


async def list_integration_keys(
    conn: AsyncConnection, tenant_id: str, limit: int, after: str | None
) -> list[Row[Any]]:
    keys = tables.integration_keys
    query = select(keys).where(keys.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(keys.c.id > after)
    return list((await conn.execute(query.order_by(keys.c.id).limit(limit + 1))).all())


# ---- revocations: in effect when the read model every request is checked against refuses them

REVOCATION_POLL_SECONDS = 0.05


async def key_refused(conn: AsyncConnection, tenant_id: str, key_id: str) -> bool:
    """Would `dependencies.verify_integration_key` refuse this key now? (An unprojected key would be
    refused too, but its creation could still be projected after this check: only a revoked row
    counts.)"""
    row = await get_integration_key(conn, key_id)
    return row is not None and row.tenant_id == tenant_id and row.revoked_at is not None


async def user_refused(conn: AsyncConnection, tenant_id: str, user_id: str) -> bool:
    """Would `TokenVerifier.verify` refuse every token of this user now? (No row means the token's
    claims are trusted: not refused.)"""
    row = await get_principal(conn, user_id)
    return row is not None and row.tenant_id == tenant_id and row.status != UserStatus.ACTIVE.value


async def until_in_effect(
    state: Any, seq: int | None, in_effect: Callable[[AsyncConnection], Awaitable[bool]]
) -> None:
    """Return once `in_effect` holds against the read models, or raise a 503 with Retry-After.

    The projector's checkpoint reaching the command's sequence is the usual way; without a sequence
    (auth's fast path was paused, so its relay publishes the event later; or nothing changed, as when
    revoking twice) or when that wait times out, the read model is polled for a little longer."""
    settings = state.settings
    if seq is not None:
        await state.projector.wait_for(seq, settings.read_your_writes_timeout_seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.revocation_confirm_seconds
    while True:
        async with state.engine.connect() as conn:
            if await in_effect(conn):
                return
        if loop.time() >= deadline:
            raise ApiError(
                503,
                ErrorCode.UNAVAILABLE.value,
                "recorded, but not yet in effect at the gateway: the credential may still work for a "
                "moment; retry to confirm",
                {"retry_after": 1},
            )
        await asyncio.sleep(REVOCATION_POLL_SECONDS)
