"""A platform of a test's own, started and stopped (with the supervisor's restart loop, for the fault
tests), and its database and bus: one piece for the session's platform and every module that runs
its own."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.bus import connect
from runtime.db import create_engine
from sre_copilot.supervisor import Platform


@contextlib.contextmanager
def started(platform: Platform) -> Iterator[Platform]:
    try:
        platform.start_dependencies()
        platform.start_services()
        platform.wait_gateway()
        yield platform
    finally:
        platform.stop()


@contextlib.contextmanager
def supervised(platform: Platform, supervising: threading.Event | None = None) -> Iterator[Platform]:
    """Started, with the supervisor's restart loop in a thread (while `supervising` is set, when
    given: a test can pause it)."""
    stop = threading.Event()

    def supervise() -> None:
        while not stop.is_set():
            if supervising is None or supervising.is_set():
                platform.supervise_once()
            time.sleep(0.1)

    supervisor = threading.Thread(target=supervise, name="supervisor", daemon=True)
    try:
        with started(platform):
            supervisor.start()
            try:
                yield platform
            finally:
                stop.set()
                supervisor.join(30)
    finally:
        stop.set()


@contextlib.asynccontextmanager
async def database_of(platform: Platform, pool_size: int = 2) -> AsyncIterator[AsyncEngine]:
    assert platform.database_url
    engine = create_engine(platform.database_url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def bus_of(platform: Platform, name: str) -> AsyncIterator[Client]:
    assert platform.nats_url
    nc = await connect(platform.nats_url, name)
    try:
        yield nc
    finally:
        await nc.close()
