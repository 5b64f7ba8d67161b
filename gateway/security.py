"""Who is calling. Bearer access tokens are verified in the gateway itself with auth's public keys
(fetched as JWKS over the bus and cached), so no request costs a call to auth; integration keys are
compared with the hashes the gateway projects from auth's events. Both are then checked against the
gateway's identity read models, so a deactivated user or a revoked key stops working at once.

Hardening around python-jose (whose own checks have had holes: CVE-2024-33663 algorithm confusion,
CVE-2024-33664 JWE decompression bombs): a token is refused before python-jose sees it unless it is a
compact JWS of bounded size whose header is exactly {alg: RS256, kid: a key we know, typ: JWT}; the
key handed to python-jose is an RSA key object built from a JWK we vetted, never a string it might
take for an HMAC secret; and the algorithm list is pinned."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from jose import jwt
from jose.backends import RSAKey
from jose.backends.base import Key
from jose.exceptions import JOSEError
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException

from contracts.commands import Caller, ErrorCode, PublicKeys
from contracts.credentials import parse_integration_key, secret_sha256
from contracts.events import KeyScope, Role, UserStatus
from contracts.subjects import AUTH_JWKS, TENANT_ID
from gateway.auth import identity
from gateway.errors import ApiError

log = structlog.get_logger(__name__)

ALGORITHM = "RS256"
MIN_RSA_BITS = 2048
MAX_TOKEN_BYTES = 8_192
MAX_HEADER_SEGMENT = 512
# A compact JWS: exactly three base64url segments. JWE (five segments) never reaches python-jose.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Header fields a token of ours may carry. Anything else (jwk, jku, x5u, x5c, crit, zip, enc, ...) is a
# request to trust something we did not choose.
ALLOWED_HEADER_FIELDS = frozenset({"alg", "kid", "typ"})
# Our tokens live 15 minutes by default; whatever the settings, none may claim to live longer.
MAX_LIFETIME_SECONDS = 86_400
LEEWAY_SECONDS = 5
# A token signed with a key we have not seen may mean auth rotated its key; look again, but not
# more often than this, so garbage tokens cannot make us hammer auth.
JWKS_REFRESH_MIN_SECONDS = 10.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Verified tokens kept (see `TokenVerifier.verify_claims`): a dashboard's or a client's few tokens,
# bounded so a flood of distinct valid tokens cannot grow the gateway.
VERIFIED_TOKENS_MAX = 4_096


class InvalidToken(Exception):
    """Why a token was refused (logged, never shown: every refusal answers the same 401)."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    tenant_id: str
    role: Role
    session_epoch: int
    expires_at: int


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verification_keys(jwks: Mapping[str, Any]) -> dict[str, Key]:
    """The usable keys of a JWKS by kid: RSA signing keys for RS256 of at least 2048 bits. Others
    (symmetric keys, other algorithms, weak keys) are dropped, so they can never verify a token."""
    keys: dict[str, Key] = {}
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (
            entry.get("kty") != "RSA"
            or entry.get("alg") != ALGORITHM
            or entry.get("use", "sig") != "sig"
            or not isinstance(kid, str)
            or not 0 < len(kid) <= 64
            or any(private in entry for private in ("d", "p", "q"))
        ):
            continue
        try:
            if len(_b64decode(str(entry["n"])).lstrip(b"\0")) * 8 < MIN_RSA_BITS:
                continue
            keys[kid] = RSAKey(entry, ALGORITHM)
        except (JOSEError, KeyError, ValueError, TypeError, binascii.Error) as exc:
            log.warning("jwks_key_skipped", kid=kid, error=str(exc))
    return keys


def token_header(token: str) -> dict[str, Any]:
    """The header of a token that has the one shape we issue, else InvalidToken. Runs before any
    cryptography, on bounded input."""
    if len(token) > MAX_TOKEN_BYTES or not TOKEN_SHAPE.fullmatch(token):
        raise InvalidToken("not a compact JWS of bounded size")
    segment = token.split(".", 1)[0]
    if len(segment) > MAX_HEADER_SEGMENT:
        raise InvalidToken("header too large")
    try:
        header = json.loads(_b64decode(segment))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("header is not base64url JSON") from exc
    if not isinstance(header, dict) or not set(header) <= ALLOWED_HEADER_FIELDS:
        raise InvalidToken("unexpected header fields")
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    if not isinstance(header.get("kid"), str):
        raise InvalidToken("no kid")
    if header.get("typ", "JWT") != "JWT":
        raise InvalidToken("not a JWT")
    return header


def decode_access_token(token: str, key: Key, issuer: str, audience: str) -> AccessClaims:
    """Verify the signature with `key` (RS256 only) and every claim; InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_nbf": True,
                "require_iss": True,
                "require_aud": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": LEEWAY_SECONDS,
            },
        )
    except JOSEError as exc:
        raise InvalidToken(str(exc)) from exc
    try:
        user_id, tenant_id = claims["sub"], claims["tid"]
        epoch, issued, expires = claims.get("sep", 0), claims["iat"], claims["exp"]
        if not (isinstance(user_id, str) and 0 < len(user_id) <= 64):
            raise InvalidToken("bad sub")
        if not (isinstance(tenant_id, str) and TENANT_ID.fullmatch(tenant_id)):
            raise InvalidToken("bad tid")
        if not all(type(v) is int for v in (epoch, issued, expires)) or epoch < 0:
            raise InvalidToken("bad numeric claims")
        if expires - issued > MAX_LIFETIME_SECONDS:
            raise InvalidToken("lifetime too long")
        return AccessClaims(user_id, tenant_id, Role(claims["role"]), epoch, expires)
    except (KeyError, ValueError) as exc:
        raise InvalidToken(f"bad claims: {exc}") from exc


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


# ---- client addresses


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: Iterable[str], trusted: Sequence[str]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy, in which case the
    right-most X-Forwarded-For hop that is not itself a trusted proxy (hops further left were written
    by the client and prove nothing)."""
    networks = _networks(tuple(trusted))
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if _is_trusted(hop, networks):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
    return peer


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else ""
    trusted = request.app.state.settings.trusted_proxies
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), trusted)[:64]


# ---- dependencies for routes

bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")


async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """Any valid user, whatever the method: for what every user may do to themselves."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "missing bearer token")
    verifier: TokenVerifier = request.app.state.verifier
    caller = await verifier.verify(credentials.credentials)
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
    request: Request,
    security_scopes: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(key_bearer)],
) -> KeyCaller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED.value, "missing integration key")
    return await verify_integration_key(
        request.app.state.engine, credentials.credentials, security_scopes.scopes
    )


def integration_key(*scopes: KeyScope) -> Any:
    """`Annotated[KeyCaller, integration_key(KeyScope.ALERTS_WRITE)]`: the route accepts only an
    integration key holding every scope listed (user tokens are refused: 401)."""
    return Security(_verify_key, scopes=[s.value for s in scopes])


AnyKeyDep = Annotated[KeyCaller, integration_key()]


# ---- request size


class BodySizeLimit:
    """ASGI middleware: a body longer than `max_bytes` is a 413 even when it comes without a
    Content-Length (chunked), which a header check alone would let through unbounded."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"request bodies are limited to {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)
