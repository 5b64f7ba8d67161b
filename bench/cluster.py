"""Sustained end to end on the local cluster (`sre-copilot up --nats-nodes 3 --replicas N`): several
clients create incidents as fast as they are answered for a while; counted are the incidents created
and those whose hypotheses reached a websocket, per second, and the create → hypotheses latency."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect as ws_connect

from bench.load import UntilHypotheses, summary_ms
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform

INCIDENT = {
    "title": "Checkout latency above SLO",
    "description": "p99 latency 2.3s after the 14:02 deploy; error rate 4%",
    "service_name": "checkout",
    "severity": "high",
}


async def sustained(url: str, seconds: float, clients: int = 8) -> dict[str, float]:
    """Closed loop: each client creates again as soon as it is answered."""
    suffix = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = (
            await http.post(
                "/api/v1/auth/register",
                json={
                    "email": f"cluster-{suffix}@example.com",
                    "password": f"bench-password-{suffix}",
                    "full_name": "Bench",
                    "tenant_name": f"Cluster bench {suffix}",
                },
            )
        ).json()
    token = body["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    timer = UntilHypotheses()
    created = 0
    async with ws_connect(url.replace("http://", "ws://") + "/api/v1/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.recv()  # ready
        listener = asyncio.create_task(timer.listen(ws))
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal created
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                while time.perf_counter() < stop_at:
                    begun = time.perf_counter()
                    response = await http.post("/api/v1/incidents", json=INCIDENT, headers=headers)
                    if response.status_code != 201:
                        continue
                    created += 1
                    timer.created(response.json()["id"], begun)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        deadline = time.monotonic() + 30
        while timer.started and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - began
        listener.cancel()
    return {
        "created_per_s": created / seconds,
        "ready_per_s": len(timer.latencies) / elapsed,
        **summary_ms(timer.latencies),
    }


async def run_on_cluster(replicas: int, seconds: float) -> dict[str, float]:
    """Start a local cluster with `replicas` processes of every service, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="sre-copilot-cluster-bench-") as state:
        platform = Platform(
            state_dir=Path(state),
            port=free_port(),
            durable=True,
            nats_nodes=3,
            replicas=replicas,
            extra_env={"LOG_LEVEL": "ERROR"},
        )

        def start() -> None:  # the supervisor's start runs event loops of its own
            platform.start_dependencies()
            platform.start_services()
            platform.wait_gateway()

        try:
            await asyncio.to_thread(start)
            return await sustained(platform.gateway_url, seconds)
        finally:
            await asyncio.to_thread(platform.stop)
