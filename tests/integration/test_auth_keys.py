"""The integration-key dependency routes will use (`integration_key(scope)`), mounted on a small app of
its own against the platform's real read models: a key is accepted only where its scopes allow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import KeyScope
from gateway import errors
from gateway.auth.dependencies import KeyCaller, integration_key
from tests.conftest import Tenant, register_tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import bearer


def scoped_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    # Only the read models: the dependency under test reads nothing else of the gateway.
    app.state.gateway = SimpleNamespace(engine=engine)

    @app.post("/deploys")
    async def deploys(key: Annotated[KeyCaller, integration_key(KeyScope.DEPLOYS_WRITE)]) -> dict[str, str]:
        return {"tenant_id": key.tenant_id, "actor": key.actor}

    @app.post("/both")
    async def both(
        key: Annotated[KeyCaller, integration_key(KeyScope.DEPLOYS_WRITE, KeyScope.ALERTS_WRITE)],
    ) -> dict[str, str]:
        return {"tenant_id": key.tenant_id}

    return app


async def test_a_key_is_accepted_only_by_routes_within_its_scopes(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    alerts = await create_key(client, tenant, ["alerts:write"])
    deploys = await create_key(client, tenant, ["deploys:write"])
    everything = await create_key(client, tenant, ["alerts:write", "deploys:write"])
    other_tenant = await register_tenant(client, "Other")
    theirs = await create_key(client, other_tenant, ["deploys:write"])
    app = scoped_app(engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as local:
        ok = await local.post("/deploys", headers=bearer(deploys["key"]))
        assert ok.status_code == 200
        assert ok.json() == {"tenant_id": tenant.tenant_id, "actor": deploys["id"]}
        # The tenant is the key's, never anything the caller says.
        assert (await local.post("/deploys", headers=bearer(theirs["key"]))).json()["tenant_id"] == (
            other_tenant.tenant_id
        )

        refused = await local.post("/deploys", headers=bearer(alerts["key"]))
        assert refused.status_code == 403 and "deploys:write" in refused.json()["error"]["message"]
        assert (await local.post("/both", headers=bearer(deploys["key"]))).status_code == 403
        assert (await local.post("/both", headers=bearer(everything["key"]))).status_code == 200

        assert (await local.post("/deploys", headers=tenant.auth)).status_code == 401
        assert (await local.post("/deploys")).status_code == 401

        await client.post(f"/api/v1/integration-keys/{deploys['id']}/revoke", headers=tenant.auth)
        assert (await local.post("/deploys", headers=bearer(deploys["key"]))).status_code == 401

    spec = app.openapi()
    assert spec["paths"]["/deploys"]["post"]["security"] == [{"IntegrationKey": ["deploys:write"]}]
