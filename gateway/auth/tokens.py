"""Vetting a bearer access token: its shape, header, RS256 signature and claims, before and around
python-jose.

Hardening around python-jose (whose own checks have had holes: CVE-2024-33663 algorithm confusion,
CVE-2024-33664 JWE decompression bombs): a token is refused before python-jose sees it unless it is a
compact JWS of bounded size whose header is exactly {alg: RS256, kid: a key we know, typ: JWT}; the
key handed to python-jose is an RSA key object built from a JWK we vetted, never a string it might
take for an HMAC secret; and the algorithm list is pinned."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from jose import jwt
from jose.backends import RSAKey
from jose.backends.base import Key
from jose.exceptions import JOSEError

from contracts.events import Role
from contracts.subjects import TENANT_ID

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
