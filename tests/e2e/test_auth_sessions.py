"""Sessions: rotating refresh tokens, reuse detection, logout, password changes, /me."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.credentials import secret_sha256
from tests.conftest import Tenant
from tests.e2e.test_auth_users import bearer, login

pytestmark = pytest.mark.e2e


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_login_gives_a_refresh_token_that_rotates(client: httpx.AsyncClient, tenant: Tenant) -> None:
    session = (await login(client, tenant.email, tenant.password)).json()
    assert session["expires_in"] == 900 and session["refresh_expires_in"] >= 86_400
    first = session["refresh_token"]
    assert first.startswith("rt_")

    rotated = await refresh(client, first)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["refresh_token"] != first
    assert body["user"]["id"] == tenant.user_id and body["tenant"]["id"] == tenant.tenant_id
    assert (await client.get("/api/v1/incidents", headers=bearer(body["access_token"]))).status_code == 200
    # The next rotation works with the newest token.
    assert (await refresh(client, body["refresh_token"])).status_code == 200


async def test_a_reused_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    stolen = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    other_login = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    legit = (await refresh(client, stolen)).json()["refresh_token"]
    newest = (await refresh(client, legit)).json()["refresh_token"]

    # Someone presents the already-rotated token: the login it belongs to is over, for both holders.
    reuse = await refresh(client, stolen)
    assert reuse.status_code == 401 and "reused" in reuse.json()["error"]["message"]
    assert (await refresh(client, newest)).status_code == 401
    assert (await refresh(client, legit)).status_code == 401
    # Another login of the same user is its own family, and unaffected.
    assert (await refresh(client, other_login)).status_code == 200


async def test_concurrent_refreshes_of_one_token_let_at_most_one_through(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    answers = await asyncio.gather(*(refresh(client, token) for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 401, 401, 401, 401]
    # And the winner's new token is dead too: the losers were reuses.
    winner = next(a for a in answers if a.status_code == 200).json()["refresh_token"]
    assert (await refresh(client, winner)).status_code == 401


async def test_logout_ends_the_login(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    rotated = (await refresh(client, token)).json()["refresh_token"]
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": rotated})
    assert out.status_code == 204
    assert (await refresh(client, rotated)).status_code == 401
    # Unknown or repeated: the same answer, so logout is no oracle.
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": rotated})).status_code == 204
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": "rt_unknown"})).status_code == 204


@pytest.mark.parametrize("token", ["", "rt_" + "A" * 43, "x" * 257, "not-even-close"])
async def test_bad_refresh_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await refresh(client, token)
    assert response.status_code in (401, 422)
    assert response.json()["error"]["code"] in ("unauthorized", "validation_error")


async def test_refresh_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    token = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT token_hash FROM auth.refresh_tokens WHERE user_id = :u"), {"u": tenant.user_id}
            )
        ).scalars()
        hashes = set(stored)
    assert secret_sha256(token) in hashes
    assert token not in hashes


async def test_me(client: httpx.AsyncClient, tenant: Tenant) -> None:
    me = await client.get("/api/v1/auth/me", headers=tenant.auth)
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["id"] == tenant.user_id and body["user"]["email"] == tenant.email
    assert body["role"] == "owner" and body["user"]["status"] == "active"
    assert body["tenant"] == tenant.body["tenant"]
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_changing_the_password_ends_other_sessions(client: httpx.AsyncClient, tenant: Tenant) -> None:
    other = (await login(client, tenant.email, tenant.password)).json()
    wrong = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-the-password", "new_password": "brand-new-secret-42"},
        headers=tenant.auth,
    )
    assert wrong.status_code == 403
    weak = await client.post(
        "/api/v1/auth/password",
        json={"current_password": tenant.password, "new_password": "iloveyou1"},
        headers=tenant.auth,
    )
    assert weak.status_code == 422

    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": tenant.password, "new_password": "brand-new-secret-42"},
        headers=tenant.auth,
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert (await client.get("/api/v1/incidents", headers=bearer(fresh["access_token"]))).status_code == 200
    # Every token from before is dead: this request's own, the other login's, their refresh tokens.
    assert (await client.get("/api/v1/incidents", headers=tenant.auth)).status_code == 401
    assert (await client.get("/api/v1/incidents", headers=bearer(other["access_token"]))).status_code == 401
    assert (await refresh(client, other["refresh_token"])).status_code == 401
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200
    assert (await login(client, tenant.email, tenant.password)).status_code == 401
    assert (await login(client, tenant.email, "brand-new-secret-42")).status_code == 200


async def _age_family(engine: AsyncEngine, user_id: str, days: int) -> None:
    """As if the user's logins had happened `days` earlier (rather than waiting a month)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE auth.refresh_tokens "
                "SET family_created_at = family_created_at - CAST(:by AS interval) WHERE user_id = :u"
            ),
            {"by": timedelta(days=days), "u": user_id},
        )


async def test_a_login_ends_at_its_absolute_age_however_often_it_rotated(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    token = (await login(client, tenant.email, tenant.password)).json()["refresh_token"]
    for _ in range(3):
        rotated = await refresh(client, token)
        assert rotated.status_code == 200
        token = rotated.json()["refresh_token"]

    # 20 days in: still good, but the new token lives only as long as the login has left (10 days),
    # not the full 14 days a rotation gives.
    await _age_family(engine, tenant.user_id, 20)
    later = await refresh(client, token)
    assert later.status_code == 200, later.text
    assert 9 * 86_400 < later.json()["refresh_expires_in"] <= 10 * 86_400
    token = later.json()["refresh_token"]

    # Past 30 days: refused, and that login is over (its newest token is dead too).
    await _age_family(engine, tenant.user_id, 11)
    too_old = await refresh(client, token)
    assert too_old.status_code == 401
    assert "log in again" in too_old.json()["error"]["message"]
    assert (await refresh(client, token)).status_code == 401

    # Logging in again starts a new family with the whole lifetime.
    fresh = (await login(client, tenant.email, tenant.password)).json()
    assert fresh["refresh_expires_in"] == 14 * 86_400
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200
