"""`/api/v1/integration-keys`: API keys for machines (Alertmanager, CI), scoped to what they may do.
Admins create and revoke them; the secret is shown once, at creation. A key is revoked, never
deleted (`POST .../revoke`): it stays listed, with `revoked_at`, for the record of who sent what."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from contracts.commands import (
    CreateIntegrationKey,
    ErrorCode,
    IntegrationKeyAccepted,
    IntegrationKeyIssued,
    RevokeIntegrationKey,
)
from contracts.wire import NO_NUL
from gateway.auth import identity
from gateway.auth.dependencies import AdminDep
from gateway.auth.schemas import (
    IntegrationKeyCreate,
    IntegrationKeyPage,
    IntegrationKeyRead,
    IntegrationKeySecretRead,
)
from gateway.errors import ApiError, declare
from gateway.state import GatewayDep

router = APIRouter(prefix="/api/v1/integration-keys", tags=["integration keys"])

KeyId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
NOT_FOUND = ApiError(404, ErrorCode.NOT_FOUND.value, "integration key not found")


def _read(row: Any) -> IntegrationKeyRead:
    return IntegrationKeyRead.model_validate(row, from_attributes=True)


@router.post("", status_code=201, response_model=IntegrationKeySecretRead, responses=declare(409, 504))
async def create_key(
    gw: GatewayDep, body: IntegrationKeyCreate, caller: AdminDep
) -> IntegrationKeySecretRead:
    """A new key with its scopes (`alerts:write`, `deploys:write`). The answer's `key` is the only
    time the secret is shown; send it as `Authorization: Bearer sck_...`. It works at once."""
    state = gw
    issued = await state.commands.call(
        CreateIntegrationKey,
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        IntegrationKeyIssued,
    )
    await state.projector.wait_for(issued.seq, state.settings.read_your_writes_timeout_seconds)
    return IntegrationKeySecretRead(**issued.key.model_dump(), key=issued.secret)


@router.get("", response_model=IntegrationKeyPage)
async def list_keys(
    gw: GatewayDep,
    caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
) -> IntegrationKeyPage:
    """The organisation's keys, revoked ones included, oldest first; never their secrets."""
    async with gw.engine.connect() as conn:
        rows = await identity.list_integration_keys(conn, caller.tenant_id, limit, cursor)
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return IntegrationKeyPage(items=[_read(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/{key_id}", response_model=IntegrationKeyRead)
async def get_key(gw: GatewayDep, key_id: KeyId, caller: AdminDep) -> IntegrationKeyRead:
    async with gw.engine.connect() as conn:
        row = await identity.get_integration_key(conn, key_id)
    if row is None or row.tenant_id != caller.tenant_id:
        raise NOT_FOUND
    return _read(row)


@router.post("/{key_id}/revoke", response_model=IntegrationKeyRead, responses=declare(504))
async def revoke_key(gw: GatewayDep, key_id: KeyId, caller: AdminDep) -> IntegrationKeyRead:
    """Revoke a key: it is refused from the moment this answers 200 with the key, `revoked_at` set,
    and stays listed as revoked. Revoking twice is harmless. A 503 (with `Retry-After`) means auth
    recorded the revocation but the gateway does not refuse the key yet: retry until it answers 200."""
    state = gw
    accepted = await state.commands.call(
        RevokeIntegrationKey, {"caller": caller.model_dump(), "key_id": key_id}, IntegrationKeyAccepted
    )
    await identity.until_in_effect(
        state, accepted.seq, lambda conn: identity.key_refused(conn, caller.tenant_id, accepted.key.id)
    )
    async with state.engine.connect() as conn:
        row = await identity.get_integration_key(conn, accepted.key.id)
    return _read(row) if row is not None else IntegrationKeyRead.model_validate(accepted.key.model_dump())
