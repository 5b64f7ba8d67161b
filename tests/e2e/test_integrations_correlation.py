"""Correlation rules end to end: alerts of different groups and sources (Alertmanager, a JSON source)
sharing a rule's labels within its window join one incident, with the rule and the reason on its
timeline; outside the window, with other values or with the rule off they open their own; the
preview answers what the last day's alerts would have made; bad rules are a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_auth_users import bearer
from tests.e2e.test_integrations_alertmanager import (
    alerts_key,
    am_alert,
    eventually,
    incidents_of,
    notification,
    processed,
    send,
)

pytestmark = pytest.mark.e2e

RULES = "/api/v1/integrations/correlation-rules"
RULE = {"name": "checkout by cluster", "labels": ["service", "cluster"], "window_minutes": 10}


def group(name: str, starts: datetime, service: str = "checkout", cluster: str = "eu-1") -> dict[str, Any]:
    """A notification of the group of alert `name`, whose one alert has these labels."""
    alert = am_alert(f"fp-{name}", starts=starts, instance=f"{name}-0")
    alert["labels"] = {**alert["labels"], "alertname": name, "service": service, "cluster": cluster}
    return notification(alert, group_key=f'{{}}:{{alertname="{name}"}}')


async def test_alerts_sharing_the_labels_within_the_window_join_one_incident(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    auth, now = tenant.auth, datetime.now(UTC)
    key = await alerts_key(client, tenant)

    # Bad rules name the field.
    for bad, field in (
        ({"labels": ["service", "service"]}, "labels"),
        ({"labels": []}, "labels"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"sources": ["nagios"]}, "sources"),
    ):
        refused = await client.post(RULES, json=RULE | bad, headers=auth)
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["error"]["details"][0]["loc"], refused.text

    # Before any rule: two groups of billing/eu-2 open two incidents; the preview shows they would
    # have been one.
    for name in ("BillingErrors", "BillingLatency"):
        body = group(name, now - timedelta(minutes=3), service="billing", cluster="eu-2")
        await processed(client, tenant, await send(client, key, body))
    preview = await client.post(f"{RULES}/preview", json=RULE, headers=auth)
    assert preview.status_code == 200, preview.text
    [cluster] = preview.json()["clusters"]
    assert cluster["labels"] == {"service": "billing", "cluster": "eu-2"} and cluster["groups"] == 2
    assert {a["alertname"] for a in cluster["alerts"]} == {"BillingErrors", "BillingLatency"}
    assert len(cluster["incident_ids"]) == 2
    assert (preview.json()["incidents_before"], preview.json()["incidents_after"]) == (2, 1)
    narrower = await client.post(f"{RULES}/preview", json=RULE | {"labels": ["cluster", "pod"]}, headers=auth)
    assert narrower.json()["clusters"] == []  # the alerts lack `pod`

    made = await client.post(RULES, json=RULE, headers=auth)
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["enabled"] is True and rule["sources"] == [] and rule["created_by"] == tenant.user_id
    listed = (await client.get(RULES, headers=auth)).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]

    # A first group opens an incident; a second group and a JSON source's alert join it.
    first = await processed(client, tenant, await send(client, key, group("HighErrorRate", now)))
    incident_id = first["outcome"]["opened_incident_id"]
    assert incident_id
    second = await processed(
        client, tenant, await send(client, key, group("HighLatency", now + timedelta(minutes=4)))
    )
    assert second["outcome"]["opened_incident_id"] is None
    assert second["outcome"]["incident_id"] == incident_id
    assert second["outcome"]["correlated"]["rule_id"] == rule["id"]

    mapping = {"title": "title", "service": "service", "labels": "{cluster: cluster}"}
    source = await client.post(
        "/api/v1/integrations/json-sources", json={"name": "synthetics", "mapping": mapping}, headers=auth
    )
    assert source.status_code == 201, source.text
    sent = await client.post(
        f"/api/v1/integrations/json/{source.json()['id']}",
        json={"title": "Checkout probe failing", "service": "checkout", "cluster": "eu-1"},
        headers=bearer(key),
    )
    assert sent.status_code == 202, sent.text
    probe = await processed(client, tenant, sent.json()["delivery_id"])
    assert probe["outcome"]["incident_id"] == incident_id and probe["outcome"]["correlated"]

    # Outside the window, or another cluster: incidents of their own.
    late = await processed(
        client, tenant, await send(client, key, group("DiskFull", now - timedelta(minutes=30)))
    )
    other = await processed(client, tenant, await send(client, key, group("PodCrash", now, cluster="us-1")))
    assert late["outcome"]["opened_incident_id"] and late["outcome"]["correlated"] is None
    assert other["outcome"]["opened_incident_id"] and other["outcome"]["correlated"] is None

    # Turned off: a matching group opens its own again.
    off = await client.patch(f"{RULES}/{rule['id']}", json={"enabled": False}, headers=auth)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False and off.json()["labels"] == RULE["labels"]
    unmatched = await processed(client, tenant, await send(client, key, group("QueueDepth", now)))
    assert unmatched["outcome"]["opened_incident_id"] and unmatched["outcome"]["correlated"] is None

    incidents = await incidents_of(client, tenant)
    assert len(incidents) == 2 + 1 + 3  # billing twice, the correlated one, late, other, unmatched

    # The rule and the reason are on the incident's timeline, before each joining alert.
    async def correlated() -> list[dict[str, Any]]:
        timeline = (await client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=auth)).json()
        entries = [e for e in timeline["items"] if e["kind"] == "alert.correlated"]
        return entries if len(entries) == 2 else []

    entries = await eventually(correlated)
    assert len(entries) == 2, entries
    by_source = {e["data"]["source"]: e["data"] for e in entries}
    assert set(by_source) == {"alertmanager", "json"}
    latency = by_source["alertmanager"]
    assert latency["rule_id"] == rule["id"] and latency["rule_name"] == RULE["name"]
    assert latency["labels"] == {"service": "checkout", "cluster": "eu-1"}
    assert latency["alertname"] == "HighLatency" and latency["matched_alertname"] == "HighErrorRate"
    assert "checkout by cluster" in latency["reason"] and "cluster=eu-1" in latency["reason"]

    # Deleted: gone from the list, and a 404 afterwards.
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"{RULES}/{rule['id']}", headers=auth)).status_code == 404
    assert (await client.get(RULES, headers=auth)).json()["items"] == []
