"""Two `incidents` replicas and a stream that refuses publishes for a moment: one incident's events
reach the log out of version order (one replica's fast path pauses and its relay sends the older
rows later, while the other replica publishes at once), and every view still ends up with every
field of the incident as the incidents service has it."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.replay import StoredEvent, read_events, subject_filters
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, register_tenant
from tests.fault.conftest import quiescent
from tests.views import view_differences

pytestmark = pytest.mark.fault


def start_second_replica(platform: Platform, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "incidents"],
            env={**platform.env(), "LOG_LEVEL": "INFO"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while b"service_started" not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    return process


async def test_out_of_order_events_from_two_replicas_converge_in_every_view(
    fault_platform: Platform, fault_db: AsyncEngine, fault_nc: Client, tmp_path: Path
) -> None:
    second = start_second_replica(fault_platform, tmp_path / "incidents-2.log")
    js = fault_nc.jetstream()
    try:
        async with httpx.AsyncClient(base_url=fault_platform.gateway_url, timeout=30) as http:
            tenant = await register_tenant(http, "Convergence")
            created = await http.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
            assert created.status_code == 201, created.text
            url = f"/api/v1/incidents/{created.json()['id']}"

            # JetStream refuses every publish (a full stream), so the replica that takes this edit
            # keeps its event in its outbox and stops using its fast path for a few seconds.
            info = await js.stream_info("EVENTS")
            config = info.config
            await js.update_stream(
                dataclasses.replace(config, max_msgs=info.state.messages, discard=DiscardPolicy.NEW)
            )
            try:
                first = await http.patch(url, json={"title": "edit 0"}, headers=tenant.auth)
                assert first.status_code == 200, first.text
            finally:
                await js.update_stream(config)

            # Commands spread over both replicas: the other one publishes its events at once, ahead
            # of the rows the first one's relay sends later.
            for n in range(1, 13):
                change = {"title": f"edit {n}"} if n % 2 else {"severity": ["medium", "critical"][n // 2 % 2]}
                answer = await http.patch(url, json=change, headers=tenant.auth)
                assert answer.status_code == 200, answer.text
            for to in ("acknowledged", "resolved"):
                moved = await http.post(f"{url}/transitions", json={"to": to}, headers=tenant.auth)
                assert moved.status_code == 200, moved.text

            await quiescent(js, fault_db)
            events = [
                s.event
                async for s in read_events(js, subject_filters(tenant.tenant_id))
                if isinstance(s, StoredEvent) and s.event.aggregate_id == created.json()["id"]
            ]
            versions = [e.aggregate_version for e in events if e.type.startswith("incident.")]
            assert sorted(versions) == list(range(1, 17)), versions
            assert versions != sorted(versions), "the events reached the log in order: nothing was tested"

            # The views converge (the AI worker's and integrations' follow the log asynchronously).
            deadline = time.monotonic() + 30
            while (differences := await view_differences(fault_db, tenant.tenant_id)) and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(0.5)
            assert differences == []
            final = (await http.get(url, headers=tenant.auth)).json()
            assert (final["title"], final["severity"], final["state"], final["version"]) == (
                "edit 11",
                "medium",
                "resolved",
                16,
            )
    finally:
        second.terminate()
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
            raise
