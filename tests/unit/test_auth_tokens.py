"""The gateway's token checks (gateway/auth/tokens.py, verifier.py) against forged tokens, made with
real keys, and key rotation: auth publishes previous keys, and the gateway accepts their tokens until
they expire."""

from __future__ import annotations

import base64
import hmac as _hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from jose.backends.base import Key

from auth.settings import AuthSettings, split_pem_bundle
from auth.tokens import TokenIssuer, generate_private_key_pem, public_jwk
from contracts.events import Role
from gateway.auth.tokens import (
    MAX_TOKEN_BYTES,
    AccessClaims,
    InvalidToken,
    decode_access_token,
    token_header,
    verification_keys,
)
from gateway.http.client_address import forwarded_client

ISSUER, AUDIENCE = "sre-copilot", "sre-copilot-api"


@pytest.fixture(scope="module")
def old_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def new_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def issuer(new_pem: str) -> TokenIssuer:
    return TokenIssuer(new_pem, ISSUER, AUDIENCE, 900)


@pytest.fixture(scope="module")
def keys(issuer: TokenIssuer) -> dict[str, Key]:
    return verification_keys(issuer.jwks())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u_1",
        "tid": "t_1",
        "role": "owner",
        "sep": 0,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(pem: str, kid: str, **overrides: Any) -> str:
    return str(jwt.encode(_claims(**overrides), pem, algorithm="RS256", headers={"kid": kid}))


def verify(token: str, keys: dict[str, Key]) -> AccessClaims:
    """What TokenVerifier.verify_claims does, minus fetching the JWKS over the bus."""
    header = token_header(token)
    key = keys.get(header["kid"])
    if key is None:
        raise InvalidToken("unknown kid")
    return decode_access_token(token, key, ISSUER, AUDIENCE)


def test_a_token_auth_issued_verifies(issuer: TokenIssuer, keys: dict[str, Key]) -> None:
    claims = verify(issuer.issue("u_42", "t_7", Role.RESPONDER, session_epoch=3), keys)
    assert claims == AccessClaims("u_42", "t_7", Role.RESPONDER, 3, claims.expires_at)
    assert claims.expires_at > time.time() + 800


# ---------------------------------------------------------------- forgeries


def test_alg_none_is_refused(issuer: TokenIssuer, keys: dict[str, Key]) -> None:
    _, payload, _ = issuer.issue("u_1", "t_1", Role.VIEWER).split(".")
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "kid": issuer.kid, "typ": "JWT"}).encode())
        for signature in ("", "AAAA"):
            with pytest.raises(InvalidToken):
                verify(f"{header}.{payload}.{signature}", keys)


def test_hs256_signed_with_the_public_key_is_refused(
    issuer: TokenIssuer, keys: dict[str, Key], new_pem: str
) -> None:
    """The classic RS/HS confusion: HMAC with the (public) RSA key as the secret."""
    public = serialization.load_pem_private_key(new_pem.encode(), None).public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret_forms = [public_pem, json.dumps(issuer.public_jwk).encode()]
    for secret in secret_forms:
        signing_input = (
            _b64(json.dumps({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}).encode())
            + "."
            + _b64(json.dumps(_claims(role="owner")).encode())
        )
        mac = _b64(_hmac.new(secret, signing_input.encode(), "sha256").digest())
        with pytest.raises(InvalidToken, match="algorithm"):
            verify(f"{signing_input}.{mac}", keys)
        # The same HMAC under a header that claims RS256 fails the RSA signature check.
        lying = _b64(json.dumps({"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}).encode())
        lying_input = lying + "." + signing_input.split(".")[1]
        mac = _b64(_hmac.new(secret, lying_input.encode(), "sha256").digest())
        with pytest.raises(InvalidToken):
            verify(f"{lying_input}.{mac}", keys)


def test_hmac_with_an_openssh_ecdsa_key_is_refused(keys: dict[str, Key], issuer: TokenIssuer) -> None:
    """CVE-2024-33663: python-jose < 3.4 took an OpenSSH-format ECDSA public key for an HMAC secret.
    Here no algorithm but RS256 gets past the header check, and only RSA keys are ever used."""
    openssh = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    for alg in ("HS256", "HS384", "HS512", "ES256"):
        signing_input = (
            _b64(json.dumps({"alg": alg, "kid": issuer.kid}).encode())
            + "."
            + _b64(json.dumps(_claims()).encode())
        )
        mac = _b64(_hmac.new(openssh, signing_input.encode(), "sha256").digest())
        with pytest.raises(InvalidToken, match="algorithm"):
            verify(f"{signing_input}.{mac}", keys)
    # And a JWKS that offered such a key (or any non-RSA key) would have it dropped.
    hostile = {
        "keys": [
            {"kty": "oct", "kid": "sym", "alg": "HS256", "k": _b64(openssh)},
            {"kty": "EC", "kid": "ec", "alg": "ES256", "crv": "P-256", "x": "AA", "y": "AA"},
            {**issuer.public_jwk, "kid": "wrong-alg", "alg": "HS256"},
            {**issuer.public_jwk, "kid": "enc-key", "use": "enc"},
        ]
    }
    assert verification_keys(hostile) == {}


def test_expired_and_not_yet_valid_tokens_are_refused(
    new_pem: str, issuer: TokenIssuer, keys: dict[str, Key]
) -> None:
    now = int(time.time())
    expired = _signed(new_pem, issuer.kid, iat=now - 1000, nbf=now - 1000, exp=now - 60)
    with pytest.raises(InvalidToken, match="xpired"):
        verify(expired, keys)
    future = _signed(new_pem, issuer.kid, iat=now, nbf=now + 600, exp=now + 900)
    with pytest.raises(InvalidToken):
        verify(future, keys)
    # Within the five seconds of leeway both are still fine (clocks drift).
    verify(_signed(new_pem, issuer.kid, exp=now - 2), keys)
    verify(_signed(new_pem, issuer.kid, nbf=now + 2), keys)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": "https://evil.example"},
        {"iss": None},
        {"exp": None},
        {"iat": None},
        {"nbf": None},
        {"sub": None},
        {"jti": None},
        {"tid": None},
        {"tid": "t_1.>"},
        {"tid": "*"},
        {"role": "superuser"},
        {"role": None},
        {"sep": -1},
        {"sep": "0"},
        {"exp": int(time.time()) + 2 * 86_400},  # longer-lived than any token of ours
        {"sub": "u" * 65},
    ],
)
def test_tokens_with_wrong_or_missing_claims_are_refused(
    overrides: dict[str, Any], new_pem: str, issuer: TokenIssuer, keys: dict[str, Key]
) -> None:
    token = _signed(new_pem, issuer.kid, **overrides)
    with pytest.raises(InvalidToken):
        verify(token, keys)


def test_a_tampered_payload_is_refused(issuer: TokenIssuer, keys: dict[str, Key]) -> None:
    header, payload, signature = issuer.issue("u_1", "t_1", Role.VIEWER).split(".")
    _, claims, _ = _segments(f"{header}.{payload}.{signature}")
    for change in ({"role": "owner"}, {"tid": "t_other"}, {"sub": "u_2"}, {"exp": claims["exp"] + 3600}):
        forged = _b64(json.dumps(claims | change).encode())
        with pytest.raises(InvalidToken, match="ignature"):
            verify(f"{header}.{forged}.{signature}", keys)


def test_a_token_signed_by_a_key_nobody_published_is_refused(
    keys: dict[str, Key], issuer: TokenIssuer
) -> None:
    stranger = generate_private_key_pem()
    with pytest.raises(InvalidToken, match="unknown kid"):
        verify(_signed(stranger, public_jwk(stranger)["kid"]), keys)
    # Claiming a known kid does not help: the signature is checked with that kid's key.
    with pytest.raises(InvalidToken, match="ignature"):
        verify(_signed(stranger, issuer.kid), keys)


@pytest.mark.parametrize(
    "extra",
    [
        {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert.pem"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
        {"zip": "DEF"},
        {"enc": "A256GCM"},
        {"typ": "JWE"},
    ],
)
def test_header_fields_we_never_issue_are_refused(
    extra: dict[str, Any], new_pem: str, issuer: TokenIssuer, keys: dict[str, Key]
) -> None:
    """A header naming its own key (jwk, jku, x5u, x5c) or asking for processing we do not do."""
    headers = {"kid": issuer.kid, **extra}
    token = str(jwt.encode(_claims(), new_pem, algorithm="RS256", headers=headers))
    with pytest.raises(InvalidToken):
        verify(token, keys)


def test_jwe_and_oversize_tokens_never_reach_python_jose(keys: dict[str, Key], issuer: TokenIssuer) -> None:
    """CVE-2024-33664: python-jose inflates a JWE's compressed payload with no size limit. A JWE has
    five segments; only three-segment tokens of bounded size are parsed at all."""
    jwe_header = _b64(json.dumps({"alg": "dir", "enc": "A128GCM", "zip": "DEF", "kid": issuer.kid}).encode())
    jwe = f"{jwe_header}..{_b64(b'iv' * 6)}.{_b64(b'x' * 2000)}.{_b64(b'tag' * 5)}"
    big_header = {"alg": "RS256", "kid": issuer.kid, "typ": "JWT", "pad": "p" * 600}
    cases = [
        (jwe, "compact JWS"),
        ("a.b", "compact JWS"),
        ("a.b.c.d", "compact JWS"),
        ("", "compact JWS"),
        ("not a token", "compact JWS"),
        ("a.b.c\n", "compact JWS"),
        ("x" * (MAX_TOKEN_BYTES - 4) + ".e30.AA", "compact JWS"),
        (_b64(json.dumps(big_header).encode()) + ".e30.AA", "header too large"),
        (_b64(b"[1, 2, 3]") + ".e30.AA", "unexpected header"),
        (_b64(b"not json") + ".e30.AA", "not base64url JSON"),
        (_b64(json.dumps({"alg": "RS256", "kid": 7}).encode()) + ".e30.AA", "no kid"),
        (_b64(json.dumps({"alg": "RS256"}).encode()) + ".e30.AA", "no kid"),
    ]
    for token, reason in cases:
        with pytest.raises(InvalidToken, match=reason):
            token_header(token)


def test_weak_or_private_keys_in_a_jwks_are_dropped(issuer: TokenIssuer) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_pem = weak.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    weak_jwk = {**jwk.construct(weak_pem.decode(), "RS256").to_dict(), "kid": "weak", "alg": "RS256"}
    private = {**issuer.public_jwk, "kid": "with-private-part", "d": "AQAB"}
    good = verification_keys({"keys": [weak_jwk, private, issuer.public_jwk, "junk", {"kid": 5}]})
    assert list(good) == [issuer.kid]


# ---------------------------------------------------------------- key rotation


def test_after_a_rotation_tokens_of_the_previous_key_verify_until_they_expire(
    old_pem: str, new_pem: str
) -> None:
    before = TokenIssuer(old_pem, ISSUER, AUDIENCE, 900)
    old_token = before.issue("u_1", "t_1", Role.RESPONDER)
    short_lived = TokenIssuer(old_pem, ISSUER, AUDIENCE, -60).issue("u_1", "t_1", Role.RESPONDER)

    after = TokenIssuer(new_pem, ISSUER, AUDIENCE, 900, previous_key_pems=[old_pem])
    published = after.jwks()["keys"]
    assert [k["kid"] for k in published] == [after.kid, before.kid]  # the current key first
    assert all("d" not in k for k in published)  # a private PEM given as "previous" publishes its public half
    keys = verification_keys(after.jwks())

    assert verify(old_token, keys).user_id == "u_1"
    assert verify(after.issue("u_2", "t_1", Role.VIEWER), keys).user_id == "u_2"
    with pytest.raises(InvalidToken, match="xpired"):
        verify(short_lived, keys)
    # New tokens are signed with the new key only.
    assert jwt.get_unverified_header(after.issue("u", "t", Role.VIEWER))["kid"] == after.kid
    # Once the previous key is dropped from the settings, its tokens stop verifying.
    with pytest.raises(InvalidToken, match="unknown kid"):
        verify(old_token, verification_keys(TokenIssuer(new_pem, ISSUER, AUDIENCE, 900).jwks()))


def test_a_two_phase_rotation_publishes_the_next_key_before_anything_is_signed_with_it(
    old_pem: str, new_pem: str
) -> None:
    """With several auth replicas, phase one publishes the next key everywhere (a gateway may fetch
    the keys from any replica); phase two signs with it, the old one still published."""
    phase_one = TokenIssuer(old_pem, ISSUER, AUDIENCE, 900, next_key_pems=[new_pem])
    assert [k["kid"] for k in phase_one.jwks()["keys"]] == [phase_one.kid, public_jwk(new_pem)["kid"]]
    assert jwt.get_unverified_header(phase_one.issue("u", "t", Role.VIEWER))["kid"] == phase_one.kid
    phase_two = TokenIssuer(new_pem, ISSUER, AUDIENCE, 900, previous_key_pems=[old_pem])
    # A token of a replica already in phase two verifies against keys fetched from one still in phase one.
    keys_from_phase_one = verification_keys(phase_one.jwks())
    assert verify(phase_two.issue("u_2", "t_1", Role.VIEWER), keys_from_phase_one).user_id == "u_2"
    assert (
        verify(phase_one.issue("u_1", "t_1", Role.VIEWER), verification_keys(phase_two.jwks())).user_id
        == "u_1"
    )


def test_previous_keys_may_be_public_pems_and_duplicates_are_dropped(old_pem: str, new_pem: str) -> None:
    old_public = (
        serialization.load_pem_private_key(old_pem.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    issuer = TokenIssuer(new_pem, ISSUER, AUDIENCE, 900, previous_key_pems=[old_public, old_pem, new_pem])
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [issuer.kid, public_jwk(old_pem)["kid"]]


def test_a_weak_previous_key_is_refused(new_pem: str) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="2048"):
        TokenIssuer(new_pem, ISSUER, AUDIENCE, 900, previous_key_pems=[pem])


def test_previous_keys_come_from_settings(
    old_pem: str, new_pem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    third = generate_private_key_pem()
    (tmp_path / "a.pem").write_text(old_pem)
    (tmp_path / "b.pem").write_text(third)
    monkeypatch.setenv("JWT_PRIVATE_KEY", new_pem)
    monkeypatch.setenv("JWT_PREVIOUS_PUBLIC_KEY_FILES", f"{tmp_path / 'a.pem'}, {tmp_path / 'b.pem'}")
    settings = AuthSettings()
    assert len(settings.previous_key_pems()) == 2
    monkeypatch.delenv("JWT_PREVIOUS_PUBLIC_KEY_FILES")
    monkeypatch.setenv("JWT_PREVIOUS_PUBLIC_KEYS", old_pem + "\n" + third)
    assert [public_jwk(p)["kid"] for p in AuthSettings().previous_key_pems()] == [
        public_jwk(old_pem)["kid"],
        public_jwk(third)["kid"],
    ]


def test_split_pem_bundle() -> None:
    one, two = generate_private_key_pem(), generate_private_key_pem()
    assert split_pem_bundle(f"junk\n{one}\nmore junk\n{two}") == [one, two]
    assert split_pem_bundle("") == []
    assert split_pem_bundle("-----BEGIN PRIVATE KEY-----\nunterminated") == []


# ---------------------------------------------------------------- client addresses


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # No trusted proxy configured: the header is ignored, whatever it says.
        ("203.0.113.9", ["198.51.100.1"], [], "203.0.113.9"),
        # The peer is not one of ours: ignored too.
        ("203.0.113.9", ["198.51.100.1"], ["10.0.0.0/8"], "203.0.113.9"),
        # Behind our proxy: the address it saw.
        ("10.0.0.2", ["198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        # A client that writes its own X-Forwarded-For gets the right-most untrusted hop: its own.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        # Two proxies of ours in a row.
        ("10.0.0.2", ["198.51.100.1, 10.0.0.7"], ["10.0.0.0/8"], "198.51.100.1"),
        # Garbage where the client's address should be: fall back to the peer.
        ("10.0.0.2", ["not-an-ip"], ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
        ("::1", ["2001:db8::5"], ["::1"], "2001:db8::5"),
    ],
)
def test_forwarded_client(peer: str, forwarded: list[str], trusted: list[str], client: str) -> None:
    assert forwarded_client(peer, forwarded, trusted) == client


async def test_verified_tokens_are_kept_until_they_expire_or_their_key_goes(
    new_pem: str, issuer: TokenIssuer, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway verifies a token's signature once, not on every request; the kept verification
    ends with the token's expiry (leeway included) and with its key leaving auth's JWKS."""
    from gateway.auth import verifier as verifying

    verifier = verifying.TokenVerifier(None, ISSUER, AUDIENCE)  # type: ignore[arg-type]
    verifier._keys, verifier._fetched_at = dict(keys), time.monotonic()  # no JWKS fetch over a bus
    decoded: list[str] = []
    real_decode = verifying.decode_access_token

    def counting(token: str, *args: Any) -> AccessClaims:
        decoded.append(token)
        return real_decode(token, *args)

    monkeypatch.setattr(verifying, "decode_access_token", counting)
    now = int(time.time())
    token = _signed(new_pem, issuer.kid, exp=now + 60)
    first = await verifier.verify_claims(token)
    assert await verifier.verify_claims(token) == first
    assert decoded == [token]
    # A tampered copy is another string: verified (and refused) on its own.
    header, _payload, signature = token.split(".")
    tampered = ".".join(
        [header, _b64(json.dumps({**_segments(token)[1], "role": "owner", "sub": "u_2"}).encode()), signature]
    )
    with pytest.raises(InvalidToken):
        await verifier.verify_claims(tampered)
    # Past its expiry and the leeway the kept verification is dropped: python-jose (on its own clock,
    # which refuses an expired token, as test_expired_and_not_yet_valid_tokens_are_refused shows)
    # decides again.
    monkeypatch.setattr(verifying.time, "time", lambda: now + 60 + verifying.LEEWAY_SECONDS + 1)
    await verifier.verify_claims(token)
    assert decoded == [token, tampered, token]
    monkeypatch.undo()
    # A key auth stopped publishing stops the tokens it signed, kept or not.
    other = _signed(new_pem, issuer.kid, jti="j2")
    await verifier.verify_claims(other)
    verifier._keys = {}
    with pytest.raises(InvalidToken, match="unknown kid"):
        await verifier.verify_claims(other)
    assert other not in verifier._verified
