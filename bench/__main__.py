"""`python -m bench`: start the embedded platform, measure, print a table, write JSON.

Every figure is printed next to a baseline measured in the same run on the same machine, as a
ratio, since absolute times drift from machine to machine. Only loopback is ever loaded."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from nats.js.api import StorageType, StreamConfig
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect as ws_connect

from bench import cluster, ingest
from bench.load import UntilHypotheses, hammer, offered_rate, summary_ms
from contracts.events import Severity
from contracts.subjects import IMPORTED_HEADER
from gateway.projection.rebuild import rebuild
from incidents.domain import incident_envelope, open_incident
from runtime.bus import connect
from runtime.db import create_engine
from runtime.replay import read_events
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform

INCIDENT = {
    "title": "Checkout latency above SLO",
    "description": "p99 latency 2.3s after the 14:02 deploy; error rate 4%",
    "service_name": "checkout",
    "severity": "high",
}


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does: `FULL` for the figures, `QUICK` while iterating, `TINY` for the
    CI smoke (tests/e2e/test_bench_smoke.py), which only proves the bench still runs end to end."""

    name: str
    e2e_seconds: float
    e2e_rates: tuple[int, ...]
    creates: int  # one client, one after another: the create's own latency
    alert_groups: int
    publish_seconds: float
    settle_seconds: float
    incidents: int
    read_seconds: float
    sockets: int
    cluster_seconds: float
    messages: int = 10  # live-feed events each socket waits for


FULL = Sizes("full", 6.0, (20, 50, 100, 200), 300, 500, 5.0, 300, 100_000, 10.0, 1_000, 10.0)
QUICK = Sizes("quick", 3.0, (20, 50), 150, 200, 3.0, 180, 20_000, 5.0, 200, 4.0)
TINY = Sizes("tiny", 0.5, (10,), 5, 5, 0.5, 60, 50, 0.5, 3, 1.0, messages=3)


class Bench:
    def __init__(self, sizes: Sizes, platform: Platform | None = None) -> None:
        self.sizes = sizes
        self.rows: list[dict[str, Any]] = []
        # Given one already running (the CI smoke's), the bench uses it and leaves it running.
        self.platform: Platform | None = platform
        self.own_platform = platform is None
        self.baseline_port = free_port()
        self.baseline: subprocess.Popen[bytes] | None = None
        self.console = Console()

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        if self.own_platform:
            self.start_platform()
        self.start_baseline()

    def start_platform(self) -> None:
        state = Path(tempfile.mkdtemp(prefix="sre-copilot-bench-"))
        self.platform = Platform(
            state_dir=state,
            port=free_port(),
            durable=True,
            # The fan-out figure opens up to 1,000 sockets of one organisation.
            extra_env={"LOG_LEVEL": "ERROR", "LIVE_MAX_CONNECTIONS_PER_TENANT": "2000"},
        )
        self.platform.start_dependencies()
        self.platform.start_services()
        self.platform.wait_gateway()

    def start_baseline(self) -> None:
        self.baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_server", str(self.baseline_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.baseline_port}/item", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.baseline is not None:
            self.baseline.terminate()
            self.baseline.wait(10)
        if self.platform is not None and self.own_platform:
            self.platform.stop()

    @property
    def url(self) -> str:
        assert self.platform is not None
        return self.platform.gateway_url

    def record(
        self, name: str, figure: float, unit: str, baseline: float, baseline_name: str, **extra: Any
    ) -> None:
        ratio = figure / baseline if baseline else float("nan")
        self.rows.append(
            {
                "benchmark": name,
                "figure": round(figure, 2),
                "unit": unit,
                "baseline": round(baseline, 2),
                "baseline_name": baseline_name,
                "ratio": round(ratio, 3),
                **extra,
            }
        )

    async def tenant(self, http: httpx.AsyncClient) -> dict[str, str]:
        suffix = uuid.uuid4().hex[:8]
        response = await http.post(
            "/api/v1/auth/register",
            json={
                "email": f"bench-{suffix}@example.com",
                "password": f"bench-password-{suffix}",
                "full_name": "Bench",
                "tenant_name": f"Bench {suffix}",
            },
        )
        body = response.json()
        return {"token": body["access_token"], "tenant_id": body["tenant"]["id"]}

    # ------------------------------------------------------------------ benchmarks
    async def jetstream_round_trip(self, rate: float, seconds: float) -> dict[str, float]:
        """Baseline: a bare nats-py JetStream publish -> consume round trip on the same server."""
        assert self.platform and self.platform.nats_url
        nc = await connect(self.platform.nats_url, "bench-baseline")
        js = nc.jetstream()
        stream = f"BENCH_{uuid.uuid4().hex[:6]}"
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.FILE))
        latencies: list[float] = []

        async def on_message(msg: Any) -> None:
            latencies.append(time.perf_counter() - float(msg.data))
            await msg.ack()

        await js.subscribe(f"{stream}.x", cb=on_message, manual_ack=True)

        async def publish() -> None:
            await js.publish(f"{stream}.x", str(time.perf_counter()).encode())

        await offered_rate(rate, seconds, publish)
        await asyncio.sleep(1)
        await js.delete_stream(stream)
        await nc.close()
        return summary_ms(latencies)

    async def e2e_latency(self) -> None:
        """Create an incident over REST -> its hypotheses projected and readable, at steady rates."""
        seconds = self.sizes.e2e_seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            who = await self.tenant(http)
            headers = {"Authorization": f"Bearer {who['token']}"}
            await self.create_latency(http, headers)
            for rate in self.sizes.e2e_rates:
                timer = UntilHypotheses()
                cpu_before = self.services_cpu()
                ws_url = self.url.replace("http://", "ws://") + "/api/v1/stream"
                async with ws_connect(ws_url, max_size=None) as ws:
                    await ws.send(json.dumps({"type": "auth", "token": who["token"]}))
                    await ws.recv()  # ready
                    listener = asyncio.create_task(timer.listen(ws))

                    async def create() -> None:
                        begun = time.perf_counter()
                        response = await http.post("/api/v1/incidents", json=INCIDENT, headers=headers)
                        if response.status_code == 201:
                            timer.created(response.json()["id"], begun)

                    offered = await offered_rate(rate, seconds, create)
                    deadline = time.monotonic() + 30
                    while timer.started and time.monotonic() < deadline:
                        await asyncio.sleep(0.2)
                    listener.cancel()
                cpu_after = self.services_cpu()
                ours = summary_ms(timer.latencies)
                bench_cpu = time.process_time()
                base = await self.jetstream_round_trip(rate, seconds)
                bench_cpu = time.process_time() - bench_cpu
                self.record(
                    f"end-to-end p99 at {rate}/s (create -> hypotheses readable)",
                    ours["p99_ms"],
                    "ms",
                    base["p99_ms"],
                    "JetStream publish->consume p99",
                    offered=offered,
                    completed=ours["count"],
                    p50_ms=ours["p50_ms"],
                    p95_ms=ours["p95_ms"],
                    baseline_p50_ms=base["p50_ms"],
                )
                if ours["count"] and base["count"]:
                    spent = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
                    per_incident = {name: round(s * 1000 / ours["count"], 2) for name, s in spent.items()}
                    each = ", ".join(f"{name} {ms}" for name, ms in sorted(per_incident.items()))
                    self.record(
                        f"CPU per incident at {rate}/s, every service together ({each} ms)",
                        sum(spent.values()) * 1000 / ours["count"],
                        "ms",
                        bench_cpu * 1000 / base["count"],
                        "JetStream publish->consume in one Python process, CPU per message",
                        per_service_ms=per_incident,
                    )

    def services_cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each service's process has used so far."""
        assert self.platform
        used: dict[str, float] = {}
        for child in self.platform.children:
            if child.process is not None:
                with contextlib.suppress(psutil.Error):
                    times = psutil.Process(child.process.pid).cpu_times()
                    used[child.name] = times.user + times.system
        return used

    async def create_latency(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        """One client creating one incident after another: what a create waits for (the command's
        round trip, the incidents transaction, the projection of its event: read-your-writes)."""
        latencies: list[float] = []
        for _ in range(self.sizes.creates):
            begun = time.perf_counter()
            response = await http.post("/api/v1/incidents", json=INCIDENT, headers=headers)
            if response.status_code == 201:
                latencies.append(time.perf_counter() - begun)
        ours = summary_ms(latencies)
        # The same count of round trips, one after another, at no particular rate.
        base = await self.jetstream_round_trip(1_000, self.sizes.creates / 1_000)
        for q in ("p50_ms", "p99_ms"):
            self.record(
                f"POST /api/v1/incidents, one client, {q[:3]} (answered once readable)",
                ours[q],
                "ms",
                base[q],
                f"JetStream publish->consume {q[:3]}",
                completed=ours["count"],
            )

    async def alert_ingest(self) -> None:
        """Alertmanager payloads/s through gateway -> integrations -> incidents -> projection, each
        accepted group one incident in the read model and no accepted notification lost."""
        assert self.platform and self.platform.nats_url and self.platform.database_url
        nats_url = self.platform.nats_url
        groups = self.sizes.alert_groups
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            who = await self.tenant(http)
            created = await http.post(
                "/api/v1/integration-keys",
                json={"name": "alertmanager", "scopes": ["alerts:write"]},
                headers={"Authorization": f"Bearer {who['token']}"},
            )
            created.raise_for_status()
        # The baseline first, on an idle platform: after the alerts the AI worker has minutes of work.
        await ingest.settle(nats_url, 60)
        size = len(json.dumps(ingest.payload("0" * 8, 0)).encode())
        base = await ingest.publish_throughput(nats_url, size, self.sizes.publish_seconds)
        result, began = await ingest.send_alerts(self.url, created.json()["key"], groups, seconds=60)
        await ingest.follow(self.platform.database_url, who["tenant_id"], result, began, timeout=300)
        # Not part of the figure: how long until every consumer (the AI worker last) has digested the
        # burst, and so the next benchmark does not share the cores with it.
        idle = await ingest.settle(nats_url, self.sizes.settle_seconds)
        self.record(
            f"alert ingestion: {result.groups:,} Alertmanager groups + {result.repeats:,} re-sends "
            f"-> incidents projected ({result.lost} lost, {result.errors} errors)",
            result.accepted / result.projected_in,
            "payloads/s",
            base,
            f"JetStream publish of {size:,}-byte messages",
            loss=result.lost,
            duplicates=result.duplicates,
            drained=result.drained,
            errors=result.errors,
            statuses=result.statuses,
            incidents_per_s=round(result.groups / result.projected_in, 2),
            accepted_per_s=round(result.accepted / result.sent_in, 2),
            seconds=round(result.projected_in, 2),
            consumers_idle_after_s=round(idle - began, 1) if idle is not None else None,
        )

    async def seed_incidents(self, tenant_id: str, count: int) -> str:
        """Publish `count` incident.created events as imported history (the AI worker leaves imported
        history alone), wait until projected, return one incident id."""
        assert self.platform and self.platform.nats_url and self.platform.database_url
        nc = await connect(self.platform.nats_url, "bench-seed")
        js = nc.jetstream()
        now = datetime.now(UTC)
        last_id = ""
        for start in range(0, count, 1000):
            batch = []
            for n in range(start + 1, min(count, start + 1000) + 1):
                last_id = str(uuid.uuid4())
                created = open_incident(
                    incident_id=last_id,
                    number=n,
                    title=f"Seeded incident {n} on checkout",
                    description="seeded for the read benchmark",
                    service_name="checkout",
                    severity=Severity.MEDIUM,
                    created_by="bench",
                    now=now,
                )
                event = incident_envelope(
                    created, tenant_id=tenant_id, actor="bench", correlation_id="bench-seed"
                )
                batch.append(
                    js.publish(
                        f"events.{tenant_id}.incident.created",
                        event.to_bytes(),
                        headers={"Nats-Msg-Id": str(event.id), IMPORTED_HEADER: "1"},
                    )
                )
            await asyncio.gather(*batch)
        last_seq = (await js.stream_info("EVENTS")).state.last_seq
        # Every consumer (not only the projector) digests the seeded history before reads are
        # measured, so background catch-up does not share the cores with the measurement.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            consumers = await js.consumers_info("EVENTS")
            if all(not (c.num_pending or c.num_ack_pending) for c in consumers if c.config.durable_name):
                break
            await asyncio.sleep(1.0)
        await nc.close()
        engine = create_engine(self.platform.database_url, pool_size=1)
        from gateway.projection import tables

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                if await tables.last_seq(conn, "gateway_projector") >= last_seq:
                    break
            await asyncio.sleep(0.5)
        await engine.dispose()
        return last_id

    async def read_throughput(self) -> None:
        count = self.sizes.incidents
        seconds = self.sizes.read_seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            who = await self.tenant(http)
        began = time.perf_counter()
        incident_id = await self.seed_incidents(who["tenant_id"], count)
        seeded_in = time.perf_counter() - began
        headers = {"Authorization": f"Bearer {who['token']}"}
        base = await hammer(f"http://127.0.0.1:{self.baseline_port}/item", {}, seconds)
        page = await hammer(f"{self.url}/api/v1/incidents?limit=50", headers, seconds)
        one = await hammer(f"{self.url}/api/v1/incidents/{incident_id}", headers, seconds)
        health = await hammer(f"{self.url}/health", {}, seconds)
        self.record(
            "GET /health",
            health.per_second,
            "req/s",
            base.per_second,
            "bare Starlette/uvicorn endpoint",
            errors=health.errors,
            tool=health.tool,
        )
        for name, result in (("GET /api/v1/incidents (50 items)", page), ("GET /api/v1/incidents/{id}", one)):
            self.record(
                f"{name}, {count:,} incidents in the tenant",
                result.per_second,
                "req/s",
                base.per_second,
                "bare Starlette/uvicorn endpoint",
                errors=result.errors,
                tool=result.tool,
                seeded_events_per_s=round(count / seeded_in),
            )

    async def fan_out(self) -> None:
        clients = self.sizes.sockets
        messages = self.sizes.messages
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            who = await self.tenant(http)
            headers = {"Authorization": f"Bearer {who['token']}"}
            ws_url = self.url.replace("http://", "ws://") + "/api/v1/stream"
            ours = await self._fan_out(
                ws_url,
                clients,
                messages,
                lambda: http.post("/api/v1/incidents", json=INCIDENT, headers=headers),
                "incident.created",
                token=who["token"],
            )
        async with httpx.AsyncClient(timeout=30) as http:
            base_url = f"http://127.0.0.1:{self.baseline_port}"
            base = await self._fan_out(
                base_url.replace("http://", "ws://") + "/ws",
                clients,
                messages,
                lambda: http.post(f"{base_url}/broadcast"),
                None,
            )
        self.record(
            f"live feed: {clients:,} websocket clients, event-to-delivery p99",
            ours["p99_ms"],
            "ms",
            base["p99_ms"],
            "bare Starlette websocket broadcast p99",
            deliveries=ours["count"],
        )

    async def _fan_out(
        self,
        url: str,
        clients: int,
        messages: int,
        trigger: Any,
        event_type: str | None,
        token: str | None = None,
    ) -> dict[str, float]:
        latencies: list[float] = []
        sockets = []
        for _ in range(clients):
            ws = await ws_connect(url, max_size=None)
            if token is not None:
                await ws.send(json.dumps({"type": "auth", "token": token}))
            sockets.append(ws)
        if event_type:
            for ws in sockets:
                await ws.recv()  # ready

        async def drain(ws: Any) -> None:
            got = 0
            async for raw in ws:
                message = json.loads(raw)
                if event_type is None:
                    latencies.append(time.time() - message["sent_at"])
                elif message.get("type") == event_type:
                    sent = datetime.fromisoformat(message["occurred_at"]).timestamp()
                    latencies.append(time.time() - sent)
                else:
                    continue
                got += 1
                if got >= messages:
                    return

        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        for _ in range(messages):
            await trigger()
            await asyncio.sleep(0.2)
        await asyncio.wait(readers, timeout=60)
        for ws in sockets:
            await ws.close()
        return summary_ms(latencies)

    async def replay(self) -> None:
        assert self.platform and self.platform.nats_url and self.platform.database_url
        nc = await connect(self.platform.nats_url, "bench-replay")
        js = nc.jetstream()
        began, read = time.perf_counter(), 0
        async for _ in read_events(js, ["events.>"]):
            read += 1
        raw_rate = read / (time.perf_counter() - began)
        engine = create_engine(self.platform.database_url, pool_size=2)
        report = await rebuild(engine, js, verify=True, nats_url=self.platform.nats_url)
        await engine.dispose()
        await nc.close()
        self.record(
            f"read-model rebuild ({report.events:,} events)",
            report.rate,
            "events/s",
            raw_rate,
            "reading the same events from JetStream",
        )

    async def footprint(self) -> None:
        assert self.platform
        idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        time.sleep(1.0)
        baseline = psutil.Process(idle.pid).memory_info().rss / 2**20
        idle.terminate()
        for child in self.platform.children:
            if child.process is not None:
                rss = psutil.Process(child.process.pid).memory_info().rss / 2**20
                self.record(
                    f"resident memory: {child.name} (after the load above)",
                    rss,
                    "MiB",
                    baseline,
                    "bare Python process",
                )

    async def cluster_scaling(self) -> None:
        """Sustained end to end on a local cluster (three NATS nodes, streams on all three) with one
        and with two processes of every service; the baseline of the first is this run's single-node
        platform, of the second the one-replica cluster."""
        seconds = self.sizes.cluster_seconds
        single = await cluster.sustained(self.url, seconds)
        previous, previous_name = single, "one node, one replica"
        for replicas in (1, 2):
            ours = await cluster.run_on_cluster(replicas, seconds)
            self.record(
                f"cluster (3 NATS nodes, R3), {replicas} replica(s) of every service: sustained incidents/s "
                "(create -> hypotheses readable)",
                ours["ready_per_s"],
                "incidents/s",
                previous["ready_per_s"],
                previous_name,
                created_per_s=round(ours["created_per_s"], 1),
                p50_ms=ours["p50_ms"],
                p99_ms=ours["p99_ms"],
            )
            previous, previous_name = ours, f"3 nodes, {replicas} replica(s)"

    # ------------------------------------------------------------------ report
    def report(self, out: Path) -> None:
        table = Table(
            "benchmark",
            "figure",
            "baseline",
            "ratio",
            title=f"SRE Copilot benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        )
        for row in self.rows:
            table.add_row(
                row["benchmark"],
                f"{row['figure']:,} {row['unit']}",
                f"{row['baseline']:,} {row['unit']} ({row['baseline_name']})",
                f"{row['ratio']}x",
            )
        self.console.print(table)
        out.parent.mkdir(parents=True, exist_ok=True)
        machine = {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        }
        out.write_text(
            json.dumps({"machine": machine, "sizes": self.sizes.name, "results": self.rows}, indent=2)
        )
        self.console.print(f"written to {out}")


BENCHMARKS = ("e2e", "ingest", "reads", "fanout", "replay", "footprint", "cluster")


async def run(bench: Bench, only: list[str]) -> None:
    steps = {
        "e2e": bench.e2e_latency,
        "ingest": bench.alert_ingest,
        "reads": bench.read_throughput,
        "fanout": bench.fan_out,
        "replay": bench.replay,
        "footprint": bench.footprint,
        "cluster": bench.cluster_scaling,
    }
    for name in only:
        bench.console.print(f"[bold]running {name}...[/bold]")
        await steps[name]()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    bench = Bench(QUICK if args.quick else FULL)
    try:
        bench.start()
        asyncio.run(run(bench, only))
    finally:
        bench.stop()
    bench.report(args.out)


if __name__ == "__main__":
    main()
