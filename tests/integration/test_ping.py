"""`sre-copilot ping SERVICE`, the probe of the bus-only services (compose healthchecks, Kubernetes
exec probes), run as a separate process as a probe runs it: against the session's platform, and
against a NATS server of its own where a service has no database, hangs, or is gone."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from contracts.subjects import SERVICES, host_ping_subject, ping_subject
from sre_copilot.embedded import ServerProcess, free_port, start_nats
from sre_copilot.supervisor import Platform

ROOT = Path(__file__).resolve().parents[2]


def ping(nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide: typer wraps a usage error in a box as wide as the terminal.
    env = {**os.environ, "NATS_URL": nats_url, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "sre_copilot", "ping", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_bus_only_service_answers(platform: Platform, service: str) -> None:
    assert platform.nats_url
    done = ping(platform.nats_url, service)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{service} (") and "answered in" in done.stdout


def test_local_asks_a_replica_on_this_host(platform: Platform) -> None:
    assert platform.nats_url
    done = ping(platform.nats_url, "incidents", "--local")
    assert done.returncode == 0, done.stderr


def test_a_cluster_url_list_moves_past_a_dead_server(platform: Platform) -> None:
    """NATS_URL as a cluster gives it: the first server is down, the next one answers."""
    assert platform.nats_url
    done = ping(f"nats://127.0.0.1:{free_port()},{platform.nats_url}", "auth", "--timeout", "5")
    assert done.returncode == 0, done.stderr


def test_no_nats_is_one_line_and_non_zero() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    done = ping(url, "incidents")
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: cannot reach NATS at {url}: Connection refused"


def test_the_gateway_and_unknown_names_are_refused() -> None:
    done = ping("nats://127.0.0.1:1", "gateway")
    assert done.returncode == 2 and "GET /health" in done.stderr
    assert ping("nats://127.0.0.1:1", "billing").returncode == 2


@pytest.fixture(scope="module")
def bare_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A NATS server of this module's own, with no service on it."""
    server = start_nats(tmp_path_factory.mktemp("ping-nats"), durable=False)
    try:
        yield server
    finally:
        server.stop()


def test_a_service_that_is_not_running_fails_at_once(bare_nats: ServerProcess) -> None:
    started = time.monotonic()
    done = ping(bare_nats.url, "ai_worker", "--timeout", "30")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: ai_worker is not running: nothing answers {ping_subject('ai_worker')} on this NATS"
    )
    # "No responders" is the server's own answer: no waiting out the 30 s timeout.
    assert time.monotonic() - started < 25


async def test_a_service_that_does_not_answer_times_out(bare_nats: ServerProcess) -> None:
    """Something holds the subscription but never replies (a stuck process)."""
    nc = await nats.connect(bare_nats.url)
    try:
        await nc.subscribe(ping_subject("integrations"), cb=_ignore)
        await nc.flush()
        done = await _ping_async(bare_nats.url, "integrations", "--timeout", "0.5")
    finally:
        await nc.close()
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: integrations did not answer within 0.5 s ({ping_subject('integrations')})"
    )


async def _ignore(msg: Msg) -> None:
    return None


async def _ping_async(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(ping, url, *args)


@pytest.fixture
def service_without_database(bare_nats: ServerProcess, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `incidents` process whose PostgreSQL is out of reach."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NATS_URL": bare_nats.url,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/sre_copilot",
    }
    with (tmp_path / "incidents.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sre_copilot", "service", "incidents"], env=env, stdout=log, stderr=log
        )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_database_out_of_reach_then_stopped(
    bare_nats: ServerProcess, service_without_database: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while (done := ping(bare_nats.url, "incidents", "--local")).stderr.startswith(
        "error: incidents on"
    ) and time.monotonic() < deadline:
        time.sleep(0.2)  # still starting
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: incidents (")
    assert done.stderr.strip().endswith("answers but cannot reach its database")
    # A liveness probe: restarting the service would not bring the database back.
    alive = ping(bare_nats.url, "incidents", "--local", "--ignore-database")
    assert alive.returncode == 0, alive.stderr
    assert "(its database is unreachable)" in alive.stdout

    service_without_database.kill()
    service_without_database.wait()
    gone = ping(bare_nats.url, "incidents", "--local")
    assert gone.returncode == 1
    assert gone.stderr.strip() == (
        f"error: incidents on {socket.gethostname()} is not running: nothing answers "
        f"{host_ping_subject('incidents', socket.gethostname())} on this NATS"
    )
