"""Hypotheses through the API: regenerate, versions, feedback, root causes and accuracy metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, register_tenant

pytestmark = pytest.mark.e2e

POOL_INCIDENT = {
    "title": "Connection pool exhausted on orders-api",
    "description": "All 50 database connections in use; requests time out waiting for a connection.",
    "service_name": "orders-api",
    "severity": "critical",
}


async def hypotheses(
    client: httpx.AsyncClient, tenant: Tenant, incident_id: str, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/v1/incidents/{incident_id}/hypotheses", params=params, headers=tenant.auth)


async def until_generation(
    client: httpx.AsyncClient, tenant: Tenant, incident_id: str, n: int
) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body = (await hypotheses(client, tenant, incident_id)).json()
        if (body.get("generation") or 0) >= n or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_regenerate_makes_a_new_version_and_old_ones_stay_readable(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    incident = (await client.post("/api/v1/incidents", json=POOL_INCIDENT, headers=tenant.auth)).json()
    first = await until_generation(client, tenant, incident["id"], 1)
    assert first["generation"] == 1 and first["trigger"] == "incident.created"
    assert first["evidence"] and all(e["kind"] and e["summary"] for e in first["evidence"])
    requested = await client.post(
        f"/api/v1/incidents/{incident['id']}/hypotheses/regenerate", headers=tenant.auth
    )
    assert requested.status_code == 202, requested.text
    second = await until_generation(client, tenant, incident["id"], 2)
    assert second["generation"] == 2 and second["trigger"] == "regenerate"
    old = (await hypotheses(client, tenant, incident["id"], version=1)).json()
    assert old["generation"] == 1 and old["items"] == first["items"]
    missing = await hypotheses(client, tenant, incident["id"], version=9)
    assert missing.status_code == 404
    other = await register_tenant(client, "Nosy")
    refused = await client.post(
        f"/api/v1/incidents/{incident['id']}/hypotheses/regenerate", headers=other.auth
    )
    assert refused.status_code == 404


async def test_feedback_root_cause_and_accuracy(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=POOL_INCIDENT, headers=tenant.auth)).json()
    ready = await until_generation(client, tenant, incident["id"], 1)
    top = ready["items"][0]
    url = f"/api/v1/incidents/{incident['id']}/hypotheses"
    confirmed = await client.post(
        f"{url}/1/feedback", json={"verdict": "confirmed", "comment": "yes"}, headers=tenant.auth
    )
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json() == {
        "incident_id": incident["id"],
        "generation": 1,
        "rank": 1,
        "verdict": "confirmed",
    }
    rejected = await client.post(f"{url}/2/feedback", json={"verdict": "rejected"}, headers=tenant.auth)
    assert rejected.status_code == 201
    assert (
        await client.post(f"{url}/7/feedback", json={"verdict": "rejected"}, headers=tenant.auth)
    ).status_code == 404
    assert (
        await client.post(f"{url}/1/feedback", json={"verdict": "maybe"}, headers=tenant.auth)
    ).status_code == 422

    counted = (await hypotheses(client, tenant, incident["id"])).json()["items"]
    assert counted[0]["feedback"] == {"confirmed": 1, "rejected": 0}
    assert counted[1]["feedback"] == {"confirmed": 0, "rejected": 1}

    early = await client.post(
        f"/api/v1/incidents/{incident['id']}/transitions",
        json={"to": "acknowledged", "root_cause": "x"},
        headers=tenant.auth,
    )
    assert early.status_code == 422  # a root cause belongs to the resolution
    resolved = await client.post(
        f"/api/v1/incidents/{incident['id']}/transitions",
        json={"to": "resolved", "root_cause": "connection-pool exhaustion after the 2.3 release"},
        headers=tenant.auth,
    )
    assert resolved.status_code == 200
    assert resolved.json()["root_cause"] == "connection-pool exhaustion after the 2.3 release"

    metrics = (await client.get("/api/v1/metrics/hypotheses", headers=tenant.auth)).json()
    rules = next(e for e in metrics["engines"] if e["engine"] == "rules")
    assert rules["incidents"] == 1 and rules["top1"] == 1.0 and rules["top3"] == 1.0
    assert 0 <= rules["brier"] < 1 and rules["median_seconds_to_correct_top1"] >= 0
    assert top["claim"]  # the confirmed claim is the one ranked first
    # Reliability: the three judged hypotheses sit in their confidence buckets, the first was right.
    buckets = rules["calibration"]
    assert [b["low"] for b in buckets] == [i / 10 for i in range(10)]
    assert sum(b["hypotheses"] for b in buckets) == len(ready["items"])
    first = next(
        b
        for b in buckets
        if b["low"] <= top["confidence"] < b["high"] or b["high"] == 1.0 == top["confidence"]
    )
    assert first["hypotheses"] >= 1 and first["hit_rate"] > 0
    assert (rules["by_rank"][0]["rank"], rules["by_rank"][0]["hit_rate"]) == (1, 1.0)

    # The next, similar incident cites this one's recorded root cause.
    follow_up = (await client.post("/api/v1/incidents", json=POOL_INCIDENT, headers=tenant.auth)).json()
    cited = await until_generation(client, tenant, follow_up["id"], 1)
    assert any(
        "connection-pool exhaustion after the 2.3 release" in e for h in cited["items"] for e in h["evidence"]
    )


async def test_any_member_reads_the_evidence_catalogue_it_is_ranked_by(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get("/api/v1/hypothesis-signatures", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["extensible"] is False  # the test platform sets no AI_SIGNATURES_DIR
    entries = body["entries"]
    assert len(entries) >= 50 and {e["origin"] for e in entries} == {"shipped"}
    oom = next(e for e in entries if e["kind"] == "alert" and "KubePodCrashLooping" in e["match"])
    assert oom["cause"] in ("memory_leak", "bad_deploy") and oom["source"].startswith("https://")
    assert any(e["kind"] == "pattern" and "no such host" in e["match"] for e in entries)
    assert (await client.get("/api/v1/hypothesis-signatures")).status_code == 401
