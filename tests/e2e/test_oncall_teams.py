"""Routing on alert labels, teams as step targets, and the warnings a policy shows when what it names
changes later: alerts with labels open incidents that page through the policy their labels route to;
a team pages every member (or its schedule's on-call); a member deactivated afterwards, or a team
deleted, shows on the policy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_auth_users import member
from tests.oncall import until

pytestmark = pytest.mark.e2e


async def fire(client: httpx.AsyncClient, key: str, labels: dict[str, str]) -> None:
    starts = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    sent = await client.post(
        "/api/v1/integrations/alertmanager",
        json={
            "status": "firing",
            "groupKey": f'{{}}:{{group="{uuid.uuid4().hex}"}}',
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "DiskFull", "severity": "critical", **labels},
                    "annotations": {"summary": "disk full"},
                    "startsAt": starts,
                    "fingerprint": uuid.uuid4().hex[:16],
                }
            ],
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert sent.status_code == 202, sent.text


async def escalation_of(client: httpx.AsyncClient, tenant: Tenant, service: str) -> dict[str, Any]:
    """The escalation of the incident opened for `service`: the policy it started and whom its first
    step paged."""

    async def found() -> dict[str, Any] | None:
        listed = await client.get("/api/v1/incidents", params={"service": service}, headers=tenant.auth)
        for incident in listed.json()["items"]:
            if incident["service_name"] != service:
                continue
            timeline = await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)
            items = timeline.json()["items"]
            started = [i["data"] for i in items if i["kind"] == "escalation.started"]
            steps = [i["data"] for i in items if i["kind"] == "escalation.step_reached"]
            if started and steps:
                return {"policy_id": started[0]["policy_id"], "user_ids": steps[0]["user_ids"]}
        return None

    result = await until(found)
    assert result, f"no escalation for {service}"
    return dict(result)


async def test_labels_route_alerts_to_a_policy_whose_team_is_paged_and_later_changes_warn(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    auth = tenant.auth
    ann, bob = await member(client, tenant, "responder"), await member(client, tenant, "responder")

    async def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return await client.post(path, json=body, headers=auth)

    # ---- teams, and what they refuse
    unknown = await post("/api/v1/teams", {"name": "db", "members": [ann.user_id, "u_nobody"]})
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["details"][0]["loc"] == ["body", "members", 1]
    no_schedule = await post(
        "/api/v1/teams", {"name": "db", "members": [ann.user_id], "schedule_id": str(uuid.uuid4())}
    )
    assert no_schedule.status_code == 404, no_schedule.text
    made = await post("/api/v1/teams", {"name": "EU databases", "members": [ann.user_id, bob.user_id]})
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["members"] == [ann.user_id, bob.user_id] and team["schedule_id"] is None
    assert team["warnings"] == []
    listed = await client.get("/api/v1/teams", headers=auth)
    assert [t["id"] for t in listed.json()["items"]] == [team["id"]]
    responder = await client.post(
        "/api/v1/teams",
        json={"name": "x", "members": [ann.user_id]},
        headers=ann.auth,
    )
    assert responder.status_code == 403, responder.text

    # ---- policies naming a team (an unknown one is a 404), routing on labels
    missing = await post(
        "/api/v1/escalation-policies",
        {"name": "x", "steps": [{"targets": [{"kind": "team", "id": str(uuid.uuid4())}]}]},
    )
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["details"][0]["loc"] == ["body", "steps", 0, "targets", 0, "id"]
    eu = await post(
        "/api/v1/escalation-policies",
        {"name": "EU", "steps": [{"targets": [{"kind": "team", "id": team["id"]}], "wait_minutes": 60}]},
    )
    assert eu.status_code == 201, eu.text
    assert eu.json()["warnings"] == []
    us = await post(
        "/api/v1/escalation-policies",
        {"name": "US", "steps": [{"targets": [{"kind": "user", "id": tenant.user_id}], "wait_minutes": 60}]},
    )
    assert us.status_code == 201, us.text
    eu_id, us_id = eu.json()["id"], us.json()["id"]
    bad = await client.put(
        "/api/v1/routing",
        json={
            "rules": [{"policy_id": eu_id, "matchers": [{"label": "cluster", "op": "=~", "value": "prod-("}]}]
        },
        headers=auth,
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["details"][0]["loc"] == ["body", "rules", 0, "matchers", 0, "value"]
    rules = [
        {"policy_id": eu_id, "matchers": [{"label": "cluster", "op": "=~", "value": "prod-eu(-.+)?"}]},
        {"policy_id": us_id, "labels": {"region": "us-east"}},
    ]
    routing = await client.put("/api/v1/routing", json={"rules": rules}, headers=auth)
    assert routing.status_code == 200, routing.text
    assert routing.json()["rules"][0]["matchers"][0]["value"] == "prod-eu(-.+)?"
    assert routing.json()["rules"][1]["labels"] == {"region": "us-east"}

    key = await post("/api/v1/integration-keys", {"name": "alertmanager", "scopes": ["alerts:write"]})
    assert key.status_code == 201, key.text
    eu_service, us_service = f"db-{uuid.uuid4().hex[:8]}", f"db-{uuid.uuid4().hex[:8]}"
    await fire(client, key.json()["key"], {"service": eu_service, "cluster": "prod-eu-2"})
    await fire(client, key.json()["key"], {"service": us_service, "region": "us-east"})
    assert await escalation_of(client, tenant, eu_service) == {
        "policy_id": eu_id,
        "user_ids": [ann.user_id, bob.user_id],  # the team: every member
    }
    assert await escalation_of(client, tenant, us_service) == {
        "policy_id": us_id,
        "user_ids": [tenant.user_id],
    }

    # ---- a member deactivated later: the team and the policy say so; a new team naming them is a 409
    # A 503 says it is recorded but not in effect at the gateway yet: oncall hears of it either way.
    deactivated = await client.post(f"/api/v1/users/{bob.user_id}/deactivate", headers=auth)
    assert deactivated.status_code in (200, 503), deactivated.text

    async def warned() -> list[dict[str, Any]]:
        policy = await client.get(f"/api/v1/escalation-policies/{eu_id}", headers=auth)
        return list(policy.json()["warnings"])

    warnings = await until(warned)
    assert [(w["code"], w["step"], w["target"]["id"], w["user_id"]) for w in warnings] == [
        ("deactivated", 0, team["id"], bob.user_id)
    ]
    shown = await client.get(f"/api/v1/teams/{team['id']}", headers=auth)
    assert [(w["code"], w["user_id"]) for w in shown.json()["warnings"]] == [("deactivated", bob.user_id)]
    refused = await post("/api/v1/teams", {"name": "again", "members": [bob.user_id]})
    assert refused.status_code == 409, refused.text

    # ---- the team changed, then deleted: the policy's step pages nobody, and says so
    renamed = await client.patch(
        f"/api/v1/teams/{team['id']}", json={"name": "EU DBAs", "members": [ann.user_id]}, headers=auth
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["members"] == [ann.user_id] and renamed.json()["warnings"] == []
    gone = await client.delete(f"/api/v1/teams/{team['id']}", headers=auth)
    assert gone.status_code == 204, gone.text
    assert (await client.get(f"/api/v1/teams/{team['id']}", headers=auth)).status_code == 404
    policy = await client.get(f"/api/v1/escalation-policies/{eu_id}", headers=auth)
    assert [(w["code"], w["target"]["id"]) for w in policy.json()["warnings"]] == [("missing", team["id"])]
