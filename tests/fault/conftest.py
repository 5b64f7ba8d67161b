"""A platform of its own for fault injection (its services get killed and its servers restarted),
with the supervisor's restart loop running, durable settings as in production, and a steady load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from gateway.projection.rebuild import rebuild
from runtime.replay import StoredEvent, read_events, subject_filters
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, ONCALL_ENV, Tenant, register_tenant
from tests.platforms import bus_of, database_of, supervised
from tests.views import view_differences


@pytest.fixture(scope="module")
def fault_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # durable=True: nats-server fsyncs before every acknowledgement, as the embedded default does,
    # so killing it outright must not lose an acknowledged event. The tests stop and start the
    # servers themselves, so the supervisor leaves them alone (tests/fault/test_resources.py has it
    # restart them).
    platform = Platform(
        state_dir=tmp_path_factory.mktemp("faults"),
        port=free_port(),
        durable=True,
        extra_env={"LOG_LEVEL": "ERROR", "COALESCE_WINDOW_SECONDS": "0.2", **ONCALL_ENV},
        restart_servers=False,
    )
    with supervised(platform):
        yield platform


@pytest.fixture
async def fault_db(fault_platform: Platform) -> AsyncIterator[AsyncEngine]:
    async with database_of(fault_platform) as engine:
        yield engine


@pytest.fixture
async def fault_nc(fault_platform: Platform) -> AsyncIterator[Client]:
    async with bus_of(fault_platform, "fault-tests") as nc:
        yield nc


@dataclass
class Load:
    """A steady mixed load from a few concurrent clients, and a websocket watcher that resumes."""

    platform: Platform
    tenant: Tenant
    # How many of the clients write 8 KB of random (incompressible) description with each incident:
    # every such write needs new pages of storage.
    big_writers: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    accepted_incidents: list[str] = field(default_factory=list)
    accepted_moves: list[str] = field(default_factory=list)
    # Creations answered with an error (their title, status and error message), and every 5xx
    # answer's error message ("not JSON" for a body without the documented error shape).
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    server_errors: Counter[str] = field(default_factory=Counter)
    seen_seqs: list[int] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _client(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.platform.gateway_url, timeout=15) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = INCIDENT | {"title": f"load {n}-{i}"}
                if n < self.big_writers:
                    body["description"] = secrets.token_hex(4_000)
                try:
                    created = await http.post("/api/v1/incidents", json=body, headers=self.tenant.auth)
                except httpx.TransportError:
                    self.statuses["connection"] += 1
                    await asyncio.sleep(0.2)
                    continue
                self.statuses[str(created.status_code)] += 1
                if created.status_code != 201:
                    self.refused.append((body["title"], created.status_code, self._server_error(created)))
                    await asyncio.sleep(0.1)
                    continue
                incident_id = created.json()["id"]
                self.accepted_incidents.append(incident_id)
                if i % 2:
                    try:
                        moved = await http.post(
                            f"/api/v1/incidents/{incident_id}/transitions",
                            json={"to": "acknowledged"},
                            headers=self.tenant.auth,
                        )
                    except httpx.TransportError:
                        self.statuses["connection"] += 1
                        continue
                    self.statuses[str(moved.status_code)] += 1
                    if moved.status_code == 200:
                        self.accepted_moves.append(incident_id)
                    else:
                        self._server_error(moved)

    def _server_error(self, response: httpx.Response) -> str:
        """The error message of an answer; a 5xx is counted by its message."""
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = "not JSON"
        if response.status_code >= 500:
            self.server_errors[f"{response.status_code} {message}"] += 1
        return message

    async def _watch(self) -> None:
        base = self.platform.gateway_url.replace("http://", "ws://")
        last = 0
        while not self.stop.is_set():
            try:
                async with ws_connect(f"{base}/api/v1/stream?since={last}") as ws:
                    await ws.send(json.dumps({"type": "auth", "token": self.tenant.token}))
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["kind"] == "event":
                            self.seen_seqs.append(message["seq"])
                            last = message["seq"]
            except (OSError, WebSocketException, TimeoutError):
                pass
            await asyncio.sleep(0.2)

    def start(self, clients: int = 3) -> None:
        self.tasks = [asyncio.create_task(self._client(n)) for n in range(clients)]
        self.tasks.append(asyncio.create_task(self._watch()))

    async def finish_writes(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks[:-1])

    async def finish_watching(self) -> None:
        self.tasks[-1].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.tasks[-1]


@pytest.fixture
async def load(fault_platform: Platform) -> AsyncIterator[Load]:
    async with httpx.AsyncClient(base_url=fault_platform.gateway_url, timeout=15) as http:
        tenant = await register_tenant(http, f"Faults {uuid.uuid4().hex[:6]}")
    running = Load(fault_platform, tenant)
    yield running
    running.stop.set()
    for task in running.tasks:
        task.cancel()


async def quiescent(js: JetStreamContext, engine: AsyncEngine, seconds: float = 90.0) -> None:
    """Until every durable consumer has handled everything and the outboxes are empty."""
    deadline = time.monotonic() + seconds
    busy: list[str] = []
    unsent = -1
    while time.monotonic() < deadline:
        try:
            consumers = await js.consumers_info("EVENTS")
            busy = [
                c.name for c in consumers if c.config.durable_name and (c.num_pending or c.num_ack_pending)
            ]
            async with engine.connect() as conn:
                unsent = 0
                for schema in ("auth", "incidents", "ai_worker", "integrations", "oncall"):
                    unsent += int(
                        await conn.scalar(
                            text(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
                        )
                        or 0
                    )
            if not busy and not unsent:
                return
        except Exception:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"the platform did not settle: {busy}")


async def check_invariants(load: Load, js: JetStreamContext, engine: AsyncEngine) -> None:
    """Every accepted write exists exactly once in the incidents tables, in the stream and in the
    read models; one hypothesis set per generation; no 500s; the resuming watcher saw every event once."""
    tenant = load.tenant.tenant_id
    assert load.accepted_incidents, "the load wrote nothing"
    assert load.statuses["500"] == 0, load.statuses
    assert set(load.statuses) <= {"200", "201", "409", "503", "504", "connection"}, load.statuses

    await quiescent(js, engine)
    # Give the AI worker every incident's first generation.
    deadline = time.monotonic() + 60
    while True:
        events = [s async for s in read_events(js, subject_filters(tenant)) if isinstance(s, StoredEvent)]
        created = Counter(s.event.aggregate_id for s in events if s.event.type == "incident.created")
        generations = Counter(
            (s.event.aggregate_id, s.event.data["generation"])
            for s in events
            if s.event.type == "hypothesis.generated"
        )
        if set(created) <= {incident for incident, _ in generations} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    moves = Counter(s.event.aggregate_id for s in events if s.event.type == "incident.state_changed")

    async with engine.connect() as conn:
        stored = {
            str(r.id)
            for r in await conn.execute(
                text("SELECT id FROM incidents.incidents WHERE tenant_id = :t"), {"t": tenant}
            )
        }
        projected = {
            str(r.id)
            for r in await conn.execute(
                text("SELECT id FROM gateway.incidents WHERE tenant_id = :t"), {"t": tenant}
            )
        }
        transitions = Counter(
            str(r.incident_id)
            for r in await conn.execute(
                text("SELECT incident_id FROM incidents.transitions WHERE tenant_id = :t"), {"t": tenant}
            )
        )

    accepted = set(load.accepted_incidents)
    assert len(accepted) == len(load.accepted_incidents)
    assert accepted <= stored, "an accepted incident is missing from the incidents tables"
    assert set(created) == stored, "the stream and the incidents tables disagree"
    assert all(n == 1 for n in created.values()), "an incident was created twice in the stream"
    assert projected == stored, "the read models and the incidents tables disagree"
    assert moves == transitions, "transitions in the stream and in the tables disagree"
    assert set(load.accepted_moves) <= set(transitions)
    assert all(n == 1 for n in generations.values()), "a generation of hypotheses was published twice"
    assert set(created) <= {incident for incident, _ in generations}, "an incident never got hypotheses"

    # Every field of every incident, in every view, as the incidents service has it.
    assert await view_differences(engine, tenant) == []

    report = await rebuild(engine, js, verify=True)
    assert report.differences == [], report.differences

    # The watcher (resuming with `since` after every drop) saw each of the tenant's events once.
    deadline = time.monotonic() + 30
    expected = [s.seq for s in events]
    while load.seen_seqs[-1:] != expected[-1:] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await load.finish_watching()
    assert len(load.seen_seqs) == len(set(load.seen_seqs)), "the live feed repeated an event"
    assert load.seen_seqs == expected, "the live feed missed events"


async def healthy(platform: Platform, seconds: float = 60.0) -> None:
    """Until every service answers the gateway's ping."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=3) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/health/services")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise AssertionError("the platform did not recover")
