"""runtime.db's checkout check, which replaced `pool_pre_ping`: a pooled connection the server ended
is never handed out, and only a connection idle for a while costs a round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

import runtime.db
from runtime.db import create_engine
from sre_copilot.supervisor import Platform


async def test_a_connection_the_server_ended_is_replaced_and_a_busy_one_is_not_pinged(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert platform.database_url
    engine = create_engine(platform.database_url, pool_size=1)
    admin = create_engine(platform.database_url, pool_size=1)
    pings: list[object] = []
    original_ping = engine.sync_engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return original_ping(dbapi_connection)

    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", counting_ping)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        for _ in range(5):  # checked out again at once: no ping, the same session
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT pg_backend_pid()")) == first
        assert pings == []

        async with admin.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            await other.commit()
        await asyncio.sleep(0.5)  # the server's close reaches the pooled connection's socket
        # The checkout hands out a new session instead of the ended one: no error reaches the caller.
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first

        # Idle past the threshold: pinged, as `pool_pre_ping` did on every checkout.
        monkeypatch.setattr(runtime.db, "PING_AFTER_IDLE_SECONDS", 0.0)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == second
        assert len(pings) == 1
    finally:
        await engine.dispose()
        await admin.dispose()
