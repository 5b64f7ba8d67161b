"""People in an organisation: invitations, roles, deactivation, through the gateway."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.credentials import secret_sha256
from tests.conftest import INCIDENT, Tenant, fresh_address
from tests.integration.streams import messages_on

pytestmark = pytest.mark.e2e


@dataclass
class Member:
    user_id: str
    email: str
    password: str
    token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def invite(
    client: httpx.AsyncClient, by: Tenant | Member, role: str, email: str | None = None
) -> dict[str, Any]:
    email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/v1/users", json={"email": email, "full_name": f"A {role}", "role": role}, headers=by.auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def member(client: httpx.AsyncClient, owner: Tenant | Member, role: str) -> Member:
    """Someone invited into the owner's organisation with `role`, who accepted and is logged in."""
    invited = await invite(client, owner, role)
    password = f"invited-pass-{uuid.uuid4().hex[:8]}"
    accepted = await client.post(
        "/api/v1/auth/accept-invite", json={"token": invited["invite_token"], "password": password}
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["user"]["role"] == role
    return Member(
        body["user"]["id"], body["user"]["email"], password, body["access_token"], body["refresh_token"]
    )


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": fresh_address()},
    )


async def test_invite_accept_list_and_me(client: httpx.AsyncClient, tenant: Tenant) -> None:
    invited = await invite(client, tenant, "responder", email="Grace.Hopper@Example.com")
    user = invited["user"]
    assert user["email"] == "grace.hopper@example.com"
    assert user["status"] == "invited" and user["role"] == "responder"
    assert invited["invite_token"].startswith("inv_") and invited["invite_expires_at"]

    # Listed at once (read-your-writes), and cannot log in before accepting.
    listed = (await client.get("/api/v1/users", headers=tenant.auth)).json()
    by_id = {u["id"]: u for u in listed["items"]}
    assert by_id[user["id"]]["status"] == "invited"
    assert by_id[tenant.user_id]["role"] == "owner"
    assert (await login(client, "grace.hopper@example.com", "anything-at-all")).status_code == 401

    accepted = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invited["invite_token"], "password": "cobol-forever-59", "full_name": "Grace Hopper"},
    )
    assert accepted.status_code == 200, accepted.text
    session = accepted.json()
    assert session["user"]["id"] == user["id"] and session["tenant"]["id"] == tenant.tenant_id
    assert session["refresh_token"]

    me = await client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["full_name"] == "Grace Hopper"
    assert me.json()["user"]["status"] == "active"
    assert me.json()["role"] == "responder"
    assert me.json()["tenant"]["id"] == tenant.tenant_id

    # The invitation is single use.
    again = await client.post(
        "/api/v1/auth/accept-invite", json={"token": invited["invite_token"], "password": "another-pass-77"}
    )
    assert again.status_code == 401
    assert (await login(client, "grace.hopper@example.com", "cobol-forever-59")).status_code == 200
    one = await client.get(f"/api/v1/users/{user['id']}", headers=tenant.auth)
    assert one.status_code == 200 and one.json()["status"] == "active"


async def test_invitation_tokens_are_stored_and_published_only_as_hashes(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext
) -> None:
    invited = await invite(client, tenant, "viewer")
    token = invited["invite_token"]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT invite_token_hash, password_hash FROM auth.users WHERE id = :id"),
                {"id": invited["user"]["id"]},
            )
        ).one()
    assert row.invite_token_hash == secret_sha256(token) and row.password_hash is None
    events = await messages_on(js, f"events.{tenant.tenant_id}.user.invited")
    assert len(events) == 1
    assert token not in events[0].data.decode()
    assert json.loads(events[0].data)["data"]["user_id"] == invited["user"]["id"]


async def test_bad_invitations(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for token in ("inv_" + "x" * 43, "garbage", "x" * 300):
        response = await client.post(
            "/api/v1/auth/accept-invite", json={"token": token, "password": "good-enough-pass-1"}
        )
        assert response.status_code in (401, 422), token
    invited = await invite(client, tenant, "viewer")
    weak = await client.post(
        "/api/v1/auth/accept-invite", json={"token": invited["invite_token"], "password": "password123"}
    )
    assert weak.status_code == 422 and weak.json()["error"]["details"][0]["loc"] == ["body", "password"]
    # The invitation still works after a refused password.
    ok = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invited["invite_token"], "password": "good-enough-pass-1"},
    )
    assert ok.status_code == 200
    # The same email cannot be invited twice, nor an owner's.
    for email in (invited["user"]["email"], tenant.email):
        dup = await client.post(
            "/api/v1/users", json={"email": email, "full_name": "Dup", "role": "viewer"}, headers=tenant.auth
        )
        assert dup.status_code == 409


async def test_who_may_invite_whom(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = await member(client, tenant, "admin")
    responder = await member(client, tenant, "responder")
    for role in ("responder", "viewer"):
        await invite(client, admin, role)
    for role in ("admin", "owner"):
        refused = await client.post(
            "/api/v1/users",
            json={"email": f"{uuid.uuid4().hex[:8]}@example.com", "full_name": "X", "role": role},
            headers=admin.auth,
        )
        assert refused.status_code == 403, role
        await invite(client, tenant, role)  # an owner may
    refused = await client.post(
        "/api/v1/users",
        json={"email": f"{uuid.uuid4().hex[:8]}@example.com", "full_name": "X", "role": "viewer"},
        headers=responder.auth,
    )
    assert refused.status_code == 403


async def test_role_changes_apply_to_the_next_request(client: httpx.AsyncClient, tenant: Tenant) -> None:
    responder = await member(client, tenant, "responder")
    created = await client.post("/api/v1/incidents", json=INCIDENT, headers=responder.auth)
    assert created.status_code == 201

    demoted = await client.patch(
        f"/api/v1/users/{responder.user_id}", json={"role": "viewer"}, headers=tenant.auth
    )
    assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"
    # The same access token, issued when they were a responder: now a viewer's.
    refused = await client.post("/api/v1/incidents", json=INCIDENT, headers=responder.auth)
    assert refused.status_code == 403
    assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 200
    me = await client.get("/api/v1/auth/me", headers=responder.auth)
    assert me.json()["role"] == "viewer"
    # A refresh carries the new role too.
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": responder.refresh_token})
    assert refreshed.status_code == 200 and refreshed.json()["user"]["role"] == "viewer"

    promoted = await client.patch(
        f"/api/v1/users/{responder.user_id}", json={"role": "responder"}, headers=tenant.auth
    )
    assert promoted.status_code == 200
    assert (await client.post("/api/v1/incidents", json=INCIDENT, headers=responder.auth)).status_code == 201


async def test_admins_manage_responders_and_viewers_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = await member(client, tenant, "admin")
    other_admin = await member(client, tenant, "admin")
    viewer = await member(client, tenant, "viewer")
    ok = await client.patch(f"/api/v1/users/{viewer.user_id}", json={"role": "responder"}, headers=admin.auth)
    assert ok.status_code == 200
    for target, role in (
        (other_admin.user_id, "viewer"),
        (tenant.user_id, "viewer"),
        (viewer.user_id, "admin"),
    ):
        refused = await client.patch(f"/api/v1/users/{target}", json={"role": role}, headers=admin.auth)
        assert refused.status_code == 403, (target, role)
    for target in (other_admin.user_id, tenant.user_id):
        refused = await client.post(f"/api/v1/users/{target}/deactivate", headers=admin.auth)
        assert refused.status_code == 403
    # Nobody changes their own role or deactivates themselves (so an organisation keeps an owner).
    own = await client.patch(f"/api/v1/users/{tenant.user_id}", json={"role": "admin"}, headers=tenant.auth)
    assert own.status_code == 409
    assert (
        await client.post(f"/api/v1/users/{tenant.user_id}/deactivate", headers=tenant.auth)
    ).status_code == 409
    # Owners manage admins.
    demoted = await client.patch(
        f"/api/v1/users/{admin.user_id}", json={"role": "viewer"}, headers=tenant.auth
    )
    assert demoted.status_code == 200
    unknown = await client.patch("/api/v1/users/u_nobody", json={"role": "viewer"}, headers=tenant.auth)
    assert unknown.status_code == 404


async def test_deactivation_ends_every_session_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    responder = await member(client, tenant, "responder")
    assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 200

    deactivated = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
    assert deactivated.status_code == 200 and deactivated.json()["status"] == "deactivated"
    # The access token they hold (valid for 15 more minutes) is refused from the next request on.
    assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=responder.auth)).status_code == 401
    # Refresh fails at once; so does a new login, with the same answer as a wrong password.
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": responder.refresh_token})
    assert refresh.status_code == 401
    refused = await login(client, responder.email, responder.password)
    wrong = await login(client, responder.email, responder.password + "x")
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json()
    # Deactivating twice is harmless.
    again = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
    assert again.status_code == 200 and again.json()["status"] == "deactivated"

    reactivated = await client.post(f"/api/v1/users/{responder.user_id}/reactivate", headers=tenant.auth)
    assert reactivated.status_code == 200 and reactivated.json()["status"] == "active"
    # They may log in again, but tokens from before the deactivation stay dead.
    relogged = await login(client, responder.email, responder.password)
    assert relogged.status_code == 200
    assert (
        await client.get("/api/v1/incidents", headers=bearer(relogged.json()["access_token"]))
    ).status_code == 200
    assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 401


async def test_a_pending_invitation_can_be_withdrawn(client: httpx.AsyncClient, tenant: Tenant) -> None:
    invited = await invite(client, tenant, "viewer")
    withdrawn = await client.post(f"/api/v1/users/{invited['user']['id']}/deactivate", headers=tenant.auth)
    assert withdrawn.status_code == 200
    accepted = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invited["invite_token"], "password": "good-enough-pass-1"},
    )
    assert accepted.status_code == 401
    reactivate = await client.post(f"/api/v1/users/{invited['user']['id']}/reactivate", headers=tenant.auth)
    assert reactivate.status_code == 409


async def test_user_listing_pages(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = [tenant.user_id] + [(await invite(client, tenant, "viewer"))["user"]["id"] for _ in range(4)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/users", params=params, headers=tenant.auth)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # oldest first, each once


async def test_an_organisation_has_a_bounded_number_of_pending_invitations(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The test platform caps pending invitations at 10 (MAX_PENDING_INVITES_PER_TENANT; 100 by default)."""
    pending = [await invite(client, tenant, "viewer") for _ in range(10)]
    over = await client.post(
        "/api/v1/users",
        json={"email": "late@example.com", "full_name": "Late", "role": "viewer"},
        headers=tenant.auth,
    )
    assert over.status_code == 409 and "at most 10" in over.json()["error"]["message"]
    await client.post(f"/api/v1/users/{pending[0]['user']['id']}/deactivate", headers=tenant.auth)
    await invite(client, tenant, "viewer")
