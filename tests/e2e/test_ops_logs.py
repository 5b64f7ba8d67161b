"""One request's correlation id finds its log lines in every service it went through, and no log
line holds a token."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, Tenant

pytestmark = pytest.mark.e2e


def lines_of(log_dir: Path, service: str, correlation_id: str) -> list[dict[str, Any]]:
    found = []
    for line in (log_dir / f"{service}.log").read_text().splitlines():
        if correlation_id in line:
            entry = json.loads(line)  # every line is one JSON object
            assert entry["correlation_id"] == correlation_id, line
            found.append(entry)
    return found


async def test_grep_one_correlation_id_through_every_service(
    client: httpx.AsyncClient, tenant: Tenant, platform: Platform
) -> None:
    assert platform.log_dir is not None
    correlation_id = f"ops-{uuid.uuid4().hex}"
    created = await client.post(
        "/api/v1/incidents", json=INCIDENT, headers={**tenant.auth, "X-Correlation-ID": correlation_id}
    )
    assert created.status_code == 201
    assert created.headers["X-Correlation-ID"] == correlation_id
    incident_id = created.json()["id"]

    expected = {
        "gateway": lambda e: e["event"] == "http_request" and e["route"] == "/api/v1/incidents",
        "incidents": lambda e: e["event"] == "command_handled" and e["command"] == "cmd.incidents.create",
        "ai_worker": lambda e: e["event"] == "hypotheses_generated" and e["incident_id"] == incident_id,
    }
    missing = set(expected)
    for _ in range(300):
        for service in sorted(missing):
            entries = lines_of(platform.log_dir, service, correlation_id)
            if any(expected[service](e) and e["service"] == service for e in entries):
                missing.discard(service)
        if not missing:
            break
        await asyncio.sleep(0.1)
    assert not missing, f"no line with {correlation_id} in the logs of {sorted(missing)}"

    # A websocket's token (its first message) is not logged either.
    url = platform.gateway_url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": tenant.token}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["kind"] == "ready"
    # The access token of every request above, and the password, appear in no log.
    for log in platform.log_dir.glob("*.log"):
        text = log.read_text()
        assert tenant.token not in text, log.name
        assert tenant.password not in text, log.name
