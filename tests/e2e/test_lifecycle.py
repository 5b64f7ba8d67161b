"""The incident lifecycle, edits, notes, the timeline, list filters and metrics, through HTTP."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import INCIDENT, Tenant, register_tenant

pytestmark = pytest.mark.e2e

STATES = ["detected", "acknowledged", "investigating", "resolved"]
ALLOWED = {
    ("detected", "acknowledged"),
    ("detected", "investigating"),
    ("detected", "resolved"),
    ("acknowledged", "investigating"),
    ("acknowledged", "resolved"),
    ("investigating", "resolved"),
    ("resolved", "investigating"),
}
# A way to reach each state from `detected`.
PATH_TO = {
    "detected": [],
    "acknowledged": ["acknowledged"],
    "investigating": ["investigating"],
    "resolved": ["resolved"],
}


async def create(client: httpx.AsyncClient, tenant: Tenant, **fields: str) -> dict:
    response = await client.post("/api/v1/incidents", json=INCIDENT | fields, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return response.json()


async def move(
    client: httpx.AsyncClient, tenant: Tenant, incident_id: str, to: str, note: str = ""
) -> httpx.Response:
    return await client.post(
        f"/api/v1/incidents/{incident_id}/transitions", json={"to": to, "note": note}, headers=tenant.auth
    )


async def test_every_move_is_allowed_or_refused_as_specified(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for source, target in itertools.product(STATES, STATES):
        incident = await create(client, tenant, title=f"{source} to {target}")
        for step in PATH_TO[source]:
            assert (await move(client, tenant, incident["id"], step)).status_code == 200
        response = await move(client, tenant, incident["id"], target)
        if (source, target) in ALLOWED:
            assert response.status_code == 200, (source, target, response.text)
            assert response.json()["state"] == target
        else:
            assert response.status_code == 409, (source, target, response.text)
            allowed = sorted(t for s, t in ALLOWED if s == source)
            assert sorted(response.json()["error"]["details"]["allowed"]) == allowed
            assert target in response.json()["error"]["message"]


async def wait_member(
    client: httpx.AsyncClient, tenant: Tenant, incident_id: str, user_id: str
) -> httpx.Response:
    """The incidents service learns of a new user from auth's events, a moment after registration."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.patch(
            f"/api/v1/incidents/{incident_id}", json={"assignee_id": user_id}, headers=tenant.auth
        )
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_edit_fields_assign_and_notes_land_on_the_timeline(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    incident = await create(client, tenant)
    url = f"/api/v1/incidents/{incident['id']}"
    edited = await client.patch(
        url, json={"title": "Checkout latency", "severity": "critical"}, headers=tenant.auth
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["title"] == "Checkout latency" and body["severity"] == "critical" and body["version"] == 2
    assert body["description"] == INCIDENT["description"]  # untouched fields stay

    assigned = await wait_member(client, tenant, incident["id"], tenant.user_id)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee_id"] == tenant.user_id

    unchanged = await client.patch(url, json={"severity": "critical"}, headers=tenant.auth)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 3  # nothing new, no event

    stale = await client.patch(url, json={"title": "x", "expected_version": 1}, headers=tenant.auth)
    assert stale.status_code == 409 and stale.json()["error"]["details"]["version"] == 3

    for bad in ({"title": None}, {"severity": "apocalyptic"}, {"title": "x" * 201}, {"tenant_id": "t_x"}):
        response = await client.patch(url, json=bad, headers=tenant.auth)
        assert response.status_code == 422, bad

    note = await client.post(f"{url}/notes", json={"body": "Rolled back 1.4.2"}, headers=tenant.auth)
    assert note.status_code == 201
    assert (await client.post(f"{url}/notes", json={"body": "  "}, headers=tenant.auth)).status_code == 422

    unassigned = await client.patch(url, json={"assignee_id": None}, headers=tenant.auth)
    assert unassigned.status_code == 200 and unassigned.json()["assignee_id"] is None

    timeline = (await client.get(f"{url}/timeline", headers=tenant.auth)).json()["items"]
    kinds = [e["kind"] for e in timeline if e["kind"] != "hypothesis.generated"]
    assert kinds == [
        "incident.created",
        "incident.updated",
        "incident.updated",
        "incident.note_added",
        "incident.updated",
    ]
    first_edit = next(e for e in timeline if e["kind"] == "incident.updated")
    assert first_edit["data"]["changes"] == {
        "title": {"old": INCIDENT["title"], "new": "Checkout latency"},
        "severity": {"old": "high", "new": "critical"},
    }
    assert first_edit["actor"] == tenant.user_id
    noted = next(e for e in timeline if e["kind"] == "incident.note_added")
    assert noted["data"]["body"] == "Rolled back 1.4.2"


async def test_assignee_must_belong_to_the_tenant(client: httpx.AsyncClient, tenant: Tenant) -> None:
    other = await register_tenant(client, "Elsewhere")
    incident = await create(client, tenant)
    # Wait until our own user is known, so the refusal below is about the tenant, not timing.
    assert (await wait_member(client, tenant, incident["id"], tenant.user_id)).status_code == 200
    foreign = await client.patch(
        f"/api/v1/incidents/{incident['id']}", json={"assignee_id": other.user_id}, headers=tenant.auth
    )
    assert foreign.status_code == 409, foreign.text
    assert foreign.json()["error"]["details"][0]["loc"] == ["body", "assignee_id"]


async def test_list_filters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    a = await create(client, tenant, title="Disk full on db-1", service_name="postgres", severity="critical")
    b = await create(client, tenant, title="Slow checkout", description="p99 latency 2s", severity="medium")
    c = await create(client, tenant, title="Cert expiring", service_name="edge", severity="low")
    await move(client, tenant, b["id"], "acknowledged")
    await move(client, tenant, c["id"], "resolved")
    assert (await wait_member(client, tenant, a["id"], tenant.user_id)).status_code == 200

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/v1/incidents", params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(order="oldest") == [a["id"], b["id"], c["id"]]
    assert await ids(state=["detected", "acknowledged"]) == [b["id"], a["id"]]
    assert await ids(state="acknowledged,resolved") == [c["id"], b["id"]]
    assert await ids(severity="critical") == [a["id"]]
    assert await ids(service="edge") == [c["id"]]
    assert await ids(assignee="me") == [a["id"]]
    assert await ids(assignee="none") == [c["id"], b["id"]]
    assert await ids(q="CHECKOUT") == [b["id"]]
    assert await ids(q="latency 2") == [b["id"]]
    assert await ids(q="100%_") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(created_from=future) == []
    assert await ids(created_to=future, created_from=a["created_at"]) == [c["id"], b["id"], a["id"]]
    bad = await client.get("/api/v1/incidents", params={"state": "sleeping"}, headers=tenant.auth)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["query", "state", 0]
    # Date-times are RFC 3339 and nothing else: not a number (once read as a Unix time), not a date
    # alone, not a time without an offset.
    for loose in ("0.5", "1733000000", "2026-12-01", "2026-12-01T10:30:00", "2026-12-01 10:30:00Z"):
        for name in ("created_from", "created_to"):
            refused = await client.get("/api/v1/incidents", params={name: loose}, headers=tenant.auth)
            assert refused.status_code == 422, (name, loose, refused.text)
            assert refused.json()["error"]["details"][0]["loc"] == ["query", name]


async def test_pages_are_stable_under_concurrent_inserts(client: httpx.AsyncClient, tenant: Tenant) -> None:
    original = [(await create(client, tenant, title=f"old {n}"))["id"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/incidents", params=params, headers=tenant.auth)).json()
        seen += [i["id"] for i in page["items"]]
        await create(client, tenant, title="inserted while paging")  # newer than every page so far
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(original))


async def test_incident_metrics(client: httpx.AsyncClient, tenant: Tenant) -> None:
    a = await create(client, tenant, severity="critical")
    b = await create(client, tenant, severity="low")
    await create(client, tenant, severity="low")
    await move(client, tenant, a["id"], "acknowledged")
    await move(client, tenant, b["id"], "investigating")  # skipping `acknowledged` still ends TTA
    # Resolved after both acknowledgements, so its time to resolve is longer than either's time to
    # acknowledge (b's, measured after a's resolution, once made the median the longer).
    await move(client, tenant, a["id"], "resolved")
    response = await client.get("/api/v1/metrics/incidents", headers=tenant.auth)
    assert response.status_code == 200, response.text
    metrics = response.json()
    assert metrics["total"] == 3
    assert metrics["by_state"] == {"detected": 1, "investigating": 1, "resolved": 1}
    assert metrics["by_severity"] == {"critical": 1, "low": 2}
    tta, ttr = metrics["time_to_acknowledge"], metrics["time_to_resolve"]
    assert tta["count"] == 2 and ttr["count"] == 1
    assert 0 < tta["p50_seconds"] <= tta["p90_seconds"] < 60
    assert ttr["mean_seconds"] >= tta["p50_seconds"] > 0

    past = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    empty = (
        await client.get(
            "/api/v1/metrics/incidents",
            params={
                "created_from": past,
                "created_to": (datetime.now(UTC) - timedelta(days=399)).isoformat(),
            },
            headers=tenant.auth,
        )
    ).json()
    assert empty["total"] == 0 and empty["time_to_resolve"]["p50_seconds"] is None
    reversed_window = await client.get(
        "/api/v1/metrics/incidents",
        params={"created_from": datetime.now(UTC).isoformat(), "created_to": past},
        headers=tenant.auth,
    )
    # A window that ends before it starts holds nothing, as a list filtered so does.
    assert reversed_window.status_code == 200, reversed_window.text
    assert reversed_window.json()["total"] == 0
    for params in (
        {"created_to": "0.5"},
        {"created_from": "2026-12-01"},
        {"created_to": "2026-12-01T10:30:00"},
    ):
        refused = await client.get("/api/v1/metrics/incidents", params=params, headers=tenant.auth)
        assert refused.status_code == 422, (params, refused.text)
    refused = await client.get(
        "/api/v1/metrics/hypotheses", params={"resolved_to": "0.5"}, headers=tenant.auth
    )
    assert refused.status_code == 422, refused.text
    # The earliest moment there is, whatever its offset: a window, not an overflow.
    earliest = await client.get(
        "/api/v1/metrics/incidents", params={"created_to": "0001-01-01T00:00:00+01:00"}, headers=tenant.auth
    )
    assert earliest.status_code == 200 and earliest.json()["total"] == 0, earliest.text
