"""The PagerDuty Events API v2-compatible endpoints end to end on the real platform: bodies as
Alertmanager's `pagerduty_configs` and Grafana's PagerDuty contact point send them, trigger /
acknowledge / resolve by dedup_key, PagerDuty's answers (202, 400 with `errors`, 401, 403), refused
bodies kept for admins, and change events recorded as deploys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from contracts.envelope import EventEnvelope
from tests.conftest import Tenant, register_tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_integrations_alertmanager import (
    alerts_key,
    attached,
    incident_in_state,
    incidents_of,
    processed,
)
from tests.integration.streams import messages_on

pytestmark = pytest.mark.e2e

ENQUEUE = "/api/v1/integrations/pagerduty/v2/enqueue"
CHANGE = "/api/v1/integrations/pagerduty/v2/change/enqueue"


def alertmanager_event(key: str, action: str, dedup_key: str = "a3f1c2") -> dict[str, Any]:
    """What Alertmanager's `pagerduty_configs` (Events v2) sends, defaults left as they are."""
    return {
        "routing_key": key,
        "dedup_key": dedup_key,
        "event_action": action,
        "payload": {
            "summary": "[FIRING:1] HighErrorRate checkout (critical)",
            "source": "Alertmanager",
            "severity": "critical",
            "custom_details": {
                "firing": "Labels:\n - alertname = HighErrorRate\n - service = checkout\n",
                "num_firing": "1",
                "num_resolved": "0",
                "resolved": "",
                "service": "checkout",
            },
        },
        "client": "Alertmanager",
        "client_url": "http://alertmanager:9093/#/alerts?receiver=sre-copilot",
    }


def grafana_event(key: str, action: str, dedup_key: str) -> dict[str, Any]:
    """What Grafana's PagerDuty contact point sends (it adds a top-level `description`)."""
    return {
        "routing_key": key,
        "dedup_key": dedup_key,
        "description": "[FIRING:1] DiskFull (db-0)",
        "event_action": action,
        "payload": {
            "summary": "[FIRING:1] DiskFull (db-0)",
            "source": "grafana.example.com",
            "severity": "warning",
            "timestamp": "2026-11-25T09:00:00.000+0000",
            "class": "default",
            "component": "postgres",
            "group": "default",
            "custom_details": {"firing": "Value: B=97", "num_firing": "1", "num_resolved": "0"},
        },
        "client": "Grafana",
        "client_url": "http://grafana.example.com/",
        "links": [{"href": "http://grafana.example.com/alerting/list", "text": "External URL"}],
        "images": [{"src": "https://grafana.example.com/render/panel.png", "alt": "panel"}],
    }


async def enqueue(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(ENQUEUE, json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "success" and answer["message"] == "Event processed"
    return dict(answer)


async def last_delivery(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    page = (await client.get("/api/v1/integrations/inbound?limit=1", headers=tenant.auth)).json()
    return await processed(client, tenant, page["items"][0]["id"])


async def test_trigger_attach_acknowledge_resolve_by_dedup_key(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    key = await alerts_key(client, tenant)
    answer = await enqueue(client, alertmanager_event(key, "trigger"))
    assert answer["dedup_key"] == "a3f1c2"
    opened = await last_delivery(client, tenant)
    [incident] = await incidents_of(client, tenant)
    assert opened["source"] == "pagerduty" and opened["outcome"]["opened_incident_id"] == incident["id"]
    assert incident["title"] == "[FIRING:1] HighErrorRate checkout (critical)"
    assert incident["service_name"] == "checkout" and incident["severity"] == "critical"
    assert "num_firing: 1" in incident["description"]

    # The same dedup_key again while open: attached to the same incident, no second one.
    again = alertmanager_event(key, "trigger")
    again["payload"]["timestamp"] = "2026-11-25T09:05:00Z"
    await enqueue(client, again)
    attachedto = await last_delivery(client, tenant)
    assert attachedto["outcome"]["incident_id"] == incident["id"]
    assert attachedto["outcome"]["opened_incident_id"] is None
    assert len(await incidents_of(client, tenant)) == 1

    # acknowledge: detected -> acknowledged, by the integration.
    await enqueue(client, alertmanager_event(key, "acknowledge"))
    acked = await last_delivery(client, tenant)
    assert acked["outcome"] == {"incident_id": incident["id"], "acknowledged": True}
    await incident_in_state(client, tenant, incident["id"], "acknowledged")
    # A second acknowledge changes nothing.
    await enqueue(client, alertmanager_event(key, "acknowledge"))
    assert (await last_delivery(client, tenant))["outcome"]["acknowledged"] is False

    # resolve (Alertmanager repeats the payload): the incident is resolved.
    await enqueue(client, alertmanager_event(key, "resolve"))
    resolving = await last_delivery(client, tenant)
    assert resolving["outcome"]["resolving"] == [incident["id"]]
    await incident_in_state(client, tenant, incident["id"], "resolved")
    # A resolve sent twice is a duplicate.
    await enqueue(client, {"routing_key": key, "event_action": "resolve", "dedup_key": "a3f1c2"})
    assert (await last_delivery(client, tenant))["outcome"]["duplicates"] == 1

    events = await attached(js, tenant)
    assert [e.data["status"] for e in events] == ["firing", "firing", "resolved"]
    assert {e.aggregate_id for e in events} == {incident["id"]}

    # Triggered again after the resolution: a new incident, linked to the first.
    await enqueue(client, alertmanager_event(key, "trigger"))
    assert (await last_delivery(client, tenant))["outcome"]["opened_incident_id"]
    first, second = await incidents_of(client, tenant)
    assert first["id"] == incident["id"] and second["related_incident_id"] == incident["id"]


async def test_grafana_events_and_a_trigger_without_dedup_key(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await alerts_key(client, tenant)
    await enqueue(client, grafana_event(key, "trigger", "grafana-disk"))
    await last_delivery(client, tenant)
    [incident] = await incidents_of(client, tenant)
    assert incident["service_name"] == "postgres" and incident["severity"] == "medium"
    assert "External URL: http://grafana.example.com/alerting/list" in incident["description"]

    # No dedup_key: one is made and answered, and it names the alert from then on.
    bare = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "Queue backlog", "source": "worker-3", "severity": "error"},
    }
    made = (await enqueue(client, bare))["dedup_key"]
    assert len(made) == 32
    await last_delivery(client, tenant)
    _, backlog = await incidents_of(client, tenant)
    assert backlog["title"] == "Queue backlog" and backlog["severity"] == "high"
    assert backlog["service_name"] == "worker-3"
    await enqueue(client, {"routing_key": key, "event_action": "resolve", "dedup_key": made})
    await incident_in_state(client, tenant, backlog["id"], "resolved")
    assert (await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)).json()["state"] == (
        "detected"
    )


async def test_an_acknowledge_for_nothing_open_is_recorded(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await alerts_key(client, tenant)
    await enqueue(client, {"routing_key": key, "event_action": "acknowledge", "dedup_key": "never-fired"})
    assert (await last_delivery(client, tenant))["outcome"] == {"incident_id": None, "acknowledged": False}
    assert await incidents_of(client, tenant) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"event_action": "trigger"}, "payload"),
        ({"event_action": "resolve"}, "dedup_key"),
        ({"event_action": "snooze", "dedup_key": "x"}, "event_action"),
        (
            {"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "high"}},
            "severity",
        ),
    ],
)
async def test_malformed_events_are_a_400_with_errors_and_kept(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], problem: str
) -> None:
    key = await alerts_key(client, tenant)
    response = await client.post(ENQUEUE, json={"routing_key": key, **body})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
    assert any(problem in error for error in answer["errors"]), answer
    [kept] = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()["items"]
    assert kept["endpoint"] == "pagerduty" and problem in kept["message"]
    assert json.loads(kept["body"])["event_action"] == body["event_action"]
    assert await incidents_of(client, tenant) == []
    inbound = (await client.get("/api/v1/integrations/inbound", headers=tenant.auth)).json()
    assert inbound["items"] == []


async def test_not_json_is_a_400_and_bad_keys_are_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    garbage = await client.post(ENQUEUE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    assert garbage.json() == {
        "status": "Unrecognized object",
        "message": "Event object format is unrecognized",
        "errors": ["JSON parse error"],
    }

    key = await alerts_key(client, tenant)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for routing_key in ("e93facc04764012d7bfb002500d5d1a6", forged):
        refused = await client.post(ENQUEUE, json=alertmanager_event(routing_key, "trigger"))
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["status"] == "invalid routing key" and refused.json()["errors"]

    deploys_only = (await create_key(client, tenant, ["deploys:write"], name="ci"))["key"]
    forbidden = await client.post(ENQUEUE, json=alertmanager_event(deploys_only, "trigger"))
    assert forbidden.status_code == 403 and "alerts:write" in forbidden.json()["message"]

    revoked = await create_key(client, tenant, ["alerts:write"], name="old")
    await client.post(f"/api/v1/integration-keys/{revoked['id']}/revoke", headers=tenant.auth)
    gone = await client.post(ENQUEUE, json=alertmanager_event(revoked["key"], "trigger"))
    assert gone.status_code == 401
    assert await incidents_of(client, tenant) == []
    # Nothing was kept for an unknown key: it names no organisation.
    assert (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()["items"] == []


async def test_events_stay_in_the_key_organisation(client: httpx.AsyncClient, tenant: Tenant) -> None:
    other = await register_tenant(client, "Other PD org")
    mine, theirs = await alerts_key(client, tenant), await alerts_key(client, other)
    await enqueue(client, alertmanager_event(mine, "trigger", "shared-key"))
    await last_delivery(client, tenant)
    # The same dedup_key in another organisation is another alert.
    await enqueue(client, alertmanager_event(theirs, "acknowledge", "shared-key"))
    assert (await last_delivery(client, other))["outcome"]["incident_id"] is None
    [incident] = await incidents_of(client, tenant)
    assert incident["state"] == "detected"
    assert await incidents_of(client, other) == []


async def test_change_events_are_recorded_as_deploys(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    key = (await create_key(client, tenant, ["deploys:write"], name="argocd"))["key"]
    change = {
        "routing_key": key,
        "payload": {
            "summary": "checkout synced to v2.15.0",
            "timestamp": "2026-11-25T10:30:00.000+0000",
            "source": "argocd",
            "custom_details": {
                "service": "checkout",
                "version": "v2.15.0",
                "environment": "production",
                "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                "author": "argocd-bot",
            },
        },
        "links": [{"href": "https://argocd.example.com/applications/checkout", "text": "Argo CD"}],
    }
    for _ in range(2):  # the same change twice is one deploy
        response = await client.post(CHANGE, json=change)
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "success", "message": "Change event processed"}
    [event] = [
        EventEnvelope.from_bytes(m.data) for m in await messages_on(js, f"events.{tenant.tenant_id}.deploy.*")
    ]
    assert event.type == "deploy.recorded"
    assert (event.data["service_name"], event.data["version"], event.data["environment"]) == (
        "checkout",
        "v2.15.0",
        "production",
    )
    assert event.data["commit"].startswith("9fceb02") and event.data["author"] == "argocd-bot"
    assert event.data["deployed_at"].startswith("2026-11-25T10:30:00")

    # Only a summary: the source names the service, the summary the version.
    bare = {"routing_key": key, "payload": {"summary": "Deployed build 4411", "source": "billing api"}}
    assert (await client.post(CHANGE, json=bare)).status_code == 202
    events = await messages_on(js, f"events.{tenant.tenant_id}.deploy.*")
    latest = EventEnvelope.from_bytes(events[-1].data)
    assert (latest.data["service_name"], latest.data["version"], latest.data["environment"]) == (
        "billing-api",
        "Deployed build 4411",
        "unknown",
    )

    alerts_only = await alerts_key(client, tenant)
    assert (await client.post(CHANGE, json={**change, "routing_key": alerts_only})).status_code == 403
    malformed = await client.post(CHANGE, json={"routing_key": key, "payload": {}})
    assert malformed.status_code == 400 and malformed.json()["status"] == "invalid event"
    [kept] = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()["items"]
    assert kept["endpoint"] == "pagerduty_change"
