"""Integration keys through the gateway: created by admins, shown once, stored as a hash, scoped,
revocable, tenant-bound."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.credentials import parse_integration_key, secret_sha256
from tests.conftest import Tenant, register_tenant
from tests.e2e.test_auth_users import bearer, member
from tests.integration.streams import messages_on

pytestmark = pytest.mark.e2e


async def create_key(
    client: httpx.AsyncClient, by: Tenant, scopes: list[str], name: str = "alertmanager"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/integration-keys", json={"name": name, "scopes": scopes}, headers=by.auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_use_list_and_revoke(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_key(client, tenant, ["deploys:write", "alerts:write"])
    assert created["key"].startswith(f"sck_{created['id']}_")
    assert created["scopes"] == ["alerts:write", "deploys:write"]
    assert created["created_by"] == tenant.user_id and created["revoked_at"] is None

    # Usable at once, and it says whose it is.
    whoami = await client.get("/api/v1/auth/key", headers=bearer(created["key"]))
    assert whoami.status_code == 200
    assert whoami.json() == {
        "key_id": created["id"],
        "name": "alertmanager",
        "tenant_id": tenant.tenant_id,
        "scopes": ["alerts:write", "deploys:write"],
    }

    # Listed and readable without the secret.
    listed = await client.get("/api/v1/integration-keys", headers=tenant.auth)
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    assert created["key"] not in listed.text and "key" not in listed.json()["items"][0]
    one = await client.get(f"/api/v1/integration-keys/{created['id']}", headers=tenant.auth)
    assert one.status_code == 200 and "key" not in one.json()

    revoked = await client.post(f"/api/v1/integration-keys/{created['id']}/revoke", headers=tenant.auth)
    # A revocation, not a deletion: it answers with the key, which stays readable and listed, revoked.
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    assert revoked.json()["id"] == created["id"] and "key" not in revoked.json()
    assert (await client.get("/api/v1/auth/key", headers=bearer(created["key"]))).status_code == 401
    after = await client.get(f"/api/v1/integration-keys/{created['id']}", headers=tenant.auth)
    assert after.status_code == 200 and after.json()["revoked_at"] == revoked.json()["revoked_at"]
    listed = await client.get("/api/v1/integration-keys", headers=tenant.auth)
    assert [k["revoked_at"] for k in listed.json()["items"]] == [revoked.json()["revoked_at"]]
    # There is nothing to delete.
    assert (
        await client.delete(f"/api/v1/integration-keys/{created['id']}", headers=tenant.auth)
    ).status_code == 405
    # Revoking twice is harmless.
    assert (
        await client.post(f"/api/v1/integration-keys/{created['id']}/revoke", headers=tenant.auth)
    ).status_code == 200


async def test_keys_and_user_tokens_are_not_interchangeable(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = (await create_key(client, tenant, ["alerts:write"]))["key"]
    # A key is not a user: every user endpoint refuses it.
    for path in ("/api/v1/incidents", "/api/v1/auth/me", "/api/v1/users", "/api/v1/integration-keys"):
        assert (await client.get(path, headers=bearer(key))).status_code == 401, path
    # A user token is not a key.
    assert (await client.get("/api/v1/auth/key", headers=tenant.auth)).status_code == 401
    assert (await client.get("/api/v1/auth/key")).status_code == 401


async def test_forged_and_guessed_keys_are_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await create_key(client, tenant, ["deploys:write"]))["key"]
    parsed = parse_integration_key(key)
    assert parsed is not None
    key_id, secret = parsed
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for forged in (
        f"sck_{key_id}_{flipped}",  # right id, wrong secret
        f"sck_k_{'0' * 32}_{secret}",  # right secret, unknown id
        key[:-1],  # truncated
        key + "A",
        key.upper(),
        "sck_",
    ):
        assert (await client.get("/api/v1/auth/key", headers=bearer(forged))).status_code == 401, forged


async def test_only_the_hash_is_kept_and_published(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext
) -> None:
    created = await create_key(client, tenant, ["alerts:write"])
    _, secret = parse_integration_key(created["key"]) or ("", "")
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT * FROM auth.integration_keys WHERE id = :id"), {"id": created["id"]}
            )
        ).one()
        projected = (
            await conn.execute(
                text("SELECT * FROM gateway.integration_keys WHERE id = :id"), {"id": created["id"]}
            )
        ).one()
    assert stored.secret_hash == projected.secret_sha256 == secret_sha256(secret)
    assert secret not in json.dumps([str(v) for v in (*stored, *projected)])
    (event,) = await messages_on(js, f"events.{tenant.tenant_id}.integration_key.created")
    assert secret not in event.data.decode() and created["key"] not in event.data.decode()


async def test_keys_belong_to_their_tenant(client: httpx.AsyncClient, tenant: Tenant) -> None:
    mine = await create_key(client, tenant, ["alerts:write"])
    other = await register_tenant(client, "Other")
    assert (await client.get(f"/api/v1/integration-keys/{mine['id']}", headers=other.auth)).status_code == 404
    assert (
        await client.post(f"/api/v1/integration-keys/{mine['id']}/revoke", headers=other.auth)
    ).status_code == 404
    assert (await client.get("/api/v1/integration-keys", headers=other.auth)).json()["items"] == []
    # Still alive after the other tenant's attempt.
    assert (await client.get("/api/v1/auth/key", headers=bearer(mine["key"]))).status_code == 200


async def test_only_admins_manage_keys(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = await member(client, tenant, "admin")
    responder = await member(client, tenant, "responder")
    body = {"name": "ci", "scopes": ["deploys:write"]}
    created = await client.post("/api/v1/integration-keys", json=body, headers=admin.auth)
    assert created.status_code == 201
    key_id = created.json()["id"]
    assert (
        await client.post("/api/v1/integration-keys", json=body, headers=responder.auth)
    ).status_code == 403
    assert (await client.get("/api/v1/integration-keys", headers=responder.auth)).status_code == 403
    assert (
        await client.post(f"/api/v1/integration-keys/{key_id}/revoke", headers=responder.auth)
    ).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["incidents:delete"]},
        # More scopes than there are (4).
        {"name": "x", "scopes": ["alerts:write"] * 5},
        {"name": "", "scopes": ["alerts:write"]},
        {"name": "x" * 121, "scopes": ["alerts:write"]},
        {"name": "x", "scopes": ["alerts:write"], "tenant_id": "t_other"},
        {"scopes": ["alerts:write"]},
    ],
)
async def test_bad_key_requests(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> None:
    response = await client.post("/api/v1/integration-keys", json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text


async def test_an_organisation_has_a_bounded_number_of_active_keys(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The test platform caps active keys at 5 (MAX_ACTIVE_KEYS_PER_TENANT; 100 by default)."""
    keys = [await create_key(client, tenant, ["alerts:write"], name=f"k{i}") for i in range(5)]
    over = await client.post(
        "/api/v1/integration-keys",
        json={"name": "one too many", "scopes": ["alerts:write"]},
        headers=tenant.auth,
    )
    assert over.status_code == 409 and "at most 5" in over.json()["error"]["message"]
    await client.post(f"/api/v1/integration-keys/{keys[0]['id']}/revoke", headers=tenant.auth)
    await create_key(client, tenant, ["alerts:write"], name="replacement")
