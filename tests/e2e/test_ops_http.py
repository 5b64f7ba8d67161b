"""CORS (no other origin unless configured) and the optional bearer token of /metrics."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.e2e

CONSOLE_DEV = "http://localhost:5173"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_by_default_no_other_origin_is_allowed(client: httpx.AsyncClient) -> None:
    assert GatewaySettings().cors_origins == []
    refused = await client.options("/api/v1/incidents", headers=preflight(CONSOLE_DEV))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await client.get("/health", headers={"Origin": CONSOLE_DEV})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


async def test_configured_origins_are_allowed_and_no_others() -> None:
    settings = GatewaySettings(cors_origins=["https://console.example"])
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        allowed = await http.options("/api/v1/incidents", headers=preflight("https://console.example"))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://console.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = await http.options("/api/v1/incidents", headers=preflight("https://evil.example"))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers


async def test_metrics_token_when_set() -> None:
    settings = GatewaySettings(metrics_token=SecretStr("scrape-me"))
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "unauthorized"


async def test_metrics_is_open_without_a_token(client: httpx.AsyncClient) -> None:
    assert GatewaySettings().metrics_token is None
    assert (await client.get("/metrics")).status_code == 200
