"""Forged and replayed tokens against the running gateway. The test platform's auth signs with
`<state>/jwt-signing-key.pem` and also publishes `<state>/jwt-previous-signing-key.pem` (as after a key
rotation); reading them lets these tests make tokens whose signature is right and whose claims are not."""

from __future__ import annotations

import base64
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt
from nats.aio.client import Client

from auth.tokens import public_jwk
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, PREVIOUS_SIGNING_KEY, Tenant
from tests.e2e.test_auth_users import bearer, member

pytestmark = pytest.mark.e2e

INVALID = {"error": {"code": "unauthorized", "message": "invalid or expired token", "details": None}}


@pytest.fixture(scope="module")
def current_pem(platform: Platform) -> str:
    return (platform.state_dir / "jwt-signing-key.pem").read_text()


@pytest.fixture(scope="module")
def previous_pem(platform: Platform) -> str:
    return (platform.state_dir / PREVIOUS_SIGNING_KEY).read_text()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "sre-copilot",
        "aud": "sre-copilot-api",
        "sub": tenant.user_id,
        "tid": tenant.tenant_id,
        "role": "owner",
        "sep": 0,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "forged",
    }
    return {k: v for k, v in (claims | overrides).items() if v is not None}


def sign(pem: str, claims: dict[str, Any], **headers: Any) -> str:
    headers = {"kid": public_jwk(pem)["kid"]} | headers
    return str(jwt.encode(claims, pem, algorithm="RS256", headers=headers))


async def assert_refused(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/api/v1/incidents", headers=bearer(token))
    assert response.status_code == 401, token[:60]
    assert response.json() == INVALID  # the same answer whatever was wrong
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_auth_publishes_the_current_and_the_previous_key(
    nc: Client, current_pem: str, previous_pem: str
) -> None:
    reply = await nc.request("cmd.auth.jwks", b"{}", timeout=5)
    keys = json.loads(reply.data)["keys"]
    assert [k["kid"] for k in keys] == [public_jwk(current_pem)["kid"], public_jwk(previous_pem)["kid"]]
    assert all(set(k) == {"kty", "n", "e", "kid", "use", "alg"} and k["alg"] == "RS256" for k in keys)


async def test_a_token_signed_with_the_previous_key_works_until_it_expires(
    client: httpx.AsyncClient, tenant: Tenant, previous_pem: str, current_pem: str
) -> None:
    """Key rotation without downtime: tokens issued before the switch keep working, for their lifetime."""
    before_rotation = sign(previous_pem, _claims(tenant))
    assert (await client.get("/api/v1/incidents", headers=bearer(before_rotation))).status_code == 200
    me = await client.get("/api/v1/auth/me", headers=bearer(before_rotation))
    assert me.status_code == 200 and me.json()["user"]["id"] == tenant.user_id
    now = int(time.time())
    expired = sign(previous_pem, _claims(tenant, iat=now - 1000, nbf=now - 1000, exp=now - 100))
    await assert_refused(client, expired)
    # The tokens auth issues now are signed with the current key.
    assert jwt.get_unverified_header(tenant.token)["kid"] == public_jwk(current_pem)["kid"]


async def test_tokens_with_a_good_signature_and_bad_claims_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, current_pem: str
) -> None:
    now = int(time.time())
    assert (
        await client.get("/api/v1/incidents", headers=bearer(sign(current_pem, _claims(tenant))))
    ).status_code == 200
    for overrides in (
        {"exp": now - 100, "iat": now - 1000, "nbf": now - 1000},  # expired
        {"nbf": now + 300},  # not yet valid
        {"aud": "another-api"},  # wrong audience
        {"iss": "https://evil.example"},  # wrong issuer
        {"aud": None},
        {"exp": None},
        {"tid": "t_other.>"},
        {"exp": now + 7 * 86_400},  # longer-lived than auth ever issues
    ):
        await assert_refused(client, sign(current_pem, _claims(tenant, **overrides)))


async def test_tampered_payloads_are_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    viewerless = tenant.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(viewerless[1] + "=" * (-len(viewerless[1]) % 4)))
    for change in (
        {"role": "owner", "sub": "u_someone_else"},
        {"exp": claims["exp"] + 86_400},
        {"tid": "t_x"},
    ):
        forged = _b64(json.dumps(claims | change).encode())
        await assert_refused(client, f"{viewerless[0]}.{forged}.{viewerless[2]}")
    await assert_refused(client, f"{viewerless[0]}.{viewerless[1]}.")  # signature stripped


async def test_algorithm_confusion_and_header_tricks_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, current_pem: str
) -> None:
    payload = _b64(json.dumps(_claims(tenant)).encode())
    kid = public_jwk(current_pem)["kid"]
    # alg=none, with and without a signature.
    for alg in ("none", "None"):
        header = _b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
        await assert_refused(client, f"{header}.{payload}.")
        await assert_refused(client, f"{header}.{payload}.AAAA")
    # HS256 signed with the public key (PEM, and as the JWK auth publishes) as the HMAC secret.
    public_pem = (
        serialization.load_pem_private_key(current_pem.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for secret in (public_pem, json.dumps(public_jwk(current_pem)).encode()):
        for alg, header_alg in (("sha256", "HS256"), ("sha256", "RS256")):
            header = _b64(json.dumps({"alg": header_alg, "kid": kid, "typ": "JWT"}).encode())
            mac = _b64(hmac.new(secret, f"{header}.{payload}".encode(), alg).digest())
            await assert_refused(client, f"{header}.{payload}.{mac}")
    # A header that brings its own key, points at one, or names a key nobody published.
    claims = _claims(tenant)
    for extra in (
        {"jwk": public_jwk(current_pem)},
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert"},
        {"kid": "0000000000000000"},
        {"kid": "../../etc/passwd"},
    ):
        await assert_refused(client, sign(current_pem, claims, **extra))
    # A JWE with a compressed payload (CVE-2024-33664) and an oversize token.
    jwe_header = _b64(json.dumps({"alg": "dir", "enc": "A128GCM", "zip": "DEF", "kid": kid}).encode())
    await assert_refused(client, f"{jwe_header}..{_b64(b'0' * 12)}.{_b64(b'x' * 4000)}.{_b64(b'0' * 16)}")
    await assert_refused(client, sign(current_pem, claims | {"pad": "x" * 9000}))


async def test_a_token_naming_another_tenant_for_a_user_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, current_pem: str
) -> None:
    """Even signed by auth's own key: the user's tenant in the gateway's read model must match."""
    other = await client.post(
        "/api/v1/auth/register",
        json={
            "email": f"x-{tenant.user_id[-8:]}@example.com",
            "password": "correct-horse-other",
            "full_name": "X",
            "tenant_name": "Other",
        },
    )
    other_tenant = other.json()["tenant"]["id"]
    await assert_refused(client, sign(current_pem, _claims(tenant, tid=other_tenant)))


async def test_the_role_in_a_token_is_not_the_last_word(
    client: httpx.AsyncClient, tenant: Tenant, current_pem: str
) -> None:
    """A viewer holding a token that says owner (as an old token after a demotion would) is a viewer."""
    viewer = await member(client, tenant, "viewer")
    claims = _claims(tenant, sub=viewer.user_id, role="owner")
    token = sign(current_pem, claims)
    assert (await client.get("/api/v1/incidents", headers=bearer(token))).status_code == 200
    assert (await client.post("/api/v1/incidents", json=INCIDENT, headers=bearer(token))).status_code == 403
    assert (await client.get("/api/v1/users", headers=bearer(token))).status_code == 403
