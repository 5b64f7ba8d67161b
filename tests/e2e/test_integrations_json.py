"""Generic JSON sources end to end: an admin writes a JMESPath mapping, previews it against a pasted
sample, saves it; a sender's bodies open, attach to and resolve incidents; a mapping that does not
compile is a 422 naming the expression; a body the mapping cannot read is a 422 kept in the
rejected deliveries with the reason."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, register_tenant
from tests.e2e.test_auth_users import bearer
from tests.e2e.test_integrations_alertmanager import (
    alerts_key,
    incident_in_state,
    incidents_of,
    processed,
)

pytestmark = pytest.mark.e2e

SOURCES = "/api/v1/integrations/json-sources"
# A monitoring tool's own format (here: an Uptime-Kuma-like body).
MAPPING = {
    "title": "join(' ', [monitor.name, 'is', heartbeat.status_text])",
    "severity": "monitor.tags[?name=='severity'].value | [0]",
    "dedup_key": "monitor.id",
    "status": "heartbeat.status_text",
    "service": "monitor.tags[?name=='service'].value | [0]",
    "labels": "{url: monitor.url, region: monitor.region}",
}


def sample(status: str = "down") -> dict[str, Any]:
    return {
        "heartbeat": {"status_text": status, "msg": "timeout after 48 s", "time": "2026-11-25 09:00:00"},
        "monitor": {
            "id": 17,
            "name": "checkout-api",
            "url": "https://checkout.example.com/health",
            "region": "eu-west-1",
            "tags": [{"name": "severity", "value": "P1"}, {"name": "service", "value": "checkout"}],
        },
    }


# The tool says "down"/"up": the mapping turns those into firing/resolved.
MAPPING["status"] = "heartbeat.status_text == 'up' && 'resolved' || 'firing'"


async def create_source(client: httpx.AsyncClient, tenant: Tenant, mapping: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SOURCES, json={"name": "uptime", "mapping": mapping}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def send(client: httpx.AsyncClient, key: str, source_id: str, body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/integrations/json/{source_id}", json=body, headers=bearer(key))


async def test_preview_save_send_attach_and_resolve(client: httpx.AsyncClient, tenant: Tenant) -> None:
    preview = await client.post(
        f"{SOURCES}/preview", json={"mapping": MAPPING, "sample": sample()}, headers=tenant.auth
    )
    assert preview.status_code == 200, preview.text
    assert preview.json() == {
        "alert": {
            "title": "checkout-api is down",
            "severity": "critical",
            "dedup_key": "17",
            "status": "firing",
            "service": "checkout",
            "labels": {"url": "https://checkout.example.com/health", "region": "eu-west-1"},
        },
        "problem": None,
    }
    source = await create_source(client, tenant, MAPPING)
    assert source["mapping"] == MAPPING and source["name"] == "uptime"
    assert (await client.get(f"{SOURCES}/{source['id']}", headers=tenant.auth)).json() == source

    key = await alerts_key(client, tenant)
    sent = await send(client, key, source["id"], sample())
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] == "accepted" and sent.json()["alert"]["dedup_key"] == "17"
    opened = await processed(client, tenant, sent.json()["delivery_id"])
    [incident] = await incidents_of(client, tenant)
    assert opened["source"] == "json" and opened["outcome"]["opened_incident_id"] == incident["id"]
    assert incident["title"] == "checkout-api is down" and incident["severity"] == "critical"
    assert incident["service_name"] == "checkout"
    assert "timeout after 48 s" in incident["description"]

    # The tool repeats itself while the monitor is down: nothing new.
    again = await send(client, key, source["id"], sample())
    assert (await processed(client, tenant, again.json()["delivery_id"]))["outcome"]["duplicates"] == 1
    assert len(await incidents_of(client, tenant)) == 1

    up = await send(client, key, source["id"], sample("up"))
    assert up.json()["alert"]["status"] == "resolved"
    resolving = await processed(client, tenant, up.json()["delivery_id"])
    assert resolving["outcome"]["resolving"] == [incident["id"]]
    await incident_in_state(client, tenant, incident["id"], "resolved")


@pytest.mark.parametrize(
    ("field", "expression"),
    [("title", "monitor.["), ("severity", "a..b"), ("labels", "a ||")],
)
async def test_a_mapping_that_does_not_compile_is_a_422_naming_the_expression(
    client: httpx.AsyncClient, tenant: Tenant, field: str, expression: str
) -> None:
    broken = {**MAPPING, field: expression}
    for response in (
        await client.post(SOURCES, json={"name": "x", "mapping": broken}, headers=tenant.auth),
        await client.post(f"{SOURCES}/preview", json={"mapping": broken, "sample": {}}, headers=tenant.auth),
    ):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert expression in error["message"] and error["message"].startswith(f"{field}:")
        assert error["details"][0]["loc"] == ["body", "mapping", field]
    # Nothing half-applied: no source was saved, and an update with it changes nothing.
    assert (await client.get(SOURCES, headers=tenant.auth)).json()["items"] == []
    source = await create_source(client, tenant, MAPPING)
    refused = await client.patch(
        f"{SOURCES}/{source['id']}", json={"name": "renamed", "mapping": broken}, headers=tenant.auth
    )
    assert refused.status_code == 422
    assert (await client.get(f"{SOURCES}/{source['id']}", headers=tenant.auth)).json() == source


async def test_a_body_the_mapping_cannot_read_is_kept_with_the_reason(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    source = await create_source(client, tenant, {**MAPPING, "status": "heartbeat.status_text"})
    key = await alerts_key(client, tenant)
    preview = await client.post(
        f"{SOURCES}/preview", json={"mapping": source["mapping"], "sample": {"other": 1}}, headers=tenant.auth
    )
    assert preview.json()["alert"] is None and "title" in preview.json()["problem"]

    for body, reason in (
        ({"unrelated": True}, "title: `join(' ', [monitor.name, 'is', heartbeat.status_text])`"),
        (sample("paused"), "neither firing nor resolved"),
    ):
        refused = await send(client, key, source["id"], body)
        assert refused.status_code == 422, refused.text
        assert reason in refused.json()["error"]["message"]
        [kept, *_] = (await client.get("/api/v1/integrations/rejections", headers=tenant.auth)).json()[
            "items"
        ]
        assert kept["endpoint"] == "json" and reason in kept["message"] and json.loads(kept["body"]) == body
    not_json = await client.post(
        f"/api/v1/integrations/json/{source['id']}",
        content=b"down!",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["error"]["message"]
    inbound = (await client.get("/api/v1/integrations/inbound", headers=tenant.auth)).json()
    assert inbound["items"] == [] and await incidents_of(client, tenant) == []


async def test_sources_belong_to_one_organisation_and_need_admins(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    source = await create_source(client, tenant, MAPPING)
    other = await register_tenant(client, "Other JSON org")
    theirs = await alerts_key(client, other)
    assert (await send(client, theirs, source["id"], sample())).status_code == 404
    assert (await client.get(f"{SOURCES}/{source['id']}", headers=other.auth)).status_code == 404
    renamed = await client.patch(f"{SOURCES}/{source['id']}", json={"name": "kuma"}, headers=tenant.auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "kuma"
    assert renamed.json()["mapping"] == MAPPING
    deleted = await client.delete(f"{SOURCES}/{source['id']}", headers=tenant.auth)
    assert deleted.status_code == 204
    mine = await alerts_key(client, tenant)
    assert (await send(client, mine, source["id"], sample())).status_code == 404
