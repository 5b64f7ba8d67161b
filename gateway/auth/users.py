"""`/api/v1/users`: an organisation's people. Admins invite, list, change roles and deactivate;
owners also manage admins and owners. Another organisation's user is a 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from contracts.commands import (
    ChangeUserRole,
    ErrorCode,
    InviteIssued,
    InviteUser,
    MemberAccepted,
    MemberView,
    SetUserActive,
)
from contracts.wire import NO_NUL
from gateway.auth import identity
from gateway.auth.dependencies import AdminDep
from gateway.auth.schemas import InviteCreate, InviteRead, RoleUpdate, UserPage, UserRead
from gateway.errors import ApiError, declare
from gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
NOT_FOUND = ApiError(404, ErrorCode.NOT_FOUND.value, "user not found")


def user_read(row: Any) -> UserRead:
    return UserRead.model_validate(row, from_attributes=True)


async def _answer(gw: Gateway, tenant_id: str, user: MemberView, seq: int | None) -> UserRead:
    """The user as the read model has it once the change is projected (read-your-writes)."""
    if await gw.projector.wait_for(seq, gw.settings.read_your_writes_timeout_seconds):
        async with gw.engine.connect() as conn:
            row = await identity.get_user(conn, tenant_id, user.id)
        if row is not None:
            return user_read(row)
    return UserRead.model_validate(user.model_dump())


@router.get("", response_model=UserPage)
async def list_users(
    gw: GatewayDep,
    caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
) -> UserPage:
    """The organisation's users (invited, active and deactivated), oldest first."""
    async with gw.engine.connect() as conn:
        rows = await identity.list_users(conn, caller.tenant_id, limit, cursor)
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return UserPage(items=[user_read(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=InviteRead, responses=declare(409, 504))
async def invite_user(gw: GatewayDep, body: InviteCreate, caller: AdminDep) -> InviteRead:
    """Invite someone with a role; the answer carries the one-time `invite_token` they need for
    `POST /api/v1/auth/accept-invite`. Admins may invite responders and viewers; owners anyone."""
    issued = await gw.commands.call(
        InviteUser, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, InviteIssued
    )
    user = await _answer(gw, caller.tenant_id, issued.user, issued.seq)
    return InviteRead(user=user, invite_token=issued.invite_token, invite_expires_at=issued.invite_expires_at)


@router.get("/{user_id}", response_model=UserRead)
async def get_user(gw: GatewayDep, user_id: UserId, caller: AdminDep) -> UserRead:
    async with gw.engine.connect() as conn:
        row = await identity.get_user(conn, caller.tenant_id, user_id)
    if row is None:
        raise NOT_FOUND
    return user_read(row)


@router.patch("/{user_id}", response_model=UserRead, responses=declare(409, 504))
async def change_role(gw: GatewayDep, user_id: UserId, body: RoleUpdate, caller: AdminDep) -> UserRead:
    """Change a user's role; it applies to their very next request."""
    accepted = await gw.commands.call(
        ChangeUserRole,
        {"caller": caller.model_dump(), "user_id": user_id, "role": body.role.value},
        MemberAccepted,
    )
    return await _answer(gw, caller.tenant_id, accepted.user, accepted.seq)


@router.post("/{user_id}/deactivate", response_model=UserRead, responses=declare(409, 504))
async def deactivate_user(gw: GatewayDep, user_id: UserId, caller: AdminDep) -> UserRead:
    """The user can no longer log in or refresh, and their access tokens (and live-feed websockets)
    stop working by the time this answers 200. A 503 (with `Retry-After`) means auth recorded it but
    the gateway does not refuse their tokens yet: retry until it answers 200."""
    state = gw
    accepted = await state.commands.call(
        SetUserActive,
        {"caller": caller.model_dump(), "user_id": user_id, "active": False},
        MemberAccepted,
    )
    await identity.until_in_effect(
        state, accepted.seq, lambda conn: identity.user_refused(conn, caller.tenant_id, accepted.user.id)
    )
    async with state.engine.connect() as conn:
        row = await identity.get_user(conn, caller.tenant_id, accepted.user.id)
    return user_read(row) if row is not None else UserRead.model_validate(accepted.user.model_dump())


@router.post("/{user_id}/reactivate", response_model=UserRead, responses=declare(409, 504))
async def reactivate_user(gw: GatewayDep, user_id: UserId, caller: AdminDep) -> UserRead:
    """The user may log in again (tokens from before the deactivation stay dead)."""
    accepted = await gw.commands.call(
        SetUserActive,
        {"caller": caller.model_dump(), "user_id": user_id, "active": True},
        MemberAccepted,
    )
    return await _answer(gw, caller.tenant_id, accepted.user, accepted.seq)
