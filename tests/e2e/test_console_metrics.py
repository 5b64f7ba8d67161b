"""What the web console's dashboard reads from GET /api/v1/metrics/incidents: the incidents open now
(whatever their age) by state and severity, and incidents created per UTC day in the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import INCIDENT, Tenant, register_tenant

pytestmark = pytest.mark.e2e


async def _create(client: httpx.AsyncClient, tenant: Tenant, severity: str) -> str:
    response = await client.post(
        "/api/v1/incidents", json=INCIDENT | {"severity": severity}, headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _move(client: httpx.AsyncClient, tenant: Tenant, incident_id: str, to: str) -> None:
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/transitions", json={"to": to}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text


async def test_open_incidents_and_incidents_per_day(client: httpx.AsyncClient, tenant: Tenant) -> None:
    critical = await _create(client, tenant, "critical")
    high = await _create(client, tenant, "high")
    low = await _create(client, tenant, "low")
    await _move(client, tenant, critical, "acknowledged")
    await _move(client, tenant, high, "resolved")
    await _move(client, tenant, low, "investigating")

    metrics = (await client.get("/api/v1/metrics/incidents", headers=tenant.auth)).json()
    assert metrics["open"] == {
        "total": 2,
        "by_state": {"acknowledged": 1, "investigating": 1},
        "by_severity": {"critical": 1, "low": 1},
    }
    today = datetime.now(UTC).date()
    days = {(today - timedelta(days=1)).isoformat(), today.isoformat()}  # the test may straddle midnight
    assert sum(d["count"] for d in metrics["created_per_day"]) == 3
    assert {d["day"] for d in metrics["created_per_day"]} <= days

    # Open incidents count whatever the window; the days only count the window's incidents.
    past = datetime.now(UTC) - timedelta(days=400)
    old_window = (
        await client.get(
            "/api/v1/metrics/incidents",
            params={"created_from": past.isoformat(), "created_to": (past + timedelta(days=1)).isoformat()},
            headers=tenant.auth,
        )
    ).json()
    assert old_window["open"]["total"] == 2
    assert old_window["created_per_day"] == []

    # Another organisation sees none of it.
    other = await register_tenant(client, "Other Org")
    theirs = (await client.get("/api/v1/metrics/incidents", headers=other.auth)).json()
    assert theirs["open"] == {"total": 0, "by_state": {}, "by_severity": {}}
    assert theirs["created_per_day"] == []
