"""Identity rules (auth/domain.py) and access tokens (auth/tokens.py)."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from argon2.exceptions import VerifyMismatchError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from jose.exceptions import JWTClaimsError, JWTError

from auth.domain import (
    Limit,
    ManagementRefused,
    address_bucket,
    advisory_lock_id,
    can_grant,
    can_manage,
    check_member_change,
    family_expired,
    family_expires_at,
    new_integration_key,
    new_invite_token,
    new_key_id,
    new_refresh_token,
    new_tenant_id,
    new_user_id,
    normalise_email,
    parse_password_list,
    password_problem,
    refresh_expiry,
    retry_after,
    slugify,
)
from auth.passwords import check_new_password, common_passwords, hasher
from auth.tokens import ALGORITHM, TokenIssuer, generate_private_key_pem
from contracts.commands import CommandFailed, ErrorCode
from contracts.credentials import parse_integration_key, secret_sha256
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


# ---------------------------------------------------------------- passwords


COMMON = parse_password_list("# comment\npassword\nQwerty123\n\n  letmein1  \ncorrecthorsebatterystaple\n")


def test_password_list_parsing_skips_comments_and_folds_case() -> None:
    assert COMMON == {"password", "qwerty123", "letmein1", "correcthorsebatterystaple"}


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 8"),
        ("", "at least 8"),
        ("password", "too common"),
        ("PASSWORD", "too common"),
        ("Qwerty123", "too common"),
        (" letmein1 ", "too common"),
        ("aaaaaaaaaaaa", "distinct"),
        ("abababababab", "distinct"),
        ("ada@example.com", "email"),
        ("ADA@example.com", "email"),
        ("adalovelace", None),
    ],
)
def test_password_problem(password: str, reason: str | None) -> None:
    problem = password_problem(password, COMMON, "Ada@Example.com")
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem, problem


def test_password_equal_to_the_email_local_part_is_refused() -> None:
    assert password_problem("ada.lovelace", COMMON, "ada.lovelace@example.com") is not None
    assert password_problem("ada.lovelace!", COMMON, "ada.lovelace@example.com") is None


def test_long_passwords_are_not_cut_at_72_bytes() -> None:
    """bcrypt would ignore everything after byte 72; argon2 (what auth uses) hashes all of it."""
    long_password = "é" * 40  # 80 bytes in UTF-8
    assert password_problem(long_password, COMMON) is not None  # one distinct character
    prefix = "correct-horse-battery-staple-" * 3  # 87 bytes
    stored = hasher.hash(prefix + "A")
    assert hasher.verify(stored, prefix + "A")
    with pytest.raises(VerifyMismatchError):
        hasher.verify(stored, prefix + "B")


def test_the_shipped_common_password_list() -> None:
    common = common_passwords()
    assert len(common) >= 500
    for weak in ("password", "12345678", "qwerty123", "iloveyou", "p@ssw0rd", "welcome1", "letmein!"):
        assert weak in common, weak
    assert all(p == p.lower() and p.strip() == p for p in common)
    # The password the README's curl scenario uses is not refused.
    assert password_problem("correct-horse-battery", common, "john@acme.example") is None
    with pytest.raises(CommandFailed) as refused:
        check_new_password("Password1", "x@example.com")
    assert refused.value.code is ErrorCode.VALIDATION
    assert refused.value.details[0]["loc"] == ["body", "password"]


# ---------------------------------------------------------------- roles

OW, AD, RE, VI = Role.OWNER, Role.ADMIN, Role.RESPONDER, Role.VIEWER


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (OW, OW, True),
        (OW, AD, True),
        (OW, RE, True),
        (OW, VI, True),
        (AD, OW, False),
        (AD, AD, False),
        (AD, RE, True),
        (AD, VI, True),
        (RE, RE, False),
        (RE, VI, False),
        (VI, VI, False),
    ],
)
def test_who_manages_whom(actor: Role, target: Role, allowed: bool) -> None:
    assert can_manage(actor, target) is allowed
    assert can_grant(actor, target) is allowed


def test_member_changes() -> None:
    check_member_change("u_a", AD, "u_b", RE, VI)  # admin demotes a responder
    check_member_change("u_o", OW, "u_b", AD, OW)  # owner makes an admin an owner
    check_member_change("u_o", OW, "u_p", OW, None)  # owner deactivates another owner
    cases: list[tuple[tuple[str, Role, str, Role, Role | None], bool, str]] = [
        (("u_a", AD, "u_b", RE, AD), True, "may not grant"),  # admin may not make admins
        (("u_a", AD, "u_b", AD, VI), True, "may not manage"),  # nor touch admins
        (("u_a", AD, "u_b", OW, None), True, "may not manage"),  # nor owners
        (("u_r", RE, "u_b", VI, None), True, "may not manage users"),
        (("u_v", VI, "u_b", VI, None), True, "may not manage users"),
        (("u_o", OW, "u_o", OW, AD), False, "your own"),  # nobody demotes themselves
        (("u_a", AD, "u_a", AD, None), False, "your own"),  # nor deactivates themselves
    ]
    for args, forbidden, reason in cases:
        with pytest.raises(ManagementRefused) as refused:
            check_member_change(*args)
        assert refused.value.forbidden is forbidden, args
        assert reason in refused.value.reason, args


# ---------------------------------------------------------------- rate limits

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIVE_IN_15 = Limit(5, timedelta(minutes=15))


def test_under_the_limit_nothing_waits() -> None:
    assert retry_after([], NOW, FIVE_IN_15) is None
    assert retry_after([NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)], NOW, FIVE_IN_15) is None


def test_at_the_limit_wait_until_the_oldest_counted_attempt_leaves_the_window() -> None:
    attempts = [NOW - timedelta(minutes=m) for m in (10, 8, 6, 4, 2)]
    assert retry_after(attempts, NOW, FIVE_IN_15) == 5 * 60
    # Attempts outside the window do not count, so the lock lifts by itself.
    assert retry_after(attempts, NOW + timedelta(minutes=5, seconds=1), FIVE_IN_15) is None


def test_more_than_the_limit_waits_for_enough_to_expire() -> None:
    attempts = [NOW - timedelta(minutes=m) for m in (14, 12, 10, 8, 6, 4, 2)]
    # 7 counted; one more is allowed once 3 have left the window: the one 10 minutes old, in 5.
    assert retry_after(attempts, NOW, FIVE_IN_15) == 5 * 60


def test_retry_after_is_at_least_one_second_and_rounds_up() -> None:
    attempts = [NOW - timedelta(minutes=15) + timedelta(milliseconds=300)] * 5
    assert retry_after(attempts, NOW, FIVE_IN_15) == 1


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", "unknown"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_address_buckets(address: str, bucket: str) -> None:
    assert address_bucket(address) == bucket


def test_advisory_lock_ids_are_stable_64_bit_and_distinct() -> None:
    first = advisory_lock_id("login_account", "a@example.com")
    assert first == advisory_lock_id("login_account", "a@example.com")
    assert -(2**63) <= first < 2**63
    assert first != advisory_lock_id("login_address", "a@example.com")
    assert first != advisory_lock_id("login_account", "b@example.com")


# ---------------------------------------------------------------- secrets handed out


def test_integration_keys_round_trip_and_only_their_hash_is_kept() -> None:
    key_id = new_key_id()
    assert re.fullmatch(r"k_[0-9a-f]{32}", key_id)
    whole, stored = new_integration_key(key_id)
    assert whole.startswith(f"sck_{key_id}_")
    parsed = parse_integration_key(whole)
    assert parsed is not None and parsed[0] == key_id
    assert secret_sha256(parsed[1]) == stored
    assert parsed[1] not in stored and len(stored) == 64
    assert new_integration_key(key_id)[0] != whole


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "sck_",
        "sck_k_123_abc",
        "Bearer sck_k_" + "0" * 32 + "_" + "a" * 43,
        "sck_k_" + "0" * 32 + "_" + "a" * 42,
        "sck_k_" + "0" * 32 + "_" + "a" * 44,
        "sck_k_" + "G" * 32 + "_" + "a" * 43,
        "sck_k_" + "0" * 32 + "_" + "a" * 42 + "=",
        "xck_k_" + "0" * 32 + "_" + "a" * 43,
    ],
)
def test_malformed_integration_keys_do_not_parse(presented: str) -> None:
    assert parse_integration_key(presented) is None


def test_refresh_and_invite_tokens_are_long_random_and_prefixed() -> None:
    refresh = {new_refresh_token() for _ in range(50)}
    invites = {new_invite_token() for _ in range(50)}
    assert len(refresh) == 50 and len(invites) == 50
    assert all(t.startswith("rt_") and len(t) >= 46 for t in refresh)
    assert all(t.startswith("inv_") and len(t) >= 47 for t in invites)


# ---- refresh-token families


def test_a_family_ends_at_its_absolute_age_however_often_it_rotates() -> None:
    login = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    max_age, ttl = timedelta(days=30), timedelta(days=14)
    assert family_expires_at(login, max_age) == login + max_age
    assert not family_expired(login, login, max_age)
    assert not family_expired(login, login + max_age - timedelta(seconds=1), max_age)
    assert family_expired(login, login + max_age, max_age)
    assert family_expired(login, login + timedelta(days=400), max_age)
    # Early on a rotation gets the full idle lifetime; near the end, only what the family has left.
    assert refresh_expiry(login + timedelta(days=1), ttl, login, max_age) == login + timedelta(days=15)
    assert refresh_expiry(login + timedelta(days=20), ttl, login, max_age) == login + max_age
    # Rotating every day for a year never gets past the family's end.
    now, expiry = login, login
    for _ in range(365):
        if family_expired(login, now, max_age):
            break
        expiry = refresh_expiry(now, ttl, login, max_age)
        now += timedelta(days=1)
    assert expiry <= login + max_age and now == login + max_age


# ---------------------------------------------------------------- activation and refresh verdicts

from auth.domain import (  # noqa: E402
    Activation,
    PresentedToken,
    Refresh,
    activation,
    refresh_verdict,
)
from contracts.events import UserStatus  # noqa: E402


@pytest.mark.parametrize(
    ("status", "active", "accepted", "expected"),
    [
        (UserStatus.ACTIVE, False, True, Activation.DEACTIVATE),
        (UserStatus.INVITED, False, False, Activation.DEACTIVATE),  # withdraws the invitation
        (UserStatus.DEACTIVATED, False, True, Activation.NOTHING),
        (UserStatus.DEACTIVATED, True, True, Activation.REACTIVATE),
        (UserStatus.ACTIVE, True, True, Activation.NOTHING),
    ],
)
def test_what_setting_the_active_flag_does(
    status: UserStatus, active: bool, accepted: bool, expected: Activation
) -> None:
    assert activation(status, active, accepted) is expected


@pytest.mark.parametrize(
    ("status", "accepted", "reason"),
    [
        (UserStatus.DEACTIVATED, False, "never accepted their invitation"),
        (UserStatus.INVITED, False, "has not accepted their invitation yet"),
    ],
)
def test_who_cannot_be_activated(status: UserStatus, accepted: bool, reason: str) -> None:
    with pytest.raises(ManagementRefused, match=reason) as refused:
        activation(status, True, accepted)
    assert not refused.value.forbidden  # a 409: allowed in general, not for this user


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=30)


def presented(**changes: object) -> PresentedToken:
    fields: dict[str, object] = {
        "revoked": False,
        "used": False,
        "expires_at": NOW + timedelta(hours=1),
        "family_created_at": NOW - timedelta(days=1),
        "user_active": True,
    }
    return PresentedToken(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "verdict"),
    [
        (presented(), Refresh.ROTATE),
        (None, Refresh.INVALID),
        (presented(revoked=True, used=True), Refresh.INVALID),  # revoked first: nothing more to revoke
        (presented(expires_at=NOW), Refresh.INVALID),
        (presented(used=True), Refresh.REUSED),
        (presented(used=True, user_active=False), Refresh.REUSED),
        (presented(user_active=False), Refresh.INACTIVE),
        (presented(family_created_at=NOW - MAX_AGE), Refresh.TOO_OLD),
        (presented(family_created_at=NOW - MAX_AGE + timedelta(seconds=1)), Refresh.ROTATE),
    ],
)
def test_what_a_presented_refresh_token_earns(token: PresentedToken | None, verdict: Refresh) -> None:
    assert refresh_verdict(token, NOW, MAX_AGE) is verdict
    assert verdict.revokes_family == (verdict in (Refresh.REUSED, Refresh.INACTIVE, Refresh.TOO_OLD))
