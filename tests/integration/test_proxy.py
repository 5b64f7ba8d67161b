"""compose.cluster.yaml's reverse proxy for real: Debian's caddy runs deploy/caddy/Caddyfile with only
its listening port and the gateways' DNS name and port put to this machine's, in front of the session's
gateway, and the platform is used through it: HTTP with the client's address passed on, and the live
feed's websocket upgrade."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect

from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, fresh_address, register_tenant

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"


@pytest.fixture(scope="module")
def proxy(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("Debian's caddy is not installed (scripts/setup.sh installs it as root)")
    gateway = urlsplit(platform.gateway_url)
    port = free_port()
    text = CADDYFILE.read_text()
    assert ":80 {" in text and "dynamic a gateway 8000" in text
    # 127.0.0.1 as the name to resolve: the A records are that address itself. `http://`: a site with
    # a host but no scheme would be served over TLS (`:80` is plain HTTP by its port).
    text = text.replace(":80 {", f"http://127.0.0.1:{port} {{").replace(
        "dynamic a gateway 8000", f"dynamic a {gateway.hostname} {gateway.port}"
    )
    state = tmp_path_factory.mktemp("caddy")
    config = state / "Caddyfile"
    config.write_text(text)
    log = (state / "caddy.log").open("wb")
    proc = subprocess.Popen(
        [caddy, "run", "--adapter", "caddyfile", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(state), "XDG_DATA_HOME": str(state), "XDG_CONFIG_HOME": str(state)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"caddy exited: {(state / 'caddy.log').read_text()}")
            time.sleep(0.1)
        else:
            pytest.fail(f"caddy is not listening: {(state / 'caddy.log').read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


async def test_http_and_the_live_feed_through_the_proxy(proxy: str) -> None:
    async with httpx.AsyncClient(
        base_url=proxy, timeout=15, headers={"X-Forwarded-For": fresh_address()}
    ) as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        tenant = await register_tenant(http)
        ws_url = proxy.replace("http://", "ws://") + "/api/v1/stream"
        async with connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": tenant.token}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["kind"] == "ready"
            created = await http.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
            assert created.status_code == 201, created.text
            incident_id = created.json()["id"]
            async with asyncio.timeout(15):
                while True:
                    message = json.loads(await ws.recv())
                    if message["kind"] == "event" and message["aggregate_id"] == incident_id:
                        break
        assert message["type"] == "incident.created"
