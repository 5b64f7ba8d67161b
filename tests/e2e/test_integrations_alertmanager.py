"""Alertmanager and Grafana notifications end to end on the real platform: payloads exactly as
Alertmanager sends them (firing, repeated, a group growing, resolved, firing again), concurrent
notifications of one group, invalid payloads kept for admins, and deploys from CI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid6 import uuid7

from contracts.envelope import EventEnvelope
from tests.conftest import Tenant, register_tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import bearer
from tests.integration.streams import messages_on

pytestmark = pytest.mark.e2e

T = TypeVar("T")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
GROUP_KEY = '{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}'


async def eventually(check: Callable[[], Awaitable[T]], seconds: float = 20.0) -> T:
    """The check's first truthy answer (polled), or its last answer once `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


def am_alert(
    fingerprint: str,
    status: str = "firing",
    starts: datetime = T0,
    instance: str = "checkout-0",
    summary: str = "Checkout 5xx ratio above 5%",
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook sends it."""
    return {
        "status": status,
        "labels": {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "severity": "critical",
            "instance": instance,
            "job": "checkout-api",
        },
        "annotations": {
            "summary": summary,
            "description": f"{instance} answers 7.3% of requests with 5xx.",
            "runbook_url": "https://runbooks.example.com/high-error-rate",
        },
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": (starts + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=job%3Acheckout_5xx%3Aratio5m+%3E+0.05&g0.tab=1",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], group_key: str = GROUP_KEY) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4)."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "sre-copilot",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
        "commonAnnotations": {"runbook_url": "https://runbooks.example.com/high-error-rate"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


async def alerts_key(client: httpx.AsyncClient, tenant: Tenant) -> str:
    return str((await create_key(client, tenant, ["alerts:write"]))["key"])


async def send(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> str:
    response = await client.post("/api/v1/integrations/alertmanager", json=body, headers=bearer(key))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    return str(response.json()["delivery_id"])


async def processed(client: httpx.AsyncClient, tenant: Tenant, delivery_id: str) -> dict[str, Any]:
    """The notification once integrations has worked on it."""

    async def done() -> dict[str, Any] | None:
        page = (await client.get("/api/v1/integrations/inbound?limit=200", headers=tenant.auth)).json()
        found = [d for d in page["items"] if d["id"] == delivery_id]
        return found[0] if found and found[0]["status"] != "pending" else None

    delivery = await eventually(done)
    assert delivery is not None, f"{delivery_id} was not processed"
    assert delivery["status"] == "processed", delivery
    opened = (delivery.get("outcome") or {}).get("opened_incident_id")
    if opened:
        # The incident is made by the time integrations is done; the gateway reads it once its
        # creation is projected, a moment later.
        async def readable() -> bool:
            response = await client.get(f"/api/v1/incidents/{opened}", headers=tenant.auth)
            return response.status_code == 200

        assert await eventually(readable), f"the incident {opened} never became readable"
    return delivery


async def incidents_of(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/incidents?order=oldest", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def attached(js: JetStreamContext, tenant: Tenant) -> list[EventEnvelope]:
    return [
        EventEnvelope.from_bytes(m.data)
        for m in await messages_on(js, f"events.{tenant.tenant_id}.alert.attached")
    ]


async def incident_in_state(
    client: httpx.AsyncClient, tenant: Tenant, incident_id: str, state: str
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await client.get(f"/api/v1/incidents/{incident_id}", headers=tenant.auth)).json()
        return body if body["state"] == state else None

    incident = await eventually(check)
    assert incident is not None, f"{incident_id} never reached {state}"
    return incident


async def test_a_group_opens_grows_resolves_and_fires_again(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    key = await alerts_key(client, tenant)
    key_id = key.split("_")[1] + "_" + key.split("_")[2]

    # 1. The first firing alert opens the group's incident.
    first = await processed(client, tenant, await send(client, key, notification(am_alert("fp-a"))))
    [incident] = await incidents_of(client, tenant)
    assert first["outcome"]["opened_incident_id"] == incident["id"]
    assert incident["title"] == "Checkout 5xx ratio above 5%"
    assert incident["service_name"] == "checkout"
    assert incident["severity"] == "critical"
    assert incident["state"] == "detected"
    assert incident["created_by"] == f"integration:{key_id}"
    assert "answers 7.3% of requests with 5xx" in incident["description"]
    assert incident["related_incident_id"] is None

    # 2. Alertmanager's repeat: the same alert again changes nothing and publishes nothing.
    repeat = await processed(client, tenant, await send(client, key, notification(am_alert("fp-a"))))
    assert repeat["outcome"]["duplicates"] == 1 and repeat["outcome"]["attached"] == 0
    assert len(await incidents_of(client, tenant)) == 1
    assert len(await attached(js, tenant)) == 1

    # 3. The group grows: the new alert joins the same incident.
    grown = notification(am_alert("fp-a"), am_alert("fp-b", instance="checkout-1"))
    grew = await processed(client, tenant, await send(client, key, grown))
    assert (grew["outcome"]["attached"], grew["outcome"]["duplicates"]) == (1, 1)
    assert grew["outcome"]["incident_id"] == incident["id"]
    assert len(await incidents_of(client, tenant)) == 1

    # 4. One alert resolves: recorded, but the incident stays open while the other fires.
    half = notification(am_alert("fp-a", "resolved"), am_alert("fp-b", instance="checkout-1"))
    halfway = await processed(client, tenant, await send(client, key, half))
    assert (halfway["outcome"]["resolved"], halfway["outcome"]["resolving"]) == (1, [])
    assert (await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)).json()["state"] == (
        "detected"
    )

    # 5. All resolved: the incident is resolved by the system.
    done = notification(am_alert("fp-a", "resolved"), am_alert("fp-b", "resolved", instance="checkout-1"))
    finished = await processed(client, tenant, await send(client, key, done))
    assert finished["outcome"]["resolving"] == [incident["id"]]
    resolved = await incident_in_state(client, tenant, incident["id"], "resolved")
    assert resolved["resolved_at"] is not None
    timeline = (await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)).json()
    [resolution] = [e for e in timeline["items"] if e["kind"] == "incident.state_changed"]
    assert resolution["actor"] == "system" and resolution["data"]["to_state"] == "resolved"
    kinds = [(e["kind"], e["data"].get("status")) for e in timeline["items"] if e["kind"] == "alert.attached"]
    assert kinds == [("alert.attached", s) for s in ("firing", "firing", "resolved", "resolved")]

    # Resolved alerts re-sent: nothing.
    again = await processed(client, tenant, await send(client, key, done))
    assert again["outcome"]["duplicates"] == 2 and again["outcome"]["resolving"] == []

    # 6. The alert fires again: a new incident, linked to the one before.
    refire = notification(am_alert("fp-a", starts=T0 + timedelta(hours=2)))
    reopened = await processed(client, tenant, await send(client, key, refire))
    first_incident, second = await incidents_of(client, tenant)
    assert first_incident["id"] == incident["id"] and first_incident["state"] == "resolved"
    assert reopened["outcome"]["opened_incident_id"] == second["id"]
    assert second["related_incident_id"] == incident["id"]
    assert second["state"] == "detected"

    # Nothing duplicated on the log: A and B firing, both resolved, A firing again.
    events = await attached(js, tenant)
    assert [(e.data["fingerprint"], e.data["status"]) for e in events] == [
        ("fp-a", "firing"),
        ("fp-b", "firing"),
        ("fp-a", "resolved"),
        ("fp-b", "resolved"),
        ("fp-a", "firing"),
    ]
    assert [e.aggregate_id for e in events] == [incident["id"]] * 4 + [second["id"]]
    assert all(e.actor == f"integration:{key_id}" for e in events)
    assert events[2].data["ends_at"] is not None and events[0].data["ends_at"] is None
    created = await messages_on(js, f"events.{tenant.tenant_id}.incident.created")
    assert len(created) == 2


async def test_auto_resolution_can_be_turned_off(client: httpx.AsyncClient, tenant: Tenant) -> None:
    settings = await client.get("/api/v1/integrations/settings", headers=tenant.auth)
    assert settings.json() == {"auto_resolve": True}
    turned = await client.put(
        "/api/v1/integrations/settings", json={"auto_resolve": False}, headers=tenant.auth
    )
    assert turned.status_code == 200 and turned.json() == {"auto_resolve": False}

    key = await alerts_key(client, tenant)
    await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"))))
    resolved = await processed(
        client, tenant, await send(client, key, notification(am_alert("fp-1", "resolved")))
    )
    assert resolved["outcome"]["resolved"] == 1 and resolved["outcome"]["resolving"] == []
    [incident] = await incidents_of(client, tenant)
    assert incident["state"] == "detected"


async def test_a_human_resolution_is_respected_and_a_new_alert_opens_a_linked_incident(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await alerts_key(client, tenant)
    await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"))))
    [incident] = await incidents_of(client, tenant)
    moved = await client.post(
        f"/api/v1/incidents/{incident['id']}/transitions",
        json={"to": "resolved", "note": "rolled back"},
        headers=tenant.auth,
    )
    assert moved.status_code == 200, moved.text

    # integrations learns of the resolution from the log; meanwhile a re-send is still a re-send.
    async def knows_it_is_resolved() -> bool:
        body = notification(am_alert("fp-1"), am_alert(f"probe-{uuid.uuid4().hex[:6]}", instance="x"))
        outcome = (await processed(client, tenant, await send(client, key, body)))["outcome"]
        return outcome["opened_incident_id"] is not None

    assert await eventually(knows_it_is_resolved)
    incidents = await incidents_of(client, tenant)
    assert incidents[-1]["related_incident_id"] == incident["id"]
    assert incidents[0]["state"] == "resolved"


async def test_concurrent_notifications_of_one_group_open_one_incident(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    key = await alerts_key(client, tenant)
    bodies = [notification(am_alert(f"fp-{n}", instance=f"checkout-{n}")) for n in range(8)]
    ids = await asyncio.gather(*(send(client, key, b) for b in bodies))
    for delivery_id in ids:
        await processed(client, tenant, delivery_id)
    [incident] = await incidents_of(client, tenant)
    events = await attached(js, tenant)
    assert sorted(e.data["fingerprint"] for e in events) == sorted(f"fp-{n}" for n in range(8))
    assert {e.aggregate_id for e in events} == {incident["id"]}


async def test_different_groups_open_different_incidents_and_tenants_stay_apart(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await alerts_key(client, tenant)
    other = await register_tenant(client, "Other")
    other_key = await alerts_key(client, other)
    await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"), group_key="g-1")))
    await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"), group_key="g-2")))
    # The same group key and fingerprint in another organisation is another incident.
    await processed(
        client, other, await send(client, other_key, notification(am_alert("fp-1"), group_key="g-1"))
    )
    assert len(await incidents_of(client, tenant)) == 2
    assert len(await incidents_of(client, other)) == 1
    mine = (await client.get("/api/v1/integrations/inbound", headers=tenant.auth)).json()["items"]
    theirs = (await client.get("/api/v1/integrations/inbound", headers=other.auth)).json()["items"]
    assert len(mine) == 2 and len(theirs) == 1


GRAFANA = {
    "receiver": "sre-copilot",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskFull",
                "grafana_folder": "Infra",
                "job": "node-exporter",
                "severity": "warning",
            },
            "annotations": {"summary": "Disk /var above 90% on db-1"},
            "startsAt": "2026-11-25T08:15:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana:3000/alerting/grafana/d1sk/view?orgId=1",
            "fingerprint": "4f1a9b8c7d6e5f40",
            "silenceURL": "http://grafana:3000/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"A": 93.1, "C": 1},
            "valueString": "[ var='A' labels={} value=93.1 ]",
        }
    ],
    "groupLabels": {"alertname": "DiskFull", "grafana_folder": "Infra"},
    "commonLabels": {"alertname": "DiskFull", "grafana_folder": "Infra", "job": "node-exporter"},
    "commonAnnotations": {"summary": "Disk /var above 90% on db-1"},
    "externalURL": "http://grafana:3000/",
    "version": "1",
    "groupKey": '{}/{__grafana_autogenerated__="true"}:{alertname="DiskFull", grafana_folder="Infra"}',
    "truncatedAlerts": 0,
    "title": "[FIRING:1] DiskFull Infra",
    "state": "alerting",
    "message": "**Firing**\n\nValue: A=93.1",
}


async def test_grafana_notifications_use_the_same_path(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await alerts_key(client, tenant)
    await processed(client, tenant, await send(client, key, GRAFANA))
    [incident] = await incidents_of(client, tenant)
    assert incident["title"] == "Disk /var above 90% on db-1"
    assert incident["service_name"] == "node-exporter"
    assert incident["severity"] == "medium"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json at all", "Invalid JSON"),
        (
            json.dumps({k: v for k, v in notification(am_alert("x")).items() if k != "alerts"}).encode(),
            "alerts",
        ),
        (json.dumps(notification({**am_alert("x"), "status": "burning"})).encode(), "alerts.0.status"),
        (json.dumps(notification({**am_alert("x"), "startsAt": "2026-11-25T09:00:00"})).encode(), "startsAt"),
        (json.dumps(notification()).encode(), "alerts"),
        (json.dumps([notification(am_alert("x"))]).encode(), "body"),
    ],
    ids=["not-json", "no-alerts", "bad-status", "naive-time", "empty-alerts", "a-list"],
)
async def test_invalid_payloads_are_refused_and_kept_for_admins(
    client: httpx.AsyncClient, tenant: Tenant, body: bytes, problem: str
) -> None:
    key = await alerts_key(client, tenant)
    response = await client.post(
        "/api/v1/integrations/alertmanager",
        content=body,
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and problem in error["message"]
    assert error["details"] and error["details"][0]["loc"][0] == "body"

    listed = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()
    [kept] = listed["items"]
    assert kept["endpoint"] == "alertmanager" and kept["message"] == error["message"]
    assert kept["body"] == body.decode() and kept["body_truncated"] is False
    assert kept["key_id"] in key
    assert await incidents_of(client, tenant) == []


async def test_a_huge_refused_body_is_kept_cut(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await alerts_key(client, tenant)
    body = json.dumps({"garbage": "x" * 200_000})
    response = await client.post("/api/v1/integrations/alertmanager", content=body, headers=bearer(key))
    assert response.status_code == 422
    [kept] = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()["items"]
    assert kept["body_truncated"] is True and len(kept["body"]) == 64_000 and body.startswith(kept["body"])


async def test_rejections_are_per_organisation_and_newest_first(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await alerts_key(client, tenant)
    for n in range(3):
        await client.post("/api/v1/integrations/alertmanager", content=f"bad {n}", headers=bearer(key))
    first = (await client.get("/api/v1/integrations/rejections?limit=2", headers=tenant.auth)).json()
    assert [r["body"] for r in first["items"]] == ["bad 2", "bad 1"]
    rest = await client.get(
        f"/api/v1/integrations/rejections?cursor={first['next_cursor']}", headers=tenant.auth
    )
    assert [r["body"] for r in rest.json()["items"]] == ["bad 0"] and rest.json()["next_cursor"] is None
    other = await register_tenant(client, "Other")
    assert (await client.get("/api/v1/integrations/rejections", headers=other.auth)).json()["items"] == []
    bad_cursor = await client.get("/api/v1/integrations/rejections?cursor=nope", headers=tenant.auth)
    assert bad_cursor.status_code == 422


async def test_only_a_key_with_the_scope_may_send(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = notification(am_alert("fp-1"))
    deploys_only = (await create_key(client, tenant, ["deploys:write"]))["key"]
    url = "/api/v1/integrations/alertmanager"
    assert (await client.post(url, json=body, headers=bearer(deploys_only))).status_code == 403
    assert (await client.post(url, json=body, headers=tenant.auth)).status_code == 401  # a user is not a key
    assert (await client.post(url, json=body)).status_code == 401
    key = await create_key(client, tenant, ["alerts:write"])
    await client.post(f"/api/v1/integration-keys/{key['id']}/revoke", headers=tenant.auth)
    assert (await client.post(url, json=body, headers=bearer(key["key"]))).status_code == 401
    # Refused before anything was stored.
    assert (await client.get("/api/v1/integrations/inbound", headers=tenant.auth)).json()["items"] == []


async def test_a_notification_stored_but_not_yet_processed_is_picked_up(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """What a crash between the 202 and the processing leaves: a pending row. Any replica's poll
    finds it, as a restarted one does."""
    delivery_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO integrations.inbound (id, tenant_id, source, key_id, correlation_id, group_key,"
                " alert_count, payload, status, attempts, next_attempt_at, received_at)"
                " VALUES (:id, :t, 'alertmanager', 'k_test', 'left-behind', :g, 1, CAST(:p AS jsonb),"
                " 'pending', 0, :now, :now)"
            ),
            {
                "id": delivery_id,
                "t": tenant.tenant_id,
                "g": GROUP_KEY,
                "p": json.dumps(notification(am_alert("fp-1"))),
                "now": now,
            },
        )
    await processed(client, tenant, str(delivery_id))
    [incident] = await incidents_of(client, tenant)
    assert incident["created_by"] == "integration:k_test"


async def test_a_notification_that_cannot_be_applied_fails_visibly_and_blocks_nothing(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """A stored notification that can never be applied (here: a payload from an older, incompatible
    version) is marked failed with its error, and the tenant's later notifications go ahead."""
    broken = uuid.UUID(str(uuid7()))  # ids are in arrival order: this one arrived first
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO integrations.inbound (id, tenant_id, source, key_id, correlation_id, group_key,"
                " alert_count, payload, status, attempts, next_attempt_at, received_at)"
                " VALUES (:id, :t, 'alertmanager', 'k_test', 'broken', 'g', 1, CAST(:p AS jsonb),"
                " 'pending', 0, now(), now())"
            ),
            {"id": broken, "t": tenant.tenant_id, "p": json.dumps({"alerts": "not a list"})},
        )
    key = await alerts_key(client, tenant)
    after = await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"))))
    assert after["outcome"]["opened_incident_id"]
    failed = (await client.get("/api/v1/integrations/inbound?status=failed", headers=tenant.auth)).json()
    [item] = failed["items"]
    assert item["id"] == str(broken) and item["attempts"] == 1 and "ValidationError" in item["last_error"]


async def test_a_notification_waiting_out_a_back_off_holds_up_only_its_own_group(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """Order is kept within an alert group; other groups do not wait behind it."""
    stuck_group = '{}:{alertname="Stuck"}'
    waiting = uuid.UUID(str(uuid7()))  # arrived first, and its next attempt is an hour away
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO integrations.inbound (id, tenant_id, source, key_id, correlation_id, group_key,"
                " alert_count, payload, status, attempts, next_attempt_at, received_at)"
                " VALUES (:id, :t, 'alertmanager', 'k_test', 'waiting', :g, 1, CAST(:p AS jsonb),"
                " 'pending', 1, now() + interval '1 hour', now())"
            ),
            {
                "id": waiting,
                "t": tenant.tenant_id,
                "g": stuck_group,
                "p": json.dumps(notification(am_alert("fp-stuck"), group_key=stuck_group)),
            },
        )
    key = await alerts_key(client, tenant)
    behind = await send(client, key, notification(am_alert("fp-stuck-2"), group_key=stuck_group))
    other = await processed(client, tenant, await send(client, key, notification(am_alert("fp-1"))))
    assert other["outcome"]["opened_incident_id"]
    page = (await client.get("/api/v1/integrations/inbound?limit=200", headers=tenant.auth)).json()
    status = {d["id"]: d["status"] for d in page["items"]}
    assert status[str(waiting)] == "pending" and status[behind] == "pending"


# ---- deploys


async def test_deploys_are_recorded_once_and_published(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    key = (await create_key(client, tenant, ["deploys:write"], name="ci"))["key"]
    deploy = {
        "service_name": "checkout",
        "version": "v2.14.0",
        "environment": "production",
        "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "author": "ada@acme.example",
        "deployed_at": "2026-11-25T10:30:00Z",
    }
    created = await client.post("/api/v1/integrations/deploys", json=deploy, headers=bearer(key))
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ("service_name", "version", "environment", "commit", "author")} == {
        k: deploy[k] for k in ("service_name", "version", "environment", "commit", "author")
    }
    # CI retrying the same request: the same deploy, nothing new.
    again = await client.post("/api/v1/integrations/deploys", json=deploy, headers=bearer(key))
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    [event] = [
        EventEnvelope.from_bytes(m.data) for m in await messages_on(js, f"events.{tenant.tenant_id}.deploy.*")
    ]
    assert event.type == "deploy.recorded" and event.data["deploy_id"] == body["id"]
    assert event.data["version"] == "v2.14.0" and event.data["deployed_at"].startswith("2026-11-25T10:30:00")
    assert event.actor.startswith("integration:k_")

    minimal = await client.post(
        "/api/v1/integrations/deploys",
        json={"service_name": "checkout", "version": "v2.14.1", "environment": "staging"},
        headers=bearer(key),
    )
    assert minimal.status_code == 201 and minimal.json()["deployed_at"]

    alerts_only = (await create_key(client, tenant, ["alerts:write"]))["key"]
    refused = await client.post("/api/v1/integrations/deploys", json=deploy, headers=bearer(alerts_only))
    assert refused.status_code == 403


async def test_invalid_deploys_are_refused_and_kept(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await create_key(client, tenant, ["deploys:write"], name="ci"))["key"]
    bad = {"service_name": "check out!", "version": "", "environment": "prod", "extra": 1}
    response = await client.post("/api/v1/integrations/deploys", json=bad, headers=bearer(key))
    assert response.status_code == 422
    fields = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert {("body", "service_name"), ("body", "version"), ("body", "extra")} <= fields
    [kept] = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()["items"]
    assert kept["endpoint"] == "deploys" and json.loads(kept["body"]) == bad
