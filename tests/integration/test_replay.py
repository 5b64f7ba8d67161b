"""Replay tooling on the real platform: rebuilds that verify and swap while writes go on, export and
import, and old event versions upcast on replay."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import upcasters
from contracts.envelope import EventEnvelope
from gateway import read_models as rm
from gateway.rebuild import rebuild
from runtime.replay import StoredEvent, import_events, read_events, subject_filters
from tests.conftest import INCIDENT, Tenant


async def workload(client: httpx.AsyncClient, tenant: Tenant, incidents: int, seed: int) -> list[str]:
    """Random incidents, moves, edits and notes; returns the incident ids."""
    rng = random.Random(seed)
    ids = []
    for n in range(incidents):
        body = INCIDENT | {
            "title": f"incident {n}",
            "severity": rng.choice(["critical", "high", "medium", "low"]),
        }
        ids.append((await client.post("/api/v1/incidents", json=body, headers=tenant.auth)).json()["id"])
    for incident_id in ids:
        url = f"/api/v1/incidents/{incident_id}"
        for to in rng.sample(["acknowledged", "investigating", "resolved"], k=rng.randint(0, 3)):
            await client.post(f"{url}/transitions", json={"to": to}, headers=tenant.auth)
        if rng.random() < 0.5:
            await client.patch(url, json={"title": f"renamed {incident_id[:6]}"}, headers=tenant.auth)
        if rng.random() < 0.5:
            await client.post(f"{url}/notes", json={"body": "looked at the dashboards"}, headers=tenant.auth)
    return ids


async def caught_up(engine: AsyncEngine, js: JetStreamContext, seconds: float = 20.0) -> None:
    """Until the live projector has applied everything in the stream."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        last = (await js.stream_info("EVENTS")).state.last_seq
        async with engine.connect() as conn:
            if await rm.last_seq(conn, "gateway_projector") >= last:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the projector did not catch up")


async def test_verify_finds_tampering_and_a_rebuild_repairs_it(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext
) -> None:
    ids = await workload(client, tenant, incidents=6, seed=1)
    await caught_up(engine, js)
    report = await rebuild(engine, js, verify=True)
    assert report.differences == [], report.differences
    assert report.events > 0 and not report.swapped

    victim = uuid.UUID(ids[0])
    async with engine.begin() as conn:
        original = (
            await conn.execute(text("SELECT title FROM gateway.incidents WHERE id = :id"), {"id": victim})
        ).scalar()
        await conn.execute(
            text("UPDATE gateway.incidents SET title = 'tampered' WHERE id = :id"), {"id": victim}
        )
        await conn.execute(
            text("DELETE FROM gateway.timeline WHERE incident_id = :id"), {"id": uuid.UUID(ids[1])}
        )
    tampered = await rebuild(engine, js, verify=True)
    differing = {d.table for d in tampered.differences}
    assert differing == {"incidents", "timeline"}, tampered.differences

    repaired = await rebuild(engine, js)
    assert repaired.swapped
    got = (await client.get(f"/api/v1/incidents/{ids[0]}", headers=tenant.auth)).json()
    assert got["title"] == original != "tampered"
    assert (await client.get(f"/api/v1/incidents/{ids[1]}/timeline", headers=tenant.auth)).json()["items"]
    assert (await rebuild(engine, js, verify=True)).differences == []


async def test_a_rebuild_while_writes_continue_loses_nothing(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext
) -> None:
    created: list[str] = []
    stop = asyncio.Event()

    async def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            response = await client.post(
                "/api/v1/incidents", json=INCIDENT | {"title": f"w{n}"}, headers=tenant.auth
            )
            assert response.status_code == 201
            created.append(response.json()["id"])
            n += 1

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.3)
    report = await rebuild(engine, js)
    await asyncio.sleep(0.3)
    stop.set()
    await writer
    assert report.swapped and len(created) > 3
    await caught_up(engine, js)
    listed = (await client.get("/api/v1/incidents", params={"limit": 200}, headers=tenant.auth)).json()[
        "items"
    ]
    assert {i["id"] for i in listed} == set(created)
    assert (await rebuild(engine, js, verify=True)).differences == []


async def test_an_old_event_version_is_upcast_on_replay(
    tenant: Tenant, engine: AsyncEngine, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Version 0 of `incident.note_added` (as if older code wrote it) called the body `text`.
    monkeypatch.setitem(
        upcasters.UPCASTERS,
        ("incident.note_added", 0),
        lambda data: {k: v for k, v in data.items() if k != "text"} | {"body": data["text"]},
    )
    incident_id = str(uuid.uuid4())
    old = EventEnvelope(
        type="incident.note_added",
        version=0,
        tenant_id=tenant.tenant_id,
        aggregate_id=incident_id,
        correlation_id="upcast-test",
        data={
            "incident_id": incident_id,
            "note_id": str(uuid.uuid4()),
            "text": "written by v0",
            "added_at": datetime.now(UTC).isoformat(),
        },
    )
    await js.publish(
        f"events.{tenant.tenant_id}.incident.note_added", old.to_bytes(), headers={"Nats-Msg-Id": str(old.id)}
    )
    report = await rebuild(engine, js)  # this process knows the upcaster; the timeline gets the note
    assert report.swapped
    async with engine.begin() as conn:
        entries = await rm.get_timeline(conn, uuid.UUID(incident_id))
        # Leave the read models as code without this upcaster explains the stream (it skips v0).
        await conn.execute(
            text("DELETE FROM gateway.timeline WHERE incident_id = :id"), {"id": uuid.UUID(incident_id)}
        )
    assert [(e.kind, e.data["body"]) for e in entries] == [("incident.note_added", "written by v0")]
    assert "text" not in entries[0].data


async def test_export_then_import_is_idempotent(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    await workload(client, tenant, incidents=3, seed=7)
    exported = [
        json.dumps(s.to_json())
        async for s in read_events(js, subject_filters(tenant.tenant_id))
        if isinstance(s, StoredEvent)
    ]
    assert len(exported) > 5
    report = await import_events(js, io.StringIO("\n".join(exported)))
    assert report.invalid == [] and report.published == 0 and report.already_present == len(exported)

    broken = io.StringIO("\n".join([*exported[:2], '{"event": {"type": "incident.created"}}']))
    refused = await import_events(js, broken)
    assert refused.invalid and refused.published == 0
