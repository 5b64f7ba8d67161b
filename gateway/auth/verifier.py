"""Who a bearer token names. Tokens are verified in the gateway itself with auth's public keys (fetched
as JWKS over the bus and cached, with the tokens already verified), so no request costs a call to
auth; the user is then checked against the gateway's identity read model, so a deactivated user or
an ended session stops working at once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from jose.backends.base import Key
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import Caller, ErrorCode, PublicKeys
from contracts.events import Role, UserStatus
from contracts.subjects import AUTH_JWKS
from gateway.auth import identity
from gateway.auth.tokens import (
    LEEWAY_SECONDS,
    AccessClaims,
    InvalidToken,
    decode_access_token,
    token_header,
    verification_keys,
)
from gateway.errors import ApiError

log = structlog.get_logger(__name__)
# A token signed with a key we have not seen may mean auth rotated its key; look again, but not
# more often than this, so garbage tokens cannot make us hammer auth.
JWKS_REFRESH_MIN_SECONDS = 10.0
# Verified tokens kept (see `TokenVerifier.verify_claims`): a dashboard's or a client's few tokens,
# bounded so a flood of distinct valid tokens cannot grow the gateway.
VERIFIED_TOKENS_MAX = 4_096


class TokenVerifier:
    def __init__(self, nc: Client, issuer: str, audience: str, engine: AsyncEngine | None = None) -> None:
        self.nc, self.issuer, self.audience, self.engine = nc, issuer, audience, engine
        self._keys: dict[str, Key] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        # token -> (the kid that verified it, its claims). A signature and claims that verified once
        # verify the same until the token expires, so only expiry and the key are checked again; the
        # user's state (deactivation, session epoch, role) is still read on every request.
        self._verified: dict[str, tuple[str, AccessClaims]] = {}

    async def refresh(self) -> None:
        async with self._lock:
            reply = await self.nc.request(AUTH_JWKS, b"{}", timeout=5)
            document = PublicKeys.model_validate(json.loads(reply.data)).model_dump()
            self._keys = verification_keys(document)
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> Key | None:
        if kid not in self._keys and time.monotonic() - self._fetched_at > JWKS_REFRESH_MIN_SECONDS:
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("jwks_refresh_failed", error=str(exc))
        return self._keys.get(kid)

    async def verify_claims(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            kid, claims = known
            # Expired (python-jose's leeway included), or signed with a key auth no longer publishes.
            if time.time() < claims.expires_at + LEEWAY_SECONDS and kid in self._keys:
                return claims
            del self._verified[token]
        header = token_header(token)
        key = await self._key(header["kid"])
        if key is None:
            raise InvalidToken("unknown kid")
        claims = decode_access_token(token, key, self.issuer, self.audience)
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            self._verified.clear()  # simpler than LRU, and a refill costs one verification per token
        self._verified[token] = (header["kid"], claims)
        return claims

    async def verify(self, token: str) -> Caller:
        """The caller a valid token names, with its current role; a 401 for anything else."""
        caller, _claims = await self.verify_with_claims(token)
        return caller

    async def verify_with_claims(self, token: str) -> tuple[Caller, AccessClaims]:
        """`verify`, and the token's claims (the live feed keeps its expiry and session epoch)."""
        try:
            claims = await self.verify_claims(token)
            role = claims.role
            if self.engine is not None:
                async with self.engine.connect() as conn:
                    principal = await identity.get_principal(conn, claims.user_id)
                refused = principal_refusal(principal, claims.tenant_id, claims.session_epoch)
                if refused is not None:
                    raise InvalidToken(refused)
                if principal is not None:
                    role = Role(principal.role)
        except InvalidToken as exc:
            log.info("token_refused", reason=str(exc))
            raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "invalid or expired token") from exc
        return Caller(tenant_id=claims.tenant_id, user_id=claims.user_id, role=role), claims


def principal_refusal(principal: Any, tenant_id: str, session_epoch: int) -> str | None:
    """Why the read model's row for a token's user refuses that token, or None.

    No row yet means auth created the user a moment ago and the projector is behind: the signed
    claims stand. A row overrides them: deactivation, a newer session epoch (password change) and role
    changes take effect as soon as they are projected."""
    if principal is None:
        return None
    if principal.tenant_id != tenant_id or principal.status != UserStatus.ACTIVE:
        return "user is not active"
    if session_epoch < principal.session_epoch:
        return "session ended"
    return None
