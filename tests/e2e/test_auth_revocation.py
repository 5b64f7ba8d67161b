"""Revoking an integration key or deactivating a user answers success only once the gateway refuses
the credential: held back when the gateway's projection lags (here: its projector kept waiting on
the projection lock), the answer is a 503 with Retry-After, and the retry that succeeds means it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.projection.tables import PROJECTION_LOCK
from tests.conftest import Tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import bearer, member

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def projector_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """While inside, the gateway's projector applies nothing (each batch takes the projection lock
    shared; a rebuild's swap takes it like this)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PROJECTION_LOCK})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PROJECTION_LOCK})


async def test_a_revocation_the_gateway_does_not_enforce_yet_is_not_a_success(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    key = await create_key(client, tenant, ["alerts:write"])
    async with projector_held(engine):
        pending = await client.post(f"/api/v1/integration-keys/{key['id']}/revoke", headers=tenant.auth)
        assert pending.status_code == 503, pending.text
        assert pending.json()["error"]["code"] == "unavailable"
        assert int(pending.headers["retry-after"]) >= 1
        # Which is the truth: the gateway still lets the key in.
        assert (await client.get("/api/v1/auth/key", headers=bearer(key["key"]))).status_code == 200
    # Retried as told (auth has nothing left to do, so no sequence to wait for): once it answers
    # 200 the key is refused.
    done = await client.post(f"/api/v1/integration-keys/{key['id']}/revoke", headers=tenant.auth)
    assert done.status_code == 200, done.text
    assert done.json()["revoked_at"]
    assert (await client.get("/api/v1/auth/key", headers=bearer(key["key"]))).status_code == 401


async def test_a_revoked_key_is_refused_right_after_the_answer(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await create_key(client, tenant, ["deploys:write"])
    assert (
        await client.post(f"/api/v1/integration-keys/{key['id']}/revoke", headers=tenant.auth)
    ).status_code == 200
    deploy = {"service_name": "checkout", "version": "v1", "environment": "production"}
    refused = await client.post("/api/v1/integrations/deploys", json=deploy, headers=bearer(key["key"]))
    assert refused.status_code == 401


async def test_a_deactivation_the_gateway_does_not_enforce_yet_is_not_a_success(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    responder = await member(client, tenant, "responder")
    async with projector_held(engine):
        pending = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
        assert pending.status_code == 503, pending.text
        assert pending.json()["error"]["code"] == "unavailable" and "retry-after" in pending.headers
        assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 200
    done = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "deactivated"
    assert (await client.get("/api/v1/incidents", headers=responder.auth)).status_code == 401


async def test_a_deactivated_user_is_refused_right_after_the_answer(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    viewer = await member(client, tenant, "viewer")
    done = await client.post(f"/api/v1/users/{viewer.user_id}/deactivate", headers=tenant.auth)
    assert done.status_code == 200 and done.json()["status"] == "deactivated"
    assert (await client.get("/api/v1/auth/me", headers=viewer.auth)).status_code == 401
