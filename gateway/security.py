"""Bearer tokens, verified in the gateway itself with auth's public keys (fetched as JWKS over the
bus and cached), so no request costs a call to auth. The algorithm is pinned to RS256."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import jwt
from jose.exceptions import JWTError
from nats.aio.client import Client

from contracts.commands import Caller, ErrorCode, PublicKeys
from contracts.events import Role
from gateway.errors import ApiError

log = structlog.get_logger(__name__)

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 8_192
# A token signed with a key we have not seen may mean auth rotated its key; look again, but not
# more often than this, so garbage tokens cannot make us hammer auth.
JWKS_REFRESH_MIN_SECONDS = 10.0


class TokenVerifier:
    def __init__(self, nc: Client, issuer: str, audience: str) -> None:
        self.nc, self.issuer, self.audience = nc, issuer, audience
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            reply = await self.nc.request("cmd.auth.jwks", b"{}", timeout=5)
            keys = PublicKeys.model_validate(json.loads(reply.data)).keys
            self._keys = {k["kid"]: k for k in keys if k.get("alg") == ALGORITHM and "kid" in k}
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> dict[str, Any] | None:
        if kid not in self._keys and time.monotonic() - self._fetched_at > JWKS_REFRESH_MIN_SECONDS:
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("jwks_refresh_failed", error=str(exc))
        return self._keys.get(kid)

    async def verify(self, token: str) -> Caller:
        invalid = ApiError(401, ErrorCode.UNAUTHORIZED.value, "invalid or expired token")
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise invalid from exc
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise invalid
        key = await self._key(header["kid"])
        if key is None:
            raise invalid
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_nbf": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_sub": True,
                    "leeway": 5,
                },
            )
            return Caller(tenant_id=str(claims["tid"]), user_id=str(claims["sub"]), role=Role(claims["role"]))
        except (JWTError, KeyError, ValueError) as exc:
            raise invalid from exc


bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "missing bearer token")
    verifier: TokenVerifier = request.app.state.verifier
    caller = await verifier.verify(credentials.credentials)
    structlog.contextvars.bind_contextvars(tenant_id=caller.tenant_id, user_id=caller.user_id)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
