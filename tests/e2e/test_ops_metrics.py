"""`/metrics`: every service's metrics through the gateway, moving under load, named by the
Prometheus conventions, and enough for the self-monitoring alert rules."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nats.js import JetStreamContext
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from contracts.subjects import SERVICES
from gateway.projection.skip import SkipRefused, skip
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, Tenant

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
Families = dict[str, Metric]


async def scrape(client: httpx.AsyncClient) -> Families:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: Families, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` (0 when none)."""
    family = families.get(re.sub(r"_(total|count|sum|bucket)$", "", sample)) or families.get(sample)
    if family is None:
        return 0.0
    return sum(
        s.value
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_values(families: Families, name: str, label: str) -> set[str]:
    return {s.labels[label] for s in families[name].samples if label in s.labels}


async def until(check: Callable[[], Awaitable[Any]], attempts: int = 200) -> Any:
    for _ in range(attempts):
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


async def test_every_family_is_served_and_moves_under_load(
    client: httpx.AsyncClient, tenant: Tenant, platform: Platform
) -> None:
    before = await scrape(client)
    count = 4
    ids = []
    for _ in range(count):
        created = await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
        assert created.status_code == 201
        ids.append(created.json()["id"])
    unknown = await client.post(
        f"/api/v1/incidents/{uuid.uuid4()}/transitions", json={"to": "acknowledged"}, headers=tenant.auth
    )
    assert unknown.status_code == 404

    async def all_ready() -> bool:
        for incident_id in ids:
            body = (
                await client.get(f"/api/v1/incidents/{incident_id}/hypotheses", headers=tenant.auth)
            ).json()
            if body["status"] != "ready":
                return False
        return True

    await until(all_ready)
    url = platform.gateway_url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": tenant.token}))
        assert '"ready"' in str(await asyncio.wait_for(ws.recv(), 10))
        after = await scrape(client)
        assert value(after, "sre_copilot_websocket_connections") >= 1

    def moved(sample: str, at_least: float = 1, **labels: str) -> None:
        delta = value(after, sample, **labels) - value(before, sample, **labels)
        assert delta >= at_least, (sample, labels, delta)

    # HTTP, by route template and status, with latency.
    route = {"method": "POST", "route": "/api/v1/incidents"}
    moved("sre_copilot_http_requests_total", count, status="201", **route)
    moved("sre_copilot_http_request_duration_seconds_count", count, **route)
    moved(
        "sre_copilot_http_requests_total",
        1,
        status="404",
        route="/api/v1/incidents/{incident_id}/transitions",
    )
    # Commands by type and outcome, with latency, from the service that handled them.
    create = {"service": "incidents", "command": "cmd.incidents.create"}
    moved("sre_copilot_commands_total", count, outcome="ok", **create)
    moved("sre_copilot_command_duration_seconds_count", count, **create)
    moved("sre_copilot_commands_total", 1, outcome="not_found", command="cmd.incidents.transition")
    # Events handled by each consumer, by type, with latency; published through the outbox.
    moved("sre_copilot_events_handled_total", count, consumer="gateway_projector", type="incident.created")
    moved(
        "sre_copilot_events_handled_total", count, consumer="ai_worker", type="incident.created", outcome="ok"
    )
    moved("sre_copilot_event_handling_duration_seconds_count", count, consumer="ai_worker")
    moved("sre_copilot_events_published_total", count, service="incidents", path="fast")
    moved("sre_copilot_projection_batch_duration_seconds_count", 1)
    moved("sre_copilot_projection_checkpoint_sequence", count)
    # Hypothesis generation time by engine.
    moved("sre_copilot_hypothesis_generation_duration_seconds_count", count, engine="rules")
    moved("sre_copilot_hypothesis_generations_total", count, engine="rules", fallback="false")

    # Read when scraped: consumer lag per durable consumer, outbox backlog and age, dead letters.
    durables = label_values(after, "sre_copilot_consumer_pending_messages", "consumer")
    assert {"gateway_projector", "ai_worker", "incidents_directory"} <= durables
    outboxes = label_values(after, "sre_copilot_outbox_pending_events", "service")
    assert {"auth", "incidents", "ai_worker"} <= outboxes
    assert label_values(after, "sre_copilot_outbox_oldest_pending_age_seconds", "service") == outboxes
    assert "sre_copilot_dead_letter_messages" in after
    assert "sre_copilot_dead_lettered_messages" in after
    assert value(after, "sre_copilot_projection_lag_events", projection="gateway_projector") >= 0
    # Every process answered, with its own process metrics.
    for name in ("gateway", *SERVICES):
        assert value(after, "sre_copilot_service_instances", service=name) >= 1, name
        assert value(after, "process_resident_memory_bytes", service=name) > 0, name


async def test_dead_letters_show_in_both_counts(
    client: httpx.AsyncClient, js: JetStreamContext, engine: AsyncEngine
) -> None:
    """The projector stops at a poison message (and says so) until an operator skips it; the skip
    is then counted as the projector's dead letter."""
    before = await scrape(client)
    ack = await js.publish(f"events.t_{uuid.uuid4().hex}.incident.created", b"\x00 not an event")
    try:

        async def stalled() -> bool:
            now = await scrape(client)
            seq = value(now, "sre_copilot_projection_stalled_sequence", projection="gateway_projector")
            return seq == ack.seq and value(now, "sre_copilot_projection_stalled", reason="unreadable") == 1

        await until(stalled)
    finally:  # never leave the session's projector stopped
        with contextlib.suppress(SkipRefused):
            await skip(engine, js, ack.seq, "test: poison", force=True)

    async def counted() -> Families | None:
        now = await scrape(client)
        done = all(
            value(now, name, consumer="gateway_projector") > value(before, name, consumer="gateway_projector")
            for name in ("sre_copilot_dead_lettered_messages_total", "sre_copilot_dead_letter_messages")
        )
        return now if done else None

    after = await until(counted)
    assert value(after, "sre_copilot_dead_lettered_messages_total", service="gateway") >= 1
    assert value(after, "sre_copilot_projection_stalled", projection="gateway_projector") == 0


async def test_names_follow_the_prometheus_conventions(client: httpx.AsyncClient) -> None:
    families = {n: f for n, f in (await scrape(client)).items() if n.startswith("sre_copilot_")}
    assert len(families) >= 20
    for name, family in families.items():
        assert family.documentation, name
        names = {s.name for s in family.samples}
        if family.type == "counter":
            assert names <= {f"{name}_total"}, name
        elif family.type == "histogram":
            assert name.endswith("_seconds"), name  # durations, in base units
            assert names <= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}, name
        else:
            assert family.type == "gauge" and not name.endswith("_total"), name
        # Per-tenant series would grow without bound, and tell one tenant about another.
        assert not any("tenant" in label for s in family.samples for label in s.labels), name


async def test_the_alert_rules_use_metrics_that_exist(client: httpx.AsyncClient) -> None:
    page = (await client.get("/metrics")).text
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    expressions = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    used = {m for expr in expressions for m in re.findall(r"\bsre_copilot_\w+", expr)}
    assert len(used) >= 6
    for metric in used:
        assert re.search(rf"^{metric}[{{ ]", page, re.MULTILINE), f"{metric} is not served"
