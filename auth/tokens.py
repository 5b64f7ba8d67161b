"""Access tokens: RS256 JWTs signed with auth's private key. The public half is published as JWKS,
together with the public halves of keys used before a rotation, so the tokens those signed keep
verifying until they expire."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from uuid6 import uuid7

from contracts.events import Role

ALGORITHM = "RS256"
MIN_KEY_BITS = 2048


def generate_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM holding either half; anything else (or a weak key) is refused."""
    data = pem.encode()
    public: object
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("the token signing key must be an RSA key of at least 2048 bits")
        public = private.public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_KEY_BITS:
        raise ValueError("the token signing key must be an RSA key of at least 2048 bits")
    return public


def public_jwk(pem: str) -> dict[str, Any]:
    """The JWK (with its `kid`: a digest of the key, stable across restarts) of a PEM key's public half."""
    public_pem = _rsa_public_key(pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        **jwk.construct(public_pem.decode(), ALGORITHM).to_dict(),
        "kid": hashlib.sha256(public_pem).hexdigest()[:16],
        "use": "sig",
        "alg": ALGORITHM,
    }


class TokenIssuer:
    def __init__(
        self,
        private_key_pem: str,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        previous_key_pems: Sequence[str] = (),
        next_key_pems: Sequence[str] = (),
    ) -> None:
        private_key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size < MIN_KEY_BITS:
            raise ValueError("the token signing key must be an RSA key of at least 2048 bits")
        self.public_jwk = public_jwk(private_key_pem)
        self.kid: str = self.public_jwk["kid"]
        self._private_key_pem = private_key_pem
        self.issuer, self.audience, self.ttl_seconds = issuer, audience, ttl_seconds
        # Published beside the signing key: the keys about to sign, then those that signed before.
        others = (public_jwk(pem) for pem in (*next_key_pems, *previous_key_pems))
        self.previous_jwks = list({k["kid"]: k for k in others if k["kid"] != self.kid}.values())

    def issue(self, user_id: str, tenant_id: str, role: Role, session_epoch: int = 0) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "tid": tenant_id,
            "role": role.value,
            "sep": session_epoch,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid7().hex,
        }
        headers = {"kid": self.kid, "typ": "JWT"}
        return str(jwt.encode(claims, self._private_key_pem, algorithm=ALGORITHM, headers=headers))

    def jwks(self) -> dict[str, Any]:
        """The current key first, then the next ones, then the previous ones."""
        return {"keys": [self.public_jwk, *self.previous_jwks]}
