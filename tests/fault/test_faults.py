"""Fault injection: under a steady load, one fault at a time; afterwards nothing is lost or doubled.

Run on their own with `./test.sh -m fault` (they also run in the whole suite)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from sre_copilot import embedded
from sre_copilot.supervisor import Platform
from tests.fault.conftest import Load, check_invariants, healthy

pytestmark = pytest.mark.fault

LOAD_SECONDS = 2.0


def child_pid(platform: Platform, name: str) -> int:
    child = next(c for c in platform.children if c.name == name)
    assert child.process is not None
    return child.process.pid


async def kill_and_recover(platform: Platform, service: str) -> None:
    pid = child_pid(platform, service)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while child_pid(platform, service) == pid:  # the supervisor starts a new one
        assert time.monotonic() < deadline, f"{service} was not restarted"
        await asyncio.sleep(0.1)
    await healthy(platform)


@pytest.mark.parametrize("service", ["incidents", "ai_worker", "gateway", "integrations"])
async def test_kill_9_of_a_service_loses_nothing(
    fault_platform: Platform, load: Load, fault_db: AsyncEngine, fault_nc: Client, service: str
) -> None:
    load.start()
    await asyncio.sleep(LOAD_SECONDS)
    await kill_and_recover(fault_platform, service)
    await asyncio.sleep(LOAD_SECONDS)
    await load.finish_writes()
    await check_invariants(load, fault_nc.jetstream(), fault_db)


def _server(platform: Platform, name: str) -> embedded.ServerProcess:
    return next(s for s in platform.servers if s.name == name)


async def test_kill_9_and_restart_of_nats_server_loses_nothing(
    fault_platform: Platform, load: Load, fault_db: AsyncEngine, fault_nc: Client
) -> None:
    load.start()
    await asyncio.sleep(LOAD_SECONDS)
    nats = _server(fault_platform, "nats")
    nats.process.kill()  # no chance to flush: only fsynced (acknowledged) events survive
    nats.process.wait(10)
    await asyncio.sleep(1.0)
    restarted = await asyncio.to_thread(
        embedded.start_nats, fault_platform.state_dir, nats.port, durable=fault_platform.durable
    )
    fault_platform.servers[fault_platform.servers.index(nats)] = restarted
    await healthy(fault_platform)
    await asyncio.sleep(LOAD_SECONDS)
    await load.finish_writes()
    await check_invariants(load, fault_nc.jetstream(), fault_db)


async def test_restart_of_postgresql_loses_nothing(
    fault_platform: Platform, load: Load, fault_db: AsyncEngine, fault_nc: Client
) -> None:
    load.start()
    await asyncio.sleep(LOAD_SECONDS)
    postgres = _server(fault_platform, "postgres")
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(2.0)  # writes meanwhile answer 503, and consumers hold their messages
    restarted = await asyncio.to_thread(
        embedded.start_postgres, fault_platform.state_dir, postgres.port, durable=fault_platform.durable
    )
    fault_platform.servers[fault_platform.servers.index(postgres)] = restarted
    await healthy(fault_platform)
    await asyncio.sleep(LOAD_SECONDS)
    await load.finish_writes()
    await check_invariants(load, fault_nc.jetstream(), fault_db)
