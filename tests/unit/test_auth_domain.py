"""Identity rules (auth/domain.py) and access tokens (auth/tokens.py)."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from jose.exceptions import JWTClaimsError, JWTError

from auth.domain import new_tenant_id, new_user_id, normalise_email, slugify
from auth.tokens import ALGORITHM, TokenIssuer, generate_private_key_pem
from contracts.events import Role
from contracts.subjects import event_subject

ISSUER = "https://auth.sre-copilot.test"
AUDIENCE = "sre-copilot"
# "Fullwidth" in fullwidth forms (U+FF21..), which NFKD folds back to ASCII.
FULLWIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "Fullwidth")

# ---------------------------------------------------------------- slugify, emails, ids


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme", "acme"),
        ("Acme Corp", "acme-corp"),
        ("  Acme   Corp!!  ", "acme-corp"),
        ("ACME_Corp.io", "acme-corp-io"),
        ("Crème Brûlée Ltd", "creme-brulee-ltd"),
        ("Ünïcödé Org", "unicode-org"),
        (FULLWIDTH, "fullwidth"),
        ("Team 42", "team-42"),
        ("--leading and trailing--", "leading-and-trailing"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize("name", ["", "   ", "---", "!!!", "日本語", "Ωμέγα"])
def test_slugify_falls_back_to_org_when_nothing_is_left(name: str) -> None:
    assert slugify(name) == "org"


def test_slugify_output_is_url_safe_and_at_most_60_chars() -> None:
    for name in ["x" * 500, "Ünïcödé " * 30, "a b " * 40, "Acme / Corp & Sons (EU)"]:
        slug = slugify(name)
        assert 0 < len(slug) <= 60
        assert re.fullmatch(r"[a-z0-9-]+", slug), slug
        assert "--" not in slug


def test_slugify_never_ends_with_a_hyphen_after_truncation() -> None:
    slug = slugify("a" * 59 + " tail")
    assert not slug.endswith("-"), slug


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Owner@Example.COM", "owner@example.com"),
        ("  ada@example.com\n", "ada@example.com"),
        ("already@lower.case", "already@lower.case"),
    ],
)
def test_normalise_email(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


def test_normalise_email_makes_case_variants_equal() -> None:
    assert normalise_email("A@B.io") == normalise_email(" a@b.IO ")


def test_new_tenant_id_shape() -> None:
    tenant_id = new_tenant_id()
    assert tenant_id.startswith("t_")
    assert "." not in tenant_id
    assert re.fullmatch(r"t_[0-9a-f]{32}", tenant_id), tenant_id
    # Tenant ids must be usable in event subjects.
    assert event_subject(tenant_id, "incident.created") == f"events.{tenant_id}.incident.created"


def test_new_tenant_ids_are_unique_and_time_ordered() -> None:
    ids = [new_tenant_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert ids == sorted(ids)


def test_new_user_id_shape() -> None:
    user_id = new_user_id()
    assert re.fullmatch(r"u_[0-9a-f]{32}", user_id), user_id
    assert new_user_id() != user_id


# ---------------------------------------------------------------- tokens


@pytest.fixture(scope="module")
def private_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def issuer(private_pem: str) -> TokenIssuer:
    return TokenIssuer(private_pem, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)


def _b64json(segment: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_generated_key_is_rsa_2048(private_pem: str) -> None:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_issued_token_header_is_rs256_with_kid(issuer: TokenIssuer) -> None:
    token = issuer.issue("u_1", "t_1", Role.ADMIN)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid
    assert re.fullmatch(r"[0-9a-f]{16}", issuer.kid)
    assert _b64json(token.split(".")[0])["alg"] == "RS256"


def test_issued_token_verifies_with_the_published_jwk(issuer: TokenIssuer) -> None:
    before = int(time.time())
    token = issuer.issue("u_42", "t_7", Role.RESPONDER)
    after = int(time.time())
    (public,) = issuer.jwks()["keys"]
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "u_42"
    assert claims["tid"] == "t_7"
    assert claims["role"] == "responder"
    assert before <= claims["iat"] <= after
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 900
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_each_token_has_its_own_jti(issuer: TokenIssuer) -> None:
    (public,) = issuer.jwks()["keys"]
    tokens = [issuer.issue("u", "t", Role.VIEWER) for _ in range(5)]
    jtis = {jwt.decode(t, public, algorithms=["RS256"], audience=AUDIENCE)["jti"] for t in tokens}
    assert len(jtis) == 5


def test_token_for_another_audience_is_refused(issuer: TokenIssuer) -> None:
    token = issuer.issue("u", "t", Role.OWNER)
    (public,) = issuer.jwks()["keys"]
    with pytest.raises(JWTClaimsError):
        jwt.decode(token, public, algorithms=["RS256"], audience="someone-else")
    with pytest.raises(JWTClaimsError):
        jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE, issuer="https://evil.test")


def test_token_does_not_verify_with_another_key(issuer: TokenIssuer) -> None:
    other = TokenIssuer(generate_private_key_pem(), ISSUER, AUDIENCE, 900)
    assert other.kid != issuer.kid
    token = issuer.issue("u", "t", Role.OWNER)
    (wrong,) = other.jwks()["keys"]
    with pytest.raises(JWTError):
        jwt.decode(token, wrong, algorithms=["RS256"], audience=AUDIENCE)


def test_tampered_token_is_refused(issuer: TokenIssuer) -> None:
    header, payload, signature = issuer.issue("u_1", "t_1", Role.VIEWER).split(".")
    claims = _b64json(payload)
    claims["role"] = "owner"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    (public,) = issuer.jwks()["keys"]
    with pytest.raises(JWTError):
        jwt.decode(f"{header}.{forged}.{signature}", public, algorithms=["RS256"], audience=AUDIENCE)


def test_expired_token_is_refused(private_pem: str) -> None:
    short = TokenIssuer(private_pem, ISSUER, AUDIENCE, ttl_seconds=-120)
    (public,) = short.jwks()["keys"]
    with pytest.raises(JWTError, match="xpired"):
        jwt.decode(short.issue("u", "t", Role.VIEWER), public, algorithms=["RS256"], audience=AUDIENCE)


def test_jwks_exposes_exactly_one_public_rsa_key(issuer: TokenIssuer) -> None:
    jwks = issuer.jwks()
    assert list(jwks) == ["keys"]
    assert len(jwks["keys"]) == 1
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA"
    assert key["kid"] == issuer.kid
    assert key["alg"] == ALGORITHM == "RS256"
    assert key["use"] == "sig"
    assert key["n"] and key["e"]
    for private_part in ("d", "p", "q", "dp", "dq", "qi"):
        assert private_part not in key
    # The whole document is JSON, with no PEM material.
    assert "PRIVATE" not in json.dumps(jwks)


def test_jwk_modulus_matches_the_signing_key(issuer: TokenIssuer, private_pem: str) -> None:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.public_key().public_numbers()
    (jwk,) = issuer.jwks()["keys"]
    n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
    e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=" * (-len(jwk["e"]) % 4)), "big")
    assert (n, e) == (numbers.n, numbers.e)


def test_kid_is_stable_for_the_same_key(private_pem: str, issuer: TokenIssuer) -> None:
    assert TokenIssuer(private_pem, "other-issuer", "other-aud", 60).kid == issuer.kid


def test_key_smaller_than_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="at least 2048 bits"):
        TokenIssuer(pem, ISSUER, AUDIENCE, 900)


def test_non_rsa_key_is_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="RSA key"):
        TokenIssuer(pem, ISSUER, AUDIENCE, 900)
