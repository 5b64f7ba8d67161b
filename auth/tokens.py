"""Access tokens: RS256 JWTs signed with auth's private key; the public half is published as JWKS."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from uuid6 import uuid7

from contracts.events import Role

ALGORITHM = "RS256"


def generate_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class TokenIssuer:
    def __init__(self, private_key_pem: str, issuer: str, audience: str, ttl_seconds: int) -> None:
        private_key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size < 2048:
            raise ValueError("the token signing key must be an RSA key of at least 2048 bits")
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(public_pem).hexdigest()[:16]
        self._private_key_pem = private_key_pem
        self.issuer, self.audience, self.ttl_seconds = issuer, audience, ttl_seconds
        self.public_jwk: dict[str, Any] = {
            **jwk.construct(public_pem.decode(), ALGORITHM).to_dict(),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }

    def issue(self, user_id: str, tenant_id: str, role: Role) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "tid": tenant_id,
            "role": role.value,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid7().hex,
        }
        return str(jwt.encode(claims, self._private_key_pem, algorithm=ALGORITHM, headers={"kid": self.kid}))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}
