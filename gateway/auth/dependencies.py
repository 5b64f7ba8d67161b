"""The FastAPI dependencies that say who is calling and what they may do: a user with a bearer token
(`CallerDep`, `require_role`), or a machine with an integration key (`integration_key`), whose hash
is compared with the ones the gateway projects from auth's events."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import Caller, ErrorCode
from contracts.credentials import parse_integration_key, secret_sha256
from contracts.events import KeyScope, Role
from gateway.auth import identity
from gateway.errors import ApiError
from gateway.state import GatewayDep

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# ---- users

bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


async def authenticated(
    gw: GatewayDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """Any valid user, whatever the method: for what every user may do to themselves."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "missing bearer token")
    caller = await gw.verifier.verify(credentials.credentials)
    structlog.contextvars.bind_contextvars(tenant_id=caller.tenant_id, user_id=caller.user_id)
    return caller


def _forbidden(role: Role, needed: Role) -> ApiError:
    return ApiError(
        403, ErrorCode.FORBIDDEN.value, f"role {role.value} may not do this ({needed.value} or above)"
    )


async def current_caller(request: Request, caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
    """A valid user; and, secure by default, only responders and above may use a method that writes
    (viewers read). Checked before the body is parsed, so a viewer's write is a 403 whatever it sends."""
    if request.method not in SAFE_METHODS and not caller.role.at_least(Role.RESPONDER):
        raise _forbidden(caller.role, Role.RESPONDER)
    return caller


async def _caller_with_role(
    security_scopes: SecurityScopes, caller: Annotated[Caller, Depends(authenticated)]
) -> Caller:
    needed = [Role(s) for s in security_scopes.scopes if s in {r.value for r in Role}]
    for role in needed:
        if not caller.role.at_least(role):
            raise _forbidden(caller.role, role)
    return caller


def require_role(role: Role) -> Any:
    """`Annotated[Caller, require_role(Role.ADMIN)]`: the least role a route needs. It shows in the
    OpenAPI document as the route's security requirement (`{"HTTPBearer": ["admin"]}`)."""
    return Security(_caller_with_role, scopes=[role.value])


CallerDep = Annotated[Caller, Depends(current_caller)]
# Any user, whatever the method: for what every user may do to themselves (change their password).
SelfDep = Annotated[Caller, require_role(Role.VIEWER)]
AdminDep = Annotated[Caller, require_role(Role.ADMIN)]


# ---- integration keys

key_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="IntegrationKey",
    description="An integration key (`sck_...`) from /api/v1/integration-keys, sent as a bearer token",
)
# Compared against when the key id is unknown, so a miss costs what a hit costs.
_NO_SUCH_KEY = secret_sha256("no such key")


@dataclass(frozen=True)
class KeyCaller:
    """A machine calling with an integration key: its tenant, and what the key may do."""

    key_id: str
    tenant_id: str
    name: str
    scopes: frozenset[KeyScope]

    @property
    def actor(self) -> str:
        return self.key_id


async def verify_integration_key(
    engine: AsyncEngine, presented: str, required: Iterable[str] = ()
) -> KeyCaller:
    """The caller a presented integration key names, if it is valid, unrevoked and holds every scope
    in `required`: a 401 otherwise (the same one whatever was wrong with it), a 403 for a missing scope.
    Shared by the REST routes that take keys and the MCP endpoint."""
    invalid = ApiError(401, ErrorCode.UNAUTHORIZED.value, "invalid or revoked integration key")
    parsed = parse_integration_key(presented)
    if parsed is None:
        raise invalid
    key_id, secret = parsed
    async with engine.connect() as conn:
        row = await identity.get_integration_key(conn, key_id)
    matches = hmac.compare_digest(secret_sha256(secret), row.secret_sha256 if row else _NO_SUCH_KEY)
    if row is None or not matches or row.revoked_at is not None:
        raise invalid
    scopes = frozenset(KeyScope(s) for s in row.scopes)
    missing = sorted(set(required) - {s.value for s in scopes})
    if missing:
        raise ApiError(403, ErrorCode.FORBIDDEN.value, f"this key lacks the scope {', '.join(missing)}")
    structlog.contextvars.bind_contextvars(tenant_id=row.tenant_id, key_id=key_id)
    return KeyCaller(key_id=key_id, tenant_id=row.tenant_id, name=row.name, scopes=scopes)


async def _verify_key(
    gw: GatewayDep,
    security_scopes: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(key_bearer)],
) -> KeyCaller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "missing integration key")
    return await verify_integration_key(gw.engine, credentials.credentials, security_scopes.scopes)


def integration_key(*scopes: KeyScope) -> Any:
    """`Annotated[KeyCaller, integration_key(KeyScope.ALERTS_WRITE)]`: the route accepts only an
    integration key holding every scope listed (user tokens are refused: 401)."""
    return Security(_verify_key, scopes=[s.value for s in scopes])


AnyKeyDep = Annotated[KeyCaller, integration_key()]
