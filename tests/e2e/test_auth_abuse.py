"""Abuse: guessing passwords, mass registration, account enumeration, weak passwords, oversize input.
The rate limits run with their production defaults (5 failed logins per account and 20 per address in
15 minutes; 10 registrations per address and 5 per email in an hour). Instead of waiting out a
window, a test moves the counted attempts back in time in auth's table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Tenant, fresh_address
from tests.e2e.test_auth_users import bearer

pytestmark = pytest.mark.e2e


def _at(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(client: httpx.AsyncClient, email: str, password: str, address: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=_at(address)
    )


async def _age_attempts(engine: AsyncEngine, key: str, minutes: int) -> None:
    """As if the attempts counted for `key` had been made `minutes` earlier."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE auth.attempts SET at = at - CAST(:by AS interval) WHERE key = :key"),
            {"by": timedelta(minutes=minutes), "key": key},
        )


def _register_body(email: str | None = None) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "email": email or f"reg-{suffix}@example.com",
        "password": f"correct-horse-{suffix}",
        "full_name": "Reg Owner",
        "tenant_name": f"Org {suffix}",
    }


def assert_rate_limited(response: httpx.Response, at_most: int) -> int:
    assert response.status_code == 429, response.text
    body = response.json()["error"]
    assert body["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert body["details"]["retry_after"] == retry_after
    assert 0 < retry_after <= at_most
    return retry_after


async def test_an_account_locks_after_five_failures_and_unlocks_by_itself(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    # Each guess from a different address: the per-account limit holds regardless.
    for _ in range(5):
        assert (await _login(client, tenant.email, "wrong-password", fresh_address())).status_code == 401
    locked = await _login(client, tenant.email, tenant.password, fresh_address())  # even the right one
    retry = assert_rate_limited(locked, 900)
    assert retry > 850  # the first failure was moments ago; the window is 15 minutes
    # Later, the failures have left the window: the lock has lifted without anyone doing anything.
    await _age_attempts(engine, tenant.email, 16)
    assert (await _login(client, tenant.email, tenant.password, fresh_address())).status_code == 200


async def test_the_lock_lifts_one_attempt_at_a_time(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    for _ in range(5):
        await _login(client, tenant.email, "wrong-password", fresh_address())
        await _age_attempts(engine, tenant.email, 2)  # a guess every two minutes
    # The oldest of the five was 10 minutes ago: about 5 more to wait.
    retry = assert_rate_limited(await _login(client, tenant.email, tenant.password, fresh_address()), 900)
    assert 4 * 60 < retry <= 5 * 60 + 1


async def test_a_successful_login_starts_the_count_afresh(client: httpx.AsyncClient, tenant: Tenant) -> None:
    address = fresh_address()
    for _ in range(4):
        assert (await _login(client, tenant.email, "wrong-password", address)).status_code == 401
    assert (await _login(client, tenant.email, tenant.password, address)).status_code == 200
    for _ in range(4):
        assert (await _login(client, tenant.email, "wrong-password", address)).status_code == 401
    assert (await _login(client, tenant.email, tenant.password, address)).status_code == 200


async def test_parallel_guesses_cannot_squeeze_past_the_limit(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answers = await asyncio.gather(
        *(_login(client, tenant.email, f"guess-{i}-wrong", fresh_address()) for i in range(12))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * 5 + [429] * 7


async def test_unknown_accounts_answer_exactly_like_known_ones(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Neither the 401 nor the lock-out tells whether an email has an account."""
    ghost = f"ghost-{uuid.uuid4().hex[:10]}@example.com"
    known, unknown = [], []
    for _ in range(5):
        known.append(await _login(client, tenant.email, "wrong-password", fresh_address()))
        unknown.append(await _login(client, ghost, "wrong-password", fresh_address()))
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5
    assert {r.text for r in known} == {r.text for r in unknown}
    locked_known = await _login(client, tenant.email, "wrong-password", fresh_address())
    locked_unknown = await _login(client, ghost, "wrong-password", fresh_address())
    assert locked_known.status_code == locked_unknown.status_code == 429
    assert locked_known.json()["error"]["message"] == locked_unknown.json()["error"]["message"]


async def test_an_address_is_limited_across_accounts(client: httpx.AsyncClient, tenant: Tenant) -> None:
    address = fresh_address()
    for i in range(20):  # one guess each at 20 accounts: no account lock, but the address is spent
        email = f"spray-{i}-{uuid.uuid4().hex[:6]}@example.com"
        assert (await _login(client, email, "Winter2025!", address)).status_code == 401
    assert_rate_limited(await _login(client, tenant.email, tenant.password, address), 900)
    # The same account from somewhere else is fine: the account itself is not locked.
    assert (await _login(client, tenant.email, tenant.password, fresh_address())).status_code == 200


async def test_ipv6_clients_are_counted_per_64(client: httpx.AsyncClient, tenant: Tenant) -> None:
    prefix = f"2001:db8:{uuid.uuid4().int % 65536:x}:{uuid.uuid4().int % 65536:x}"
    for i in range(20):
        email = f"v6-{i}-{uuid.uuid4().hex[:6]}@example.com"
        await _login(client, email, "Winter2025!", f"{prefix}::{i + 1:x}")  # a new address every time
    assert_rate_limited(await _login(client, tenant.email, tenant.password, f"{prefix}::ffff"), 900)


async def test_registrations_are_limited_per_address(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    one_address = fresh_address()
    for _ in range(10):
        response = await client.post("/api/v1/auth/register", json=_register_body(), headers=_at(one_address))
        assert response.status_code == 201, response.text
    limited = await client.post("/api/v1/auth/register", json=_register_body(), headers=_at(one_address))
    assert_rate_limited(limited, 3600)
    elsewhere = await client.post(
        "/api/v1/auth/register", json=_register_body(), headers=_at(fresh_address())
    )
    assert elsewhere.status_code == 201
    await _age_attempts(engine, one_address, 61)
    again = await client.post("/api/v1/auth/register", json=_register_body(), headers=_at(one_address))
    assert again.status_code == 201


async def test_registrations_are_limited_per_email(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Probing whether an email has an account (409) costs one of five tries an hour (the
    registration that created it was the first)."""
    for _ in range(4):
        taken = await client.post(
            "/api/v1/auth/register", json=_register_body(tenant.email), headers=_at(fresh_address())
        )
        assert taken.status_code == 409
    limited = await client.post(
        "/api/v1/auth/register", json=_register_body(tenant.email), headers=_at(fresh_address())
    )
    assert_rate_limited(limited, 3600)


@pytest.mark.parametrize(
    "password", ["password123", "Password1", "qwerty123", "iloveyou1", "P@ssw0rd", "12345678", "aaaaaaaa"]
)
async def test_common_passwords_are_refused(client: httpx.AsyncClient, password: str) -> None:
    response = await client.post("/api/v1/auth/register", json=_register_body() | {"password": password})
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["loc"] == ["body", "password"]


async def test_long_passwords_count_in_full(client: httpx.AsyncClient) -> None:
    """bcrypt would silently use only the first 72 bytes; argon2 uses all 128 characters allowed."""
    body = _register_body()
    body["password"] = "Ω" + "long-passphrase-" * 7 + "end"  # 116 characters, 117 bytes
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    prefix = body["password"].encode()[:72].decode(errors="ignore")
    assert (await _login(client, body["email"], prefix, fresh_address())).status_code == 401
    assert (
        await _login(client, body["email"], body["password"][:-1] + "X", fresh_address())
    ).status_code == 401
    assert (await _login(client, body["email"], body["password"], fresh_address())).status_code == 200
    too_long = await client.post("/api/v1/auth/register", json=_register_body() | {"password": "x1" * 65})
    assert too_long.status_code == 422


LONG = "x" * 10_000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/register", _register_body() | {"full_name": LONG}),
        ("POST", "/api/v1/auth/register", _register_body() | {"tenant_name": LONG}),
        ("POST", "/api/v1/auth/register", _register_body() | {"email": LONG + "@example.com"}),
        ("POST", "/api/v1/auth/register", _register_body() | {"password": LONG}),
        ("POST", "/api/v1/auth/login", {"email": "a@example.com", "password": LONG}),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": LONG}),
        ("POST", "/api/v1/auth/logout", {"refresh_token": LONG}),
        ("POST", "/api/v1/auth/accept-invite", {"token": LONG, "password": "good-enough-pass-1"}),
        (
            "POST",
            "/api/v1/auth/accept-invite",
            {"token": "inv_x", "password": "good-enough-pass-1", "full_name": LONG},
        ),
        ("POST", "/api/v1/auth/password", {"current_password": LONG, "new_password": "good-enough-pass-1"}),
        ("POST", "/api/v1/auth/password", {"current_password": "x", "new_password": LONG}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "full_name": LONG, "role": "viewer"}),
        ("POST", "/api/v1/users", {"email": LONG, "full_name": "A", "role": "viewer"}),
        ("PATCH", f"/api/v1/users/{LONG[:65]}", {"role": "viewer"}),
        ("POST", "/api/v1/integration-keys", {"name": LONG, "scopes": ["alerts:write"]}),
        ("GET", f"/api/v1/integration-keys/{LONG[:65]}", None),
        ("GET", f"/api/v1/users?cursor={LONG[:65]}", None),
    ],
)
async def test_every_string_has_a_maximum_length(
    client: httpx.AsyncClient, tenant: Tenant, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_oversize_bodies_are_413_even_without_a_content_length(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    streamed = await client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers  # chunked: nothing announced the size
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    announced = await client.post(
        "/api/v1/users",
        content=b"{" + b" " * 1_100_000 + b"}",
        headers=tenant.auth | {"Content-Type": "application/json"},
    )
    assert announced.status_code == 413
    # A body under the limit still arrives whole.
    ok = await client.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    assert ok.status_code == 200 and bearer(ok.json()["access_token"])
