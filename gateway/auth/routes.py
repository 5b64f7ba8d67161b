"""`/api/v1/auth`: register, log in, refresh, log out, accept an invitation, who am I, change my
password, and which integration key is this."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from contracts.commands import (
    AcceptInvite,
    ChangePassword,
    Done,
    ErrorCode,
    Login,
    Logout,
    RefreshSession,
    RegisterTenant,
    TenantView,
    TokenGrant,
)
from gateway.auth import identity
from gateway.auth.dependencies import AnyKeyDep, SelfDep
from gateway.auth.schemas import (
    InviteAccept,
    KeyIdentityRead,
    LoginCreate,
    LogoutCreate,
    MeRead,
    PasswordChange,
    RefreshCreate,
    RegisterCreate,
    SessionRead,
)
from gateway.auth.users import user_read
from gateway.errors import ApiError, declare
from gateway.http.client_address import client_address
from gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def _session(gw: Gateway, grant: TokenGrant) -> SessionRead:
    """Answer once the grant's events are projected, so the new session's first request sees them."""
    await gw.projector.wait_for(grant.seq, gw.settings.read_your_writes_timeout_seconds)
    return SessionRead.model_validate(grant.model_dump(exclude={"seq"}))


@router.post("/register", status_code=201, response_model=SessionRead, responses=declare(409, 429, 504))
async def register(gw: GatewayDep, body: RegisterCreate, request: Request) -> SessionRead:
    """Create an organisation and its owner; the owner is logged in at once. Rate-limited per client
    address and per email (429 with `Retry-After`)."""
    command = {**body.model_dump(mode="json"), "client_address": client_address(request)}
    grant = await gw.commands.call(RegisterTenant, command, TokenGrant)
    return await _session(gw, grant)


@router.post("/login", response_model=SessionRead, responses=declare(401, 429, 504))
async def login(gw: GatewayDep, body: LoginCreate, request: Request) -> SessionRead:
    """Email and password to a session: a 15-minute access token and a single-use refresh token.
    A wrong pair is a 401 that does not say which half was wrong; too many failures for the account
    or from the address are a 429 with `Retry-After` until the window has passed."""
    command = {**body.model_dump(mode="json"), "client_address": client_address(request)}
    grant = await gw.commands.call(Login, command, TokenGrant)
    return await _session(gw, grant)


@router.post("/refresh", response_model=SessionRead, responses=declare(401, 504))
async def refresh(gw: GatewayDep, body: RefreshCreate) -> SessionRead:
    """A refresh token for a new access token and a new refresh token (the one sent is used up).
    Presenting a used refresh token again ends that whole login (401)."""
    grant = await gw.commands.call(RefreshSession, body.model_dump(), TokenGrant)
    return await _session(gw, grant)


@router.post("/logout", status_code=204, responses=declare(504))
async def logout(gw: GatewayDep, body: LogoutCreate) -> Response:
    """End the login this refresh token belongs to. Always 204, known token or not."""
    await gw.commands.call(Logout, body.model_dump(), Done)
    return Response(status_code=204)


@router.post("/accept-invite", response_model=SessionRead, responses=declare(401, 504))
async def accept_invite(gw: GatewayDep, body: InviteAccept) -> SessionRead:
    """Set the password of an invited account with the invitation's one-time token; logs in."""
    command = {
        "invite_token": body.token,
        "password": body.password,
        "full_name": body.full_name,
    }
    grant = await gw.commands.call(AcceptInvite, command, TokenGrant)
    return await _session(gw, grant)


@router.post("/password", response_model=SessionRead, responses=declare(403, 429, 504))
async def change_password(
    gw: GatewayDep, body: PasswordChange, caller: SelfDep, request: Request
) -> SessionRead:
    """Change your own password (any role). Every other session of yours ends: refresh tokens at
    once, access tokens as soon as this answers. Answers with a fresh session."""
    command = {
        "caller": caller.model_dump(),
        **body.model_dump(),
        "client_address": client_address(request),
    }
    grant = await gw.commands.call(ChangePassword, command, TokenGrant)
    return await _session(gw, grant)


@router.get("/me", response_model=MeRead, responses=declare(404))
async def me(gw: GatewayDep, caller: SelfDep) -> MeRead:
    """The user the token belongs to, their current role and their organisation."""
    async with gw.engine.connect() as conn:
        user = await identity.get_user(conn, caller.tenant_id, caller.user_id)
        tenant = await identity.get_tenant(conn, caller.tenant_id)
    if user is None or tenant is None:
        raise ApiError(404, ErrorCode.NOT_FOUND.value, "user not found")
    return MeRead(
        user=user_read(user),
        role=caller.role,
        tenant=TenantView(id=tenant.id, name=tenant.name, slug=tenant.slug),
    )


@router.get("/key", response_model=KeyIdentityRead)
async def key_identity(key: AnyKeyDep) -> KeyIdentityRead:
    """For operators wiring a machine up: which integration key this is, its organisation and scopes."""
    return KeyIdentityRead(
        key_id=key.key_id, name=key.name, tenant_id=key.tenant_id, scopes=sorted(key.scopes)
    )
