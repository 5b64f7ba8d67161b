"""Hypotheses through the HTTP API: explained confidences, evidence lines rendered from the
structured evidence the worker published."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from nats.js import JetStreamContext

from ai_worker.evidence import render
from contracts.envelope import EventEnvelope
from contracts.events import EvidenceItem
from tests.conftest import Tenant
from tests.integration.test_ai_generations import messages_on

pytestmark = pytest.mark.e2e

REPORT = {
    "title": "Checkout timeouts on orders-api",
    "description": (
        "Requests to /checkout time out after 30 s. HikariPool-1 - Connection is not available, "
        "request timed out after 30000ms. The pool is at its maximum of 50 connections."
    ),
    "service_name": "orders-api",
    "severity": "critical",
}


async def ready_hypotheses(client: httpx.AsyncClient, tenant: Tenant, incident_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        body = (await client.get(f"/api/v1/incidents/{incident_id}/hypotheses", headers=tenant.auth)).json()
        if body["status"] == "ready" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_hypotheses_are_explained_and_cite_the_published_evidence(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    created = await client.post("/api/v1/incidents", json=REPORT, headers=tenant.auth)
    assert created.status_code == 201, created.text
    incident = created.json()
    body = await ready_hypotheses(client, tenant, incident["id"])
    assert body["status"] == "ready"
    items = body["items"]
    assert items[0]["claim"] == "Connection-pool or thread exhaustion in orders-api"
    assert sum(h["confidence"] for h in items) <= 1
    assert all(h["engine"] == "rules" for h in items)

    collected = [
        EventEnvelope.from_bytes(m.data)
        for m in await messages_on(js, f"events.{tenant.tenant_id}.evidence.collected")
    ]
    [evidence] = [e for e in collected if e.aggregate_id == incident["id"]]
    rendered = {render(EvidenceItem.model_validate(i)) for i in evidence.data["items"]}
    for h in items:
        assert h["evidence"][0].startswith(f"Confidence {h['confidence']:.2f}")
        assert set(h["evidence"][1:]) <= rendered
    # The report's own error text, then the catalogue's words.
    assert "the report says 'HikariPool', 'pool'" in items[0]["evidence"][0]
    assert f"“Requests to /checkout time out after 30 s.” [incident {incident['key']}]" in rendered
