"""Load generators: an async HTTP client at a fixed concurrency for a bounded time (or wrk when it
is installed), and a steady offered rate."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Throughput:
    requests: int
    seconds: float
    errors: int
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(latencies: list[float]) -> dict[str, float]:
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else float("nan"),
    }


def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> Throughput:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Throughput(total, elapsed, int(errors.group(1)) if errors else 0, "wrk")


async def hammer(url: str, headers: dict[str, str], seconds: float, connections: int = 32) -> Throughput:
    """Requests/s at a fixed concurrency for a bounded time, only against loopback."""
    assert url.startswith(("http://127.", "http://localhost")), "loopback only"
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, url, headers, seconds, connections)
    done = errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline:
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    errors += 1  # a dropped connection is an error to report, not a reason to stop
                    continue
                done += 1
                errors += response.status_code >= 400

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return Throughput(done, time.monotonic() - started, errors, "python httpx")


async def offered_rate(
    rate: float, seconds: float, action: Callable[[], Coroutine[Any, Any, None]], max_in_flight: int = 500
) -> int:
    """Start `action` `rate` times a second for `seconds` (open loop: a slow system does not slow
    the arrivals), then wait for the stragglers. Returns how many were started."""
    interval, started = 1.0 / rate, 0
    tasks: set[asyncio.Task[None]] = set()
    begin = time.monotonic()
    while (now := time.monotonic()) - begin < seconds:
        if len(tasks) < max_in_flight:
            task = asyncio.create_task(action())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        await asyncio.sleep(max(0.0, begin + started * interval - now))
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    return started


@dataclass
class UntilHypotheses:
    """Times each incident from its POST to its first hypotheses on the live feed (which may come
    before the POST is answered)."""

    started: dict[str, float] = field(default_factory=dict)
    early: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    async def listen(self, ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "hypothesis.generated":
                begun = self.started.pop(message["aggregate_id"], None)
                if begun is not None:
                    self.latencies.append(time.perf_counter() - begun)
                else:
                    self.early[message["aggregate_id"]] = time.perf_counter()

    def created(self, incident_id: str, begun: float) -> None:
        if incident_id in self.early:
            self.latencies.append(self.early.pop(incident_id) - begun)
        else:
            self.started[incident_id] = begun
