"""Postmortems and follow-ups through the HTTP API on the test platform: a resolved incident's draft
cites only events that exist on the stream (at their sequences), edits against a version, publishing
on the log, the markdown export, follow-ups across incidents, tenancy and roles."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from runtime.replay import StoredEvent, read_events, subject_filters
from tests.conftest import INCIDENT, Tenant, register_tenant
from tests.e2e.test_ai_feedback import until_generation
from tests.e2e.test_auth_users import member

pytestmark = pytest.mark.e2e
CITATION = re.compile(r"\[#(\d+)\]\(#event-([0-9a-f-]{36})\)")


async def stream_events(js: JetStreamContext, tenant: Tenant) -> dict[str, StoredEvent]:
    return {
        str(s.event.id): s
        async for s in read_events(js, subject_filters(tenant.tenant_id))
        if isinstance(s, StoredEvent)
    }


async def resolved_incident(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    """Open, acknowledge, note, record feedback on hypotheses, resolve with a root cause."""
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    url = f"/api/v1/incidents/{incident['id']}"
    await until_generation(client, tenant, incident["id"], 1)
    moved = await client.post(
        f"{url}/transitions", json={"to": "acknowledged", "note": "on it"}, headers=tenant.auth
    )
    assert moved.status_code == 200, moved.text
    await client.post(f"{url}/notes", json={"body": "rolled back v2.4.0"}, headers=tenant.auth)
    for rank, verdict in ((1, "confirmed"), (2, "rejected")):
        given = await client.post(
            f"{url}/hypotheses/{rank}/feedback",
            json={"verdict": verdict, "comment": f"{verdict} by the rollback"},
            headers=tenant.auth,
        )
        assert given.status_code == 201, given.text
    resolved = await client.post(
        f"{url}/transitions",
        json={"to": "resolved", "note": "fixed", "root_cause": "A hot loop in v2.4.0's retry path"},
        headers=tenant.auth,
    )
    assert resolved.status_code == 200, resolved.text
    return dict(resolved.json())


async def test_a_resolved_incidents_postmortem_end_to_end(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    incident = await resolved_incident(client, tenant)
    url = f"/api/v1/incidents/{incident['id']}"
    assert (await client.get(f"{url}/postmortem", headers=tenant.auth)).status_code == 404

    follow_up = await client.post(
        f"{url}/follow-ups",
        json={"title": "Alert on retry storms", "owner": "payments team", "due_date": "2026-12-24"},
        headers=tenant.auth,
    )
    assert follow_up.status_code == 201, follow_up.text
    assert follow_up.json()["done"] is False and follow_up.json()["incident_key"] == incident["key"]

    drafted = await client.post(f"{url}/postmortem", headers=tenant.auth)
    assert drafted.status_code == 201, drafted.text
    draft = drafted.json()
    assert draft["version"] == 1 and draft["status"] == "draft" and draft["engine"] == "template"
    assert draft["fallback_reason"] is None
    markdown = draft["markdown"]
    for heading in (
        "## Summary",
        "## Impact",
        "## Timeline",
        "## Detection and response",
        "## Root cause",
        "### Hypotheses rejected",
        "## What helped and what did not",
        "## Follow-up actions",
    ):
        assert heading in markdown
    assert "A hot loop in v2.4.0's retry path" in markdown
    assert "- [ ] Alert on retry storms (owner payments team, due 2026-12-24)" in markdown
    assert "Time to acknowledge:" in markdown and "Time to resolve:" in markdown

    # Every citation names an event of this tenant's stream, at its sequence; every timeline line cites.
    stream = await stream_events(js, tenant)
    cited = CITATION.findall(markdown)
    assert cited and {(c["seq"], c["event_id"]) for c in draft["citations"]} == {
        (int(seq), event_id) for seq, event_id in cited
    }
    for seq, event_id in cited:
        assert event_id in stream, event_id
        assert stream[event_id].seq == int(seq)
        assert (
            stream[event_id].event.aggregate_id == incident["id"]
            or stream[event_id].event.data.get("incident_id") == incident["id"]
        )
    timeline = markdown.split("## Timeline")[1].split("## Detection")[0]
    lines = [line for line in timeline.splitlines() if line.startswith("- ")]
    assert len(lines) >= 6 and all(CITATION.search(line) for line in lines)
    kinds = {stream[e].event.type for _s, e in cited}
    assert {"incident.created", "incident.state_changed", "hypothesis.feedback_recorded"} <= kinds

    assert (await client.get(f"{url}/postmortem", headers=tenant.auth)).json() == draft

    edited_text = markdown + "\nReviewed with the team.\n"
    edited = await client.put(
        f"{url}/postmortem", json={"version": 1, "markdown": edited_text}, headers=tenant.auth
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and edited.json()["markdown"] == edited_text
    stale = await client.put(
        f"{url}/postmortem", json={"version": 1, "markdown": "# mine"}, headers=tenant.auth
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["details"] == {"version": 2, "expected_version": 1}

    published = await client.post(f"{url}/postmortem/publish", json={"version": 2}, headers=tenant.auth)
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["status"] == "published" and body["published_version"] == 3 and body["published_at"]
    events = [s for s in (await stream_events(js, tenant)).values() if s.event.type == "postmortem.published"]
    assert len(events) == 1 and events[0].event.data["incident_id"] == incident["id"]
    assert events[0].event.data["postmortem"]["markdown"] == edited_text

    exported = await client.get(f"{url}/postmortem.md", headers=tenant.auth)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/markdown")
    assert exported.text == edited_text
    assert f"{incident['key']}-postmortem-v3.md" in exported.headers["content-disposition"]


async def test_follow_ups_across_incidents(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    second = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    made = []
    for incident, title in ((first, "Add a canary stage"), (second, "Raise the pool size")):
        answer = await client.post(
            f"/api/v1/incidents/{incident['id']}/follow-ups", json={"title": title}, headers=tenant.auth
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    listed = (await client.get("/api/v1/follow-ups", params={"state": "open"}, headers=tenant.auth)).json()
    assert [f["title"] for f in listed["items"]] == ["Add a canary stage", "Raise the pool size"]
    assert listed["items"][1]["incident_key"] == second["key"]

    done = await client.patch(
        f"/api/v1/incidents/{second['id']}/follow-ups/{made[1]['id']}",
        json={"done": True, "owner": "db team"},
        headers=tenant.auth,
    )
    assert done.status_code == 200, done.text
    assert done.json()["done"] is True and done.json()["done_at"] and done.json()["owner"] == "db team"
    still_open = (await client.get("/api/v1/follow-ups?state=open", headers=tenant.auth)).json()["items"]
    finished = (await client.get("/api/v1/follow-ups?state=done", headers=tenant.auth)).json()["items"]
    assert [f["id"] for f in still_open] == [made[0]["id"]]
    assert [f["id"] for f in finished] == [made[1]["id"]]
    of_second = (await client.get(f"/api/v1/incidents/{second['id']}/follow-ups", headers=tenant.auth)).json()
    assert [f["done"] for f in of_second["items"]] == [True]

    paged = (await client.get("/api/v1/follow-ups?limit=1", headers=tenant.auth)).json()
    assert len(paged["items"]) == 1 and paged["next_cursor"]
    rest = (
        await client.get(f"/api/v1/follow-ups?limit=1&cursor={paged['next_cursor']}", headers=tenant.auth)
    ).json()
    assert [f["id"] for f in rest["items"]] == [made[1]["id"]]

    # With an Idempotency-Key a retry answers the follow-up the first request made, once.
    key = {"Idempotency-Key": uuid.uuid4().hex, **tenant.auth}
    once = [
        await client.post(f"/api/v1/incidents/{first['id']}/follow-ups", json={"title": "Once"}, headers=key)
        for _ in range(2)
    ]
    assert [r.status_code for r in once] == [201, 201] and once[0].json()["id"] == once[1].json()["id"]
    of_first = (await client.get(f"/api/v1/incidents/{first['id']}/follow-ups", headers=tenant.auth)).json()
    assert [f["title"] for f in of_first["items"]].count("Once") == 1

    # Bad input is a 422; a follow-up of another incident, or an unknown one, is a 404.
    for bad in ({"title": ""}, {"title": "x", "due_date": "2026-02-30"}, {"title": "x", "due_date": 5}):
        refused = await client.post(
            f"/api/v1/incidents/{first['id']}/follow-ups", json=bad, headers=tenant.auth
        )
        assert refused.status_code == 422, (bad, refused.text)
    wrong = await client.patch(
        f"/api/v1/incidents/{first['id']}/follow-ups/{made[1]['id']}",
        json={"done": True},
        headers=tenant.auth,
    )
    assert wrong.status_code == 404
    assert (await client.get("/api/v1/follow-ups?state=later", headers=tenant.auth)).status_code == 422


async def test_another_tenant_and_a_viewer(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    url = f"/api/v1/incidents/{incident['id']}"
    assert (await client.post(f"{url}/postmortem", headers=tenant.auth)).status_code == 201
    follow_up = (await client.post(f"{url}/follow-ups", json={"title": "t"}, headers=tenant.auth)).json()

    other = await register_tenant(client, "Nosy")
    for method, path, body in (
        ("POST", f"{url}/postmortem", None),
        ("GET", f"{url}/postmortem", None),
        ("GET", f"{url}/postmortem.md", None),
        ("PUT", f"{url}/postmortem", {"version": 1, "markdown": "# mine"}),
        ("POST", f"{url}/postmortem/publish", None),
        ("GET", f"{url}/follow-ups", None),
        ("POST", f"{url}/follow-ups", {"title": "mine"}),
        ("PATCH", f"{url}/follow-ups/{follow_up['id']}", {"done": True}),
    ):
        answer = await client.request(method, path, json=body, headers=other.auth)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await client.get("/api/v1/follow-ups", headers=other.auth)).json()["items"] == []
    assert (
        await client.get(f"/api/v1/incidents/{uuid.uuid4()}/postmortem", headers=tenant.auth)
    ).status_code == 404

    auth = (await member(client, tenant, "viewer")).auth
    assert (await client.get(f"{url}/postmortem", headers=auth)).status_code == 200
    assert (await client.get("/api/v1/follow-ups", headers=auth)).status_code == 200
    for method, path, body in (
        ("POST", f"{url}/postmortem", None),
        ("PUT", f"{url}/postmortem", {"version": 1, "markdown": "# mine"}),
        ("POST", f"{url}/postmortem/publish", None),
        ("POST", f"{url}/follow-ups", {"title": "mine"}),
        ("PATCH", f"{url}/follow-ups/{follow_up['id']}", {"done": True}),
    ):
        answer = await client.request(method, path, json=body, headers=auth)
        assert answer.status_code == 403, (method, path, answer.text)
