"""Replacing an escalation policy (`PUT /api/v1/escalation-policies/{id}`, the console's edit): the
same checks as creating one, admins only."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_auth_users import member

pytestmark = pytest.mark.e2e


async def test_an_admin_replaces_a_policys_steps_with_the_checks_of_creating_one(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    layer = {
        "participants": [tenant.user_id],
        "rotation": "weekly",
        "start_date": "2026-11-30",
        "time_zone": "UTC",
    }
    schedule = await client.post(
        "/api/v1/schedules", json={"name": "Primary", "layers": [layer]}, headers=tenant.auth
    )
    sid = schedule.json()["id"]
    first = {"name": "Web", "steps": [{"targets": [{"kind": "user", "id": tenant.user_id}]}]}
    created = await client.post("/api/v1/escalation-policies", json=first, headers=tenant.auth)
    assert created.status_code == 201, created.text
    url = f"/api/v1/escalation-policies/{created.json()['id']}"

    second = {
        "name": "Web, then the schedule",
        "steps": [
            {"targets": [{"kind": "user", "id": tenant.user_id}], "wait_minutes": 2},
            {"targets": [{"kind": "schedule", "id": sid}], "wait_minutes": 10},
        ],
        "repeat": 2,
    }
    replaced = await client.put(url, json=second, headers=tenant.auth)
    assert replaced.status_code == 200, replaced.text
    read = (await client.get(url, headers=tenant.auth)).json()
    assert read["name"] == "Web, then the schedule" and read["repeat"] == 2
    assert [s["wait_minutes"] for s in read["steps"]] == [2, 10]
    assert read["steps"][1]["targets"] == [{"kind": "schedule", "id": sid}]
    assert read["created_at"] == created.json()["created_at"]
    assert read["updated_at"] > created.json()["updated_at"]

    unknown_schedule = {"name": "x", "steps": [{"targets": [{"kind": "schedule", "id": str(uuid.uuid4())}]}]}
    missing = await client.put(url, json=unknown_schedule, headers=tenant.auth)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["details"][0]["loc"] == ["body", "steps", 0, "targets", 0, "id"]
    empty = await client.put(url, json={"name": "x", "steps": []}, headers=tenant.auth)
    assert empty.status_code == 422, empty.text
    nowhere = await client.put(
        f"/api/v1/escalation-policies/{uuid.uuid4()}", json=second, headers=tenant.auth
    )
    assert nowhere.status_code == 404, nowhere.text
    responder = await member(client, tenant, "responder")
    assert (await client.put(url, json=first, headers=responder.auth)).status_code == 403
    # Nothing the refused requests sent was kept.
    assert (await client.get(url, headers=tenant.auth)).json()["name"] == "Web, then the schedule"
