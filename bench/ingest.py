"""Alert ingestion: Alertmanager webhook payloads sent to the gateway at a bounded concurrency, each a
distinct alert group (so each opens its own incident) plus some re-sends of groups already accepted
(which must change nothing), followed until every accepted one is worked on and projected; and the
baseline, raw JetStream publishes of payloads of the same size from Python."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import text

from runtime.bus import connect
from runtime.db import create_engine

ALERTS = (
    ("HighErrorRate", "critical", "{service} 5xx ratio above 5%"),
    ("HighLatencyP99", "warning", "{service} p99 latency above 1.5s"),
    ("PodCrashLooping", "error", "{service} pods restarting"),
    ("DiskAlmostFull", "warning", "{service} volume above 90%"),
)
ALERTS_PER_GROUP = 2
SERVICES = ("checkout", "payments", "search", "catalog", "auth-edge", "inventory", "shipping", "ledger")


def _alert(
    run: str, group: int, alertname: str, severity: str, service: str, summary: str, instance: int
) -> dict[str, Any]:
    name = f"{service}-{instance}"
    return {
        "status": "firing",
        "labels": {
            "alertname": alertname,
            "service": service,
            "severity": severity,
            "instance": f"{name}:9100",
            "job": f"{service}-api",
            "namespace": "prod",
            "pod": f"{name}-7f9c{group % 9973:04d}",
        },
        "annotations": {
            "summary": summary,
            "description": f"{name} has been over its threshold for 5 minutes (bench run {run}).",
            "runbook_url": f"https://runbooks.example.com/{alertname.lower()}",
        },
        "startsAt": "2026-11-25T09:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=job%3Aslo_burn%3Aratio5m+%3E+0.05&g0.tab=1",
        "fingerprint": hashlib.sha256(f"{run}/{group}/{instance}".encode()).hexdigest()[:16],
    }


def payload(run: str, group: int, alerts: int = ALERTS_PER_GROUP) -> dict[str, Any]:
    """An Alertmanager v4 webhook body for alert group `group` of this run: its own groupKey, its own
    fingerprints, a summary naming the group so its incident can be found by title."""
    alertname, severity, summary = ALERTS[group % len(ALERTS)]
    service = SERVICES[group // len(ALERTS) % len(SERVICES)]
    title = f"{summary.format(service=service)} [bench {run} #{group}]"
    common = {"alertname": alertname, "service": service, "severity": severity}
    return {
        "receiver": "sre-copilot",
        "status": "firing",
        "alerts": [_alert(run, group, alertname, severity, service, title, i) for i in range(alerts)],
        "groupLabels": {"alertname": alertname, "service": service},
        "commonLabels": {**common, "namespace": "prod"},
        "commonAnnotations": {"runbook_url": f"https://runbooks.example.com/{alertname.lower()}"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}/{{severity="{severity}"}}:{{alertname="{alertname}", group="{run}-{group}"}}',
        "truncatedAlerts": 0,
    }


def title_of(body: dict[str, Any]) -> str:
    return str(body["alerts"][0]["annotations"]["summary"])


@dataclass
class Ingest:
    groups: int = 0  # distinct groups accepted
    repeats: int = 0  # re-sends of accepted groups accepted
    errors: int = 0  # non-2xx answers and failed requests
    statuses: dict[str, int] = field(default_factory=dict)
    deliveries: list[str] = field(default_factory=list)
    titles: set[str] = field(default_factory=set)
    sent_in: float = 0.0  # first send to last answer
    projected_in: float = 0.0  # first send to the last one projected
    lost: int = 0  # accepted groups with no incident, accepted deliveries not processed
    duplicates: int = 0  # incidents beyond one per group (a re-send that opened one, ...)
    drained: bool = False

    @property
    def accepted(self) -> int:
        return self.groups + self.repeats


async def send_alerts(
    url: str, key: str, groups: int, seconds: float, repeat_every: int = 10, concurrency: int = 16
) -> tuple[Ingest, float]:
    """POST up to `groups` distinct groups (and one re-send of an accepted group every `repeat_every`
    sends) for at most `seconds`. Returns the tally and when the first send began."""
    assert url.startswith(("http://127.", "http://localhost")), "loopback only"
    run = uuid.uuid4().hex[:8]
    result = Ingest()
    accepted: list[dict[str, Any]] = []
    rng = random.Random(run)
    next_group = sends = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    began = time.perf_counter()
    deadline = time.monotonic() + seconds

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:

        async def worker() -> None:
            nonlocal next_group, sends
            while time.monotonic() < deadline:
                sends += 1
                repeat = bool(accepted) and sends % repeat_every == 0
                if repeat:
                    body = rng.choice(accepted)
                elif next_group < groups:
                    body = payload(run, next_group)
                    next_group += 1
                else:
                    return
                try:
                    response = await http.post("/api/v1/integrations/alertmanager", json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != "202":
                    result.errors += 1
                    continue
                result.deliveries.append(response.json()["delivery_id"])
                if repeat:
                    result.repeats += 1
                else:
                    result.groups += 1
                    result.titles.add(title_of(body))
                    accepted.append(body)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.sent_in = time.perf_counter() - began
    return result, began


INCIDENTS = "SELECT count(*) FROM gateway.incidents WHERE tenant_id = :t"
ATTACHED = "SELECT count(*) FROM gateway.timeline WHERE tenant_id = :t AND kind = 'alert.attached'"
PENDING = "SELECT count(*) FROM integrations.inbound WHERE tenant_id = :t AND status = 'pending'"
TITLES = "SELECT title FROM gateway.incidents WHERE tenant_id = :t"
PROCESSED = "SELECT id::text FROM integrations.inbound WHERE tenant_id = :t AND status = 'processed'"


async def follow(database_url: str, tenant_id: str, result: Ingest, began: float, timeout: float) -> None:
    """Wait until every accepted group's incident, with its alerts, is in the gateway's read model
    and no accepted delivery is still pending; then count what is missing and what is extra."""
    engine = create_engine(database_url, pool_size=1)
    tenant = {"t": tenant_id}
    deadline = time.monotonic() + timeout
    try:
        async with engine.connect() as conn:

            async def count(query: str) -> int:
                value = await conn.scalar(text(query), tenant)
                await conn.commit()
                return int(value or 0)

            # The cheap check first (indexed); then each group's alerts on its incident's timeline
            # (the last thing a group projects) and nothing left in integrations' queue.
            while time.monotonic() < deadline and await count(INCIDENTS) < result.groups:
                await asyncio.sleep(0.1)
            while time.monotonic() < deadline:
                if await count(ATTACHED) >= ALERTS_PER_GROUP * result.groups and not await count(PENDING):
                    result.drained = True
                    break
                await asyncio.sleep(0.1)
            result.projected_in = time.perf_counter() - began
            titles = list((await conn.execute(text(TITLES), tenant)).scalars())
            processed = set((await conn.execute(text(PROCESSED), tenant)).scalars())
    finally:
        await engine.dispose()
    per_title = Counter(titles)
    missing_groups = sum(1 for title in result.titles if title not in per_title)
    missing_deliveries = sum(1 for delivery in result.deliveries if delivery not in processed)
    result.lost = missing_groups + missing_deliveries
    # More than one incident for a group, or one for no group sent (a re-send that opened one).
    result.duplicates = sum(n - 1 if title in result.titles else n for title, n in per_title.items())


async def settle(nats_url: str, timeout: float) -> float | None:
    """Wait until every durable consumer of the event log has nothing pending; returns when that
    was (`time.perf_counter()`), or None if it did not happen within `timeout` seconds."""
    nc = await connect(nats_url, "bench-ingest-settle")
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            consumers = await js.consumers_info("EVENTS")
            if all(not (c.num_pending or c.num_ack_pending) for c in consumers if c.config.durable_name):
                return time.perf_counter()
            await asyncio.sleep(0.5)
        return None
    finally:
        await nc.close()


async def publish_throughput(nats_url: str, size: int, seconds: float, batch: int = 256) -> float:
    """Baseline: messages/s of `size` bytes published to a temporary file-backed JetStream stream
    on the same server, `batch` publishes in flight and awaited together."""
    nc = await connect(nats_url, "bench-ingest-baseline")
    js = nc.jetstream()
    stream = f"BENCH_{uuid.uuid4().hex[:6]}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.FILE))
    body = json.dumps({"pad": "x" * max(0, size - 11)}).encode()
    sent = 0
    try:
        began = time.perf_counter()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.gather(*(js.publish(f"{stream}.alerts", body) for _ in range(batch)))
            sent += batch
        elapsed = time.perf_counter() - began
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return sent / elapsed
