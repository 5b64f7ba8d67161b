"""Resource faults (issue 9): a refused connection or a full disk gives a clear error and no partial
write, and the platform recovers by itself once the resource is back.

- Every operator command pointed at a NATS or PostgreSQL where nothing listens ends within seconds,
  non-zero, with one line naming what it could not reach; an export leaves no file behind.
- A service started against a refused NATS or PostgreSQL waits and says so in its log.
- An export onto a full disk fails with "No space left on device" and leaves no partial file (a
  previous export of the same name is left as it was).
- A platform whose state directory (PostgreSQL's data and the JetStream store) is on a small tmpfs:
  with PostgreSQL or nats-server stopped, writes answer the documented 503 and the supervisor starts
  the server again; with the disk filled under load, writes answer 503 with a JSON body and nothing
  half-exists; once space is freed every answered write exists exactly once everywhere and new
  writes succeed.

Needs root (to mount the tmpfs), as in CI; skipped with the reason otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest
from nats.aio.client import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.subjects import ping_subject
from runtime.bus import connect, declare_streams, publish_event
from runtime.db import STORAGE_FULL_MESSAGE, UNAVAILABLE_MESSAGE
from sre_copilot import embedded
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, register_tenant
from tests.e2e.test_integrations_alertmanager import alerts_key, am_alert, notification
from tests.fault.conftest import Load, check_invariants, healthy, quiescent
from tests.platforms import bus_of, database_of, supervised

pytestmark = pytest.mark.fault

# Room for the platform's data (PostgreSQL ~45 MB after the migrations, JetStream well under 1 MB
# here) and some growth; a filler file then takes what is left.
DISK_SIZE = "160m"
# How long a command may take to give up on a server that refuses connections.
GIVE_UP_SECONDS = 15.0
# A service on a loaded two-core machine can take this long to say why it waits.
STARTUP_DEADLINE_SECONDS = 60.0


def mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "sre-copilot-test", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {where}: {mounted.stderr.strip()}")


def unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(where)], check=True)  # something still holds a file


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mount_tmpfs(where, size)
    try:
        yield where
    finally:
        unmount(where)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`: most of it at once, then page by page until ENOSPC."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    subprocess.run(["fallocate", "-l", str(max(free - 2**20, 4096)), filler], check=True)
    descriptor = os.open(filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(descriptor)
    return filler


# --- the operator's commands against servers that refuse connections -------------------------------


@dataclass
class Ran:
    code: int | None
    stdout: str
    stderr: str
    seconds: float


async def cli(*args: str, timeout: float = GIVE_UP_SECONDS + 15) -> Ran:
    """`sre-copilot <args>` as a process, with no NATS_URL or DATABASE_URL of the test session's."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sre_copilot",
        *args,
        env=env | {"COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    return Ran(process.returncode, out.decode(), err.decode(), time.monotonic() - started)


@pytest.fixture(scope="module")
def bare_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of its own with the platform's streams and nothing else."""
    server = embedded.start_nats(tmp_path_factory.mktemp("bare-nats"), durable=False)
    try:

        async def declare() -> None:
            nc = await connect(server.url, "tests", reconnect=False)
            await declare_streams(nc.jetstream())
            await nc.close()

        asyncio.run(declare())
        yield server.url
    finally:
        server.stop()


def note_event(tenant: str, n: int) -> EventEnvelope:
    return EventEnvelope(
        type="incident.note_added",
        tenant_id=tenant,
        aggregate_id=str(uuid.uuid4()),
        correlation_id=f"resources-{n}",
        data={
            "incident_id": str(uuid.uuid4()),
            "note_id": str(uuid.uuid4()),
            "body": f"note {n} " + "x" * 400,
            "added_at": datetime.now(UTC).isoformat(),
        },
    )


def exported_line(tenant: str, n: int) -> str:
    event = note_event(tenant, n).model_dump(mode="json")
    return json.dumps({"seq": n, "subject": "", "event": event}) + "\n"


async def test_every_command_gives_up_at_once_with_one_clear_line(bare_nats: str, tmp_path: Path) -> None:
    closed = free_port()
    nats_url, database_url = (
        f"nats://127.0.0.1:{closed}",
        f"postgresql://postgres:s3cret@127.0.0.1:{closed}/db",
    )
    history = tmp_path / "history.jsonl"
    history.write_text("".join(exported_line("t_refused", n) for n in range(1, 4)))
    out = tmp_path / "out" / "export.jsonl"
    out.parent.mkdir()
    commands = {
        "tail": (["events", "tail", "--nats-url", nats_url], "NATS", nats_url),
        "tail --no-follow": (
            ["events", "tail", "--since", "0", "--no-follow", "--nats-url", nats_url],
            "NATS",
            nats_url,
        ),
        "stats": (["events", "stats", "--nats-url", nats_url], "NATS", nats_url),
        "export": (["events", "export", "--out", str(out), "--nats-url", nats_url], "NATS", nats_url),
        "import": (["events", "import", str(history), "--nats-url", nats_url], "NATS", nats_url),
        "rebuild, NATS refused": (
            ["projections", "rebuild", "--verify", "--nats-url", nats_url, "--database-url", database_url],
            "NATS",
            nats_url,
        ),
        "rebuild, PostgreSQL refused": (
            ["projections", "rebuild", "--verify", "--nats-url", bare_nats, "--database-url", database_url],
            "PostgreSQL",
            f"postgresql://postgres:***@127.0.0.1:{closed}/db",
        ),
        "migrate": (
            ["migrate", "--database-url", database_url],
            "PostgreSQL",
            f"postgresql://postgres:***@127.0.0.1:{closed}/db",
        ),
        "ai rerun": (["ai", "rerun", "--nats-url", nats_url], "NATS", nats_url),
    }
    runs = await asyncio.gather(*(cli(*args) for args, _, _ in commands.values()))
    for (name, (_, what, where)), ran in zip(commands.items(), runs, strict=True):
        assert ran.code == 1, f"{name}: exit {ran.code} after {ran.seconds:.1f} s\n{ran.stderr[-2000:]}"
        assert ran.seconds < GIVE_UP_SECONDS, f"{name} took {ran.seconds:.1f} s to give up"
        assert "Traceback" not in ran.stderr, f"{name}:\n{ran.stderr[-2000:]}"
        last = ran.stderr.strip().splitlines()[-1]
        assert last == f"error: cannot reach {what} at {where}: Connection refused", f"{name}: {last!r}"
        assert "s3cret" not in ran.stderr + ran.stdout
    assert list(out.parent.iterdir()) == [], "the export left a file behind"

    # Pointed at a NATS that answers, the same file imports: what failed above was the connection.
    imported = await cli("events", "import", str(history), "--nats-url", bare_nats)
    assert imported.code == 0, imported.stderr
    assert "published 3" in imported.stdout


async def test_an_export_onto_a_full_disk_fails_cleanly_and_leaves_no_partial_file(
    bare_nats: str, tmp_path: Path
) -> None:
    tenant = f"t_{uuid.uuid4().hex[:12]}"
    nc = await connect(bare_nats, "tests", reconnect=False)
    try:
        for n in range(200):
            await publish_event(nc.jetstream(), note_event(tenant, n))
    finally:
        await nc.close()

    with small_disk(tmp_path / "disk", "1m") as disk:
        previous = disk / "acme.jsonl"
        previous.write_text("the previous export\n")
        filler = fill(disk)
        export = ("events", "export", "--out", str(previous), "--tenant", tenant, "--nats-url", bare_nats)
        ran = await cli(*export)
        assert ran.code == 1, ran.stderr
        assert "Traceback" not in ran.stderr, ran.stderr
        last = ran.stderr.strip().splitlines()[-1]
        assert last == f"error: cannot write {previous}: No space left on device", last
        assert previous.read_text() == "the previous export\n", "the failed export touched the old file"
        assert sorted(p.name for p in disk.iterdir()) == ["acme.jsonl", "filler"], "a partial file is left"

        filler.unlink()
        ran = await cli(*export)
        assert ran.code == 0, ran.stderr
        lines = previous.read_text().splitlines()
        assert len(lines) == 200 and all(json.loads(line)["event"]["tenant_id"] == tenant for line in lines)
        assert sorted(p.name for p in disk.iterdir()) == ["acme.jsonl"]


# --- services started against servers that refuse connections ---------------------------------------


async def started_for(
    until: tuple[str, ...],
    module: str,
    env: dict[str, str],
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> tuple[str, float]:
    """Run a service until it has logged every event in `until` (and `meanwhile` has run), then a
    little longer to see it keeps waiting rather than giving up; its log, and how long it took to
    stop on SIGTERM. Waiting for the events, not a fixed time, keeps a slow start on a loaded
    machine from looking like silence."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={**os.environ, "LOG_LEVEL": "INFO", "PORT": str(free_port()), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[bytes] = []

    async def read_until_logged() -> None:
        assert process.stdout is not None
        missing = set(until)
        while missing:
            line = await process.stdout.readline()
            if not line:
                return
            lines.append(line)
            if line.startswith(b"{"):
                missing.discard(json.loads(line).get("event"))

    try:
        reading = asyncio.ensure_future(read_until_logged())
        if meanwhile is not None:
            await meanwhile()
        await asyncio.wait_for(reading, STARTUP_DEADLINE_SECONDS)
        await asyncio.sleep(1)
        assert process.returncode is None, "the service gave up instead of waiting"
    except TimeoutError:
        pass  # the assertions on the log say what is missing
    finally:
        process.terminate()
        stopping = time.monotonic()
        try:
            rest, _ = await asyncio.wait_for(process.communicate(), 10)
        except TimeoutError:
            process.kill()
            rest, _ = await process.communicate()
    return (b"".join(lines) + rest).decode(), time.monotonic() - stopping


def logged(output: str, event: str) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def test_a_service_started_against_refused_servers_waits_and_says_why(bare_nats: str) -> None:
    closed = free_port()
    refused_nats, refused_db = f"nats://127.0.0.1:{closed}", f"postgresql://postgres@127.0.0.1:{closed}/db"
    replies: list[dict[str, Any]] = []

    async def ask_incidents() -> None:
        """Through the bus, of an incidents service whose database refuses connections."""
        nc = await connect(bare_nats, "tests", reconnect=False)
        try:
            caller = {"tenant_id": "t_refused", "user_id": "u_1", "role": "owner"}
            for subject, body in (
                (ping_subject("incidents"), {}),
                ("cmd.incidents.create", {"correlation_id": "refused", "caller": caller, **INCIDENT}),
            ):
                deadline = time.monotonic() + 20
                while True:
                    try:
                        reply = await nc.request(subject, json.dumps(body).encode(), timeout=5)
                        break
                    except nats.errors.NoRespondersError:  # not subscribed yet
                        assert time.monotonic() < deadline, "incidents never answered"
                        await asyncio.sleep(0.2)
                replies.append(json.loads(reply.data))
        finally:
            await nc.close()

    nothing_there = {"NATS_URL": refused_nats, "DATABASE_URL": refused_db}
    no_database = {"NATS_URL": bare_nats, "DATABASE_URL": refused_db}
    (
        (incidents, _),
        (incidents_no_db, _),
        (gateway_no_nats, stopped_in),
        (gateway_no_db, _),
    ) = await asyncio.gather(
        started_for(("nats_unreachable",), "incidents", nothing_there),
        started_for(("command_database_unavailable",), "incidents", no_database, ask_incidents),
        started_for(("dependency_unreachable",), "gateway", nothing_there),
        started_for(("dependency_unreachable",), "gateway", no_database),
    )
    for output in (incidents, incidents_no_db, gateway_no_nats, gateway_no_db):
        assert "Traceback" not in output, output[-3000:]

    # Running without its database, a service answers what it can: it is up, its database is not,
    # and a command is refused as unavailable (the gateway's 503), which it logs.
    pong, created = replies
    assert pong["service"] == "incidents" and pong["database"] is False, pong
    assert created == {"error": {"code": "unavailable", "message": UNAVAILABLE_MESSAGE, "details": None}}
    assert logged(incidents_no_db, "command_database_unavailable"), incidents_no_db[-3000:]

    said = logged(incidents, "nats_unreachable")
    assert said, incidents[-3000:]
    assert said[0]["url"] == refused_nats and said[0]["error"] == "Connection refused", said[0]

    said = logged(gateway_no_nats, "dependency_unreachable")
    assert said, gateway_no_nats[-3000:]
    assert said[0]["error"] == f"cannot reach NATS at {refused_nats}: Connection refused", said[0]
    assert stopped_in < 5, f"the waiting gateway took {stopped_in:.1f} s to stop on SIGTERM"

    said = logged(gateway_no_db, "dependency_unreachable")
    assert said, gateway_no_db[-3000:]
    assert said[0]["error"] == f"cannot reach PostgreSQL at {refused_db}: Connection refused", said[0]


# --- a platform on a small disk ---------------------------------------------------------------------


@dataclass
class DiskPlatform:
    platform: Platform
    disk: Path
    supervising: threading.Event = field(default_factory=threading.Event)

    def server(self, name: str) -> embedded.ServerProcess:
        return next(s for s in self.platform.servers if s.name == name)


@pytest.fixture(scope="module")
def on_small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiskPlatform]:
    """A platform with production durability whose state directory is a small tmpfs, and the
    supervisor's loop (services and embedded servers), which a test can pause."""
    base = tmp_path_factory.mktemp("small-disk")
    with small_disk(base / "disk", DISK_SIZE) as disk:
        platform = Platform(
            state_dir=disk / "state",
            port=free_port(),
            durable=True,
            log_dir=base / "logs",  # beside the disk, not on it
            extra_env={
                "LOG_LEVEL": "WARNING",
                "COALESCE_WINDOW_SECONDS": "0.2",
                "INBOUND_BACKOFF_BASE_SECONDS": "0.1",
            },
        )
        running = DiskPlatform(platform, disk)
        running.supervising.set()
        try:
            with supervised(platform, running.supervising):
                yield running
        finally:
            for log in (platform.state_dir / "postgres.log", platform.state_dir / "nats/nats-server.log"):
                with contextlib.suppress(OSError):  # the servers' own logs, kept off the disk
                    shutil.copy(log, base / "logs")


@pytest.fixture
async def disk_db(on_small_disk: DiskPlatform) -> AsyncIterator[AsyncEngine]:
    async with database_of(on_small_disk.platform) as engine:
        yield engine


@pytest.fixture
async def disk_nc(on_small_disk: DiskPlatform) -> AsyncIterator[Client]:
    async with bus_of(on_small_disk.platform, "resource-tests") as nc:
        yield nc


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("postgres", "the database is unavailable; retry shortly"),
        ("nats", "the message bus is unavailable; retry shortly"),
    ],
)
async def test_a_stopped_server_is_a_503_until_the_supervisor_starts_it_again(
    on_small_disk: DiskPlatform, server: str, message: str
) -> None:
    platform = on_small_disk.platform
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15) as http:
        tenant = await register_tenant(http, "Refused")
        on_small_disk.supervising.clear()
        try:
            stopped = on_small_disk.server(server)
            await asyncio.to_thread(stopped.stop)
            created = await http.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
            assert created.status_code == 503, created.text
            assert created.headers["content-type"] == "application/json"
            assert created.json() == {"error": {"code": "unavailable", "message": message, "details": None}}
            health = await http.get("/health/services")
            assert health.status_code == 503
            assert health.json()["services"][server]["status"] == "unhealthy"
            # Answered, not raised past the answer (which made the server drop the connection, and the
            # client's next request on it fail).
            assert platform.log_dir is not None
            gateway_log = (platform.log_dir / "gateway.log").read_text()
            assert "Exception in ASGI application" not in gateway_log, gateway_log[-3000:]
        finally:
            on_small_disk.supervising.set()  # it starts the server again on the same port and data
        await healthy(platform)
        assert on_small_disk.server(server).process.pid != stopped.process.pid
        created = await http.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
        assert created.status_code == 201, created.text


async def until(check: Callable[[], bool], failure: Callable[[], str], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, failure()
        await asyncio.sleep(0.1)


async def exhaust_wal(database_url: str) -> None:
    """Write WAL (and nothing else) until PostgreSQL needs a new WAL segment it has no room for."""
    try:
        conn = await asyncpg.connect(database_url)
    except (asyncpg.PostgresError, OSError):
        return  # its own writes got there first
    try:
        for _ in range(64):  # a segment is 16 MB
            await conn.execute("SELECT pg_logical_emit_message(false, 'fault-test', repeat('x', 1000000))")
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        return  # the server went away in the middle: its WAL writer PANICked
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=1)
    raise AssertionError("64 MB of WAL written onto a full disk")


@dataclass
class AlertSender:
    """Alertmanager notifications, each of a group of its own, while the disk fills and empties."""

    platform: Platform
    key: str
    answers: list[tuple[str, int, str]] = field(default_factory=list)  # group, status, message
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=self.platform.gateway_url, timeout=15) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                group = f'{{}}:{{alertname="DiskFull{n}", run="{uuid.uuid4().hex[:8]}"}}'
                body = notification(am_alert(f"fp-{n}"), group_key=group)
                try:
                    sent = await http.post("/api/v1/integrations/alertmanager", json=body, headers=headers)
                except httpx.TransportError:
                    self.answers.append((group, 0, "connection"))
                    continue
                try:
                    answer = "" if sent.status_code == 202 else str(sent.json()["error"]["message"])
                except (ValueError, KeyError, TypeError):
                    answer = "not JSON"
                self.answers.append((group, sent.status_code, answer))
                await asyncio.sleep(0.2)


async def test_a_full_disk_refuses_writes_cleanly_and_the_platform_recovers(
    on_small_disk: DiskPlatform, disk_db: AsyncEngine, disk_nc: Client
) -> None:
    platform, js = on_small_disk.platform, disk_nc.jetstream()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15) as http:
        tenant = await register_tenant(http, f"Full disk {uuid.uuid4().hex[:6]}")
        alerts = AlertSender(platform, await alerts_key(http, tenant))
    # One client's incidents fit in the pages PostgreSQL has left, so some writes still commit while
    # the disk is full and their events meet a JetStream store that cannot grow; the others' need
    # new pages and are refused.
    load = Load(platform, tenant, big_writers=2)
    load.start(clients=3)
    sending = asyncio.create_task(alerts.run())
    await asyncio.sleep(1.5)
    before = sum(load.statuses.values())
    postgres = on_small_disk.server("postgres")

    filler = fill(on_small_disk.disk)
    try:
        # PostgreSQL refuses what needs new pages; what still commits has its events meet a JetStream
        # store that cannot grow (nats-server's /healthz then names the stream's write error).
        # A creation must be among the refused (a refused move alone would leave the "refused creation
        # exists nowhere" check below with nothing to check).
        await until(
            lambda: any(message == STORAGE_FULL_MESSAGE for _title, _status, message in load.refused),
            lambda: f"no creation refused for the full disk: {load.statuses}, {load.server_errors}",
            seconds=40.0,
        )
        nats = on_small_disk.server("nats")
        await until(
            lambda: embedded.nats_store_failure(nats) is not None, lambda: "the JetStream store did not fail"
        )
        # Then PostgreSQL's WAL runs out too: it PANICs, fails its crash recovery for want of space
        # and exits; the supervisor tries it again (in vain until there is room).
        assert platform.database_url
        await exhaust_wal(platform.database_url)
        await until(lambda: postgres.process.poll() is not None, lambda: "PostgreSQL outlived a full WAL")
        await asyncio.sleep(2.0)  # writes meanwhile: 503, the database is unavailable
    finally:
        filler.unlink()
    while_full = Counter(load.statuses)
    await healthy(platform, 90)
    accepted_before_recovery = len(load.accepted_incidents)
    deadline = time.monotonic() + 30
    while len(load.accepted_incidents) < accepted_before_recovery + 3:  # writes succeed again
        assert time.monotonic() < deadline, f"no write succeeded after the disk was freed: {load.statuses}"
        await asyncio.sleep(0.2)
    alerts.stop.set()
    await load.finish_writes()
    await sending

    print(f"before {before}, while full {while_full}, at the end {load.statuses}; {load.server_errors}")
    # The JetStream store failed too, and the supervisor restarts both servers once there is room. Its
    # store check runs every second, so writes that only needed PostgreSQL may succeed before nats-server
    # is restarted: wait for the restart rather than expect it already done.
    await until(
        lambda: on_small_disk.server("nats").process.pid != nats.process.pid,
        lambda: "the supervisor never restarted nats-server after its store failed",
        seconds=30.0,
    )
    assert on_small_disk.server("postgres").process.pid != postgres.process.pid
    # While the disk was full, writes were refused with the documented JSON error (no 500, no HTML).
    assert load.statuses["503"] > 0, f"the full disk refused no write: {load.statuses}"
    assert "not JSON" not in str(load.server_errors), load.server_errors
    assert set(load.server_errors) <= {
        f"503 {STORAGE_FULL_MESSAGE}",
        "503 the database is unavailable; retry shortly",
        "503 the message bus is unavailable; retry shortly",
        "503 incidents is unavailable",
        "504 incidents did not answer in time",
    }, load.server_errors
    assert any(STORAGE_FULL_MESSAGE in error for error in load.server_errors), load.server_errors

    # Nothing half-exists: every accepted write exactly once in the tables, the stream and the read
    # models; a creation refused for the full disk nowhere; the live feed saw every event once.
    await check_invariants(load, js, disk_db)
    async with disk_db.connect() as conn:
        titles = Counter(
            r.title
            for r in await conn.execute(
                text("SELECT title FROM incidents.incidents WHERE tenant_id = :t"), {"t": tenant.tenant_id}
            )
        )
    refused_for_space = {title for title, _status, message in load.refused if message == STORAGE_FULL_MESSAGE}
    assert refused_for_space, load.refused
    assert not refused_for_space & set(titles), "a creation refused for the full disk exists"
    assert all(n == 1 for title, n in titles.items() if title.startswith("load ")), "a creation twice"

    # Every notification answered 202 was kept and worked on once; a refused one was not kept.
    assert {status for _, status, _ in alerts.answers} <= {202, 503}, Counter(s for _, s, _ in alerts.answers)
    kept = {group for group, status, _ in alerts.answers if status == 202}
    refused = {group for group, status, _ in alerts.answers if status != 202}
    deadline = time.monotonic() + 60
    while True:
        async with disk_db.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT i.group_key, i.status, g.incident_id FROM integrations.inbound i "
                        "LEFT JOIN integrations.alert_groups g ON g.tenant_id = i.tenant_id "
                        "AND g.group_key = i.group_key WHERE i.tenant_id = :t"
                    ),
                    {"t": tenant.tenant_id},
                )
            ).all()
        if all(r.status == "processed" for r in rows) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert Counter(r.group_key for r in rows) == Counter(kept), "a kept notification is missing or doubled"
    assert not refused & {r.group_key for r in rows}, "a refused notification was kept"
    assert all(r.status == "processed" and r.incident_id for r in rows), [tuple(r) for r in rows]
    await quiescent(js, disk_db)
