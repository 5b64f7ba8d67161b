"""Replay tooling on the real platform: rebuilds that verify and swap while writes go on, export and
import, and old event versions upcast on replay."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker.rerun import rerun
from ai_worker.settings import AiWorkerSettings
from contracts import upcasters
from contracts.envelope import EventEnvelope
from gateway.incidents import queries
from gateway.projection import tables
from gateway.projection.rebuild import RebuildError, rebuild
from gateway.projection.skip import skip
from runtime.bus import connect
from runtime.db import create_engine
from runtime.replay import StoredEvent, import_events, read_events, subject_filters
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
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
            if await tables.last_seq(conn, "gateway_projector") >= last:
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
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext, platform: Platform
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
    # In worker processes, as the CLI does it: the first pass spread over them, the catch-up here.
    report = await rebuild(engine, js, nats_url=platform.nats_url, workers=2)
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
    assert (await rebuild(engine, js, verify=True, nats_url=platform.nats_url, workers=2)).differences == []


async def test_a_rebuild_whose_worker_fails_says_so_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext
) -> None:
    await workload(client, tenant, incidents=2, seed=3)
    await caught_up(engine, js)
    before = await tenant_read_models(engine, tenant.tenant_id)
    with pytest.raises(RebuildError, match="worker failed"):
        await rebuild(engine, js, nats_url=f"nats://127.0.0.1:{free_port()}", workers=2)
    assert await tenant_read_models(engine, tenant.tenant_id) == before


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
    ack = await js.publish(
        f"events.{tenant.tenant_id}.incident.note_added", old.to_bytes(), headers={"Nats-Msg-Id": str(old.id)}
    )
    # The live gateway has no upcaster for it and stops there: moved past it as an operator would.
    await skip(engine, js, ack.seq, "test: v0 without its upcaster in the gateway", force=True)
    report = await rebuild(engine, js)  # this process knows the upcaster; the timeline gets the note
    assert report.swapped
    async with engine.begin() as conn:
        entries = await queries.get_timeline(conn, tenant.tenant_id, uuid.UUID(incident_id))
        # Leave the read models as the live projector left them (it was told to skip v0).
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


async def test_ai_rerun_judges_an_engine_on_recorded_history(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, platform: Platform
) -> None:
    pool = {
        "title": "Connection pool exhausted on orders-api",
        "description": "All 50 database connections in use; requests wait for a connection and time out.",
        "service_name": "orders-api",
        "severity": "critical",
    }
    incident = (await client.post("/api/v1/incidents", json=pool, headers=tenant.auth)).json()
    url = f"/api/v1/incidents/{incident['id']}"
    deadline = time.monotonic() + 10
    while (await client.get(f"{url}/hypotheses", headers=tenant.auth)).json()["status"] != "ready":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (
        await client.post(f"{url}/hypotheses/1/feedback", json={"verdict": "confirmed"}, headers=tenant.auth)
    ).status_code == 201
    await client.post(
        f"{url}/transitions", json={"to": "resolved", "root_cause": "pool too small"}, headers=tenant.auth
    )

    async def envelopes():  # type: ignore[no-untyped-def]
        async for stored in read_events(js, subject_filters(tenant.tenant_id)):
            if isinstance(stored, StoredEvent):
                yield stored.event

    replayed = await rerun(envelopes(), "rules", AiWorkerSettings())
    assert [g.incident_id for g in replayed.rerun] == [incident["id"]]
    assert [g.engine for g in replayed.rerun] == ["rerun:rules"]
    # Deterministic rules on the same history: the rerun agrees with what was generated live.
    live_first = next(g for g in replayed.live if g.incident_id == incident["id"])
    assert [h["claim"] for h in replayed.rerun[0].hypotheses] == [h["claim"] for h in live_first.hypotheses]

    assert platform.nats_url
    printed = subprocess.run(
        [sys.executable, "-m", "sre_copilot", "ai", "rerun", "--tenant", tenant.tenant_id],
        env={**os.environ, "NATS_URL": platform.nats_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    rows = {line.split("│")[1].strip(): line for line in printed.stdout.splitlines() if line.count("│") > 3}
    assert "100%" in rows["rerun:rules"] and "100%" in rows["rules"], printed.stdout


async def test_export_and_import_into_a_fresh_installation_gives_identical_read_models(
    client: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    js: JetStreamContext,
    tmp_path: Path,
) -> None:
    await workload(client, tenant, incidents=4, seed=11)
    await caught_up(engine, js)
    exported = [
        json.dumps(s.to_json())
        async for s in read_events(js, subject_filters(tenant.tenant_id))
        if isinstance(s, StoredEvent)
    ]
    fresh = Platform(
        state_dir=tmp_path / "fresh", port=free_port(), durable=False, extra_env={"LOG_LEVEL": "WARNING"}
    )
    try:
        await asyncio.to_thread(fresh.start_dependencies)
        await asyncio.to_thread(fresh.start_services)
        await asyncio.to_thread(fresh.wait_gateway)
        assert fresh.nats_url and fresh.database_url
        nc = await connect(fresh.nats_url, "tests-fresh")
        other_engine = create_engine(fresh.database_url, pool_size=2)
        try:
            other_js = nc.jetstream()
            report = await import_events(other_js, io.StringIO("\n".join(exported)))
            assert report.published == len(exported) and not report.invalid
            again = await import_events(other_js, io.StringIO("\n".join(exported)))
            assert again.published == 0 and again.already_present == len(exported)
            await caught_up(other_engine, other_js)
            await asyncio.sleep(1.0)  # let any (wrong) reaction to imported events show up
            assert await tenant_read_models(other_engine, tenant.tenant_id) == await tenant_read_models(
                engine, tenant.tenant_id
            )
        finally:
            await other_engine.dispose()
            await nc.close()
    finally:
        await asyncio.to_thread(fresh.stop)


async def tenant_read_models(engine: AsyncEngine, tenant_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row of a tenant, minus what is local to an installation (stream sequences)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            columns = [c for c in table.c if c.name != "seq"]
            rows = (await conn.execute(select(*columns).where(table.c.tenant_id == tenant_id))).all()
            found[table.name] = sorted(tuple(map(str, row)) for row in rows)
    return found


async def test_events_tail_follows_the_stream_from_a_sequence(
    client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext, platform: Platform
) -> None:
    first = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    assert platform.nats_url
    start = (await js.stream_info("EVENTS")).state.last_seq - 1
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sre_copilot",
        "events",
        "tail",
        "--tenant",
        tenant.tenant_id,
        "--type",
        "incident.created",
        "--since",
        str(max(start - 5, 0)),
        "--json",
        env={**os.environ, "NATS_URL": platform.nats_url},
        stdout=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None
    try:

        async def next_incident() -> str:
            line = await asyncio.wait_for(tail.stdout.readline(), 20)  # type: ignore[union-attr]
            record = json.loads(line)
            assert record["event"]["type"] == "incident.created", record
            return str(record["event"]["aggregate_id"])

        assert await next_incident() == first["id"]  # history first
        second = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
        assert await next_incident() == second["id"]  # then what happens, as it happens
    finally:
        tail.terminate()
        await tail.wait()


async def test_the_rebuild_command_swaps_in_a_verified_rebuild(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, js: JetStreamContext, platform: Platform
) -> None:
    await workload(client, tenant, incidents=3, seed=5)
    await caught_up(engine, js)
    assert platform.nats_url and platform.database_url
    env = {**os.environ, "NATS_URL": platform.nats_url, "DATABASE_URL": platform.database_url}
    for args in (["--verify"], []):
        done = subprocess.run(
            [sys.executable, "-m", "sre_copilot", "projections", "rebuild", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "events/s" in done.stdout, done.stdout
    assert "swapped the rebuilt read models in" in done.stdout
