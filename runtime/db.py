"""Database connections: one async SQLAlchemy engine per process, on asyncpg."""

from __future__ import annotations

import errno
import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection


def sqlalchemy_url(database_url: str) -> str:
    """Accept plain `postgresql://` URLs (what operators write) and select the asyncpg driver."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


def asyncpg_dsn(database_url: str) -> str:
    """The same URL for asyncpg itself, which knows no driver suffix."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "sre_checked_in_at"


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(sqlalchemy_url(database_url), pool_size=pool_size, max_overflow=pool_size)
    _ping_stale_connections(engine)
    return engine


def _ping_stale_connections(engine: AsyncEngine) -> None:
    """`pool_pre_ping` without its round trip on every checkout (it was ~10% of a consumer's CPU:
    a consumer checks out three connections per event). A connection whose socket the server closed
    (a restart, `pg_terminate_backend`) is known closed locally and replaced without a round trip;
    one that sat idle past `PING_AFTER_IDLE_SECONDS` (where a silent network drop could hide) is
    pinged as `pool_pre_ping` would. What is left, a connection cut without a word within the last
    second, fails its statement as it could after a ping too: SQLAlchemy then invalidates the whole
    pool, the consumers wait the outage out (`through_outages`) and a request answers 503."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in_at is None:
            return  # just connected
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise exc.InvalidatePoolError()
        if time.monotonic() - checked_in_at >= PING_AFTER_IDLE_SECONDS and not dialect._do_ping_w_event(
            dbapi_connection
        ):
            raise exc.InvalidatePoolError()


STORAGE_FULL_MESSAGE = "the database is out of disk space; retry once space is freed"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry shortly"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (SQLAlchemy wraps the driver's error, which wraps asyncpg's)."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def is_storage_full(exc: BaseException) -> bool:
    """True when the database (SQLSTATE 53100 `disk_full`) or this machine has no space left."""
    import asyncpg

    return any(
        isinstance(e, asyncpg.DiskFullError) or (isinstance(e, OSError) and e.errno == errno.ENOSPC)
        for e in _causes(exc)
    )


def is_unavailable(exc: BaseException) -> bool:
    """True for failures that mean "the database cannot serve this right now" (down, restarting,
    connection lost, pool exhausted, or out of resources: a full disk, memory, connections): callers
    answer 503 and retry, rather than report a bug or give up on the message."""
    import asyncpg
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError | sa.DisconnectionError):
        return True
    unavailable = (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError,
        asyncpg.InsufficientResourcesError,  # SQLSTATE class 53
        ConnectionError,
        OSError,
    )
    return isinstance(exc, unavailable) or (exc.__cause__ is not None and is_unavailable(exc.__cause__))


def is_invalid_value(exc: BaseException) -> bool:
    """True for SQLSTATE class 22 (data exception: a value the database cannot hold, such as a NUL
    character in text or JSONB, or a number out of range): bad input, not a bug. SQLAlchemy raises
    most of them as `DataError`, but some (JSONB's `\\u0000`) only as a bare `DBAPIError`."""
    for e in _causes(exc):
        code = getattr(e, "sqlstate", None) or getattr(getattr(e, "orig", None), "sqlstate", None)
        if isinstance(code, str) and code.startswith("22"):
            return True
    from sqlalchemy import exc as sa

    return isinstance(exc, sa.DataError)


# SQLSTATE class 40, "transaction rollback": the transaction lost a race with another one
# (40P01 deadlock_detected, 40001 serialization_failure, 40003 statement_completion_unknown) and
# the same work succeeds when retried. 40002 is a deferred constraint that failed at commit: the
# data's fault, which a retry only repeats.
_NOT_A_CONFLICT = frozenset({"40002"})


def is_transaction_conflict(exc: BaseException) -> bool:
    """True when the database rolled the transaction back for racing another (a deadlock, a
    serialization failure): retry it, as often as it takes; the data is not at fault."""
    for cause in _causes(exc):
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and state.startswith("40"):
            return state not in _NOT_A_CONFLICT
    return False


def unavailable_message(exc: BaseException) -> str:
    """What a 503 says about an unavailable database: a full disk is named as such."""
    return STORAGE_FULL_MESSAGE if is_storage_full(exc) else UNAVAILABLE_MESSAGE


def database_failure(database_url: str, exc: BaseException) -> str:
    """One line for an operator about an unavailable database: which one, and why."""
    if is_storage_full(exc):
        return STORAGE_FULL_MESSAGE
    from runtime.bus import connection_failure
    from runtime.logging import redact_url

    lines = connection_failure(_causes(exc)[-1]).splitlines() or [type(exc).__name__]
    return f"cannot reach PostgreSQL at {redact_url(database_url)}: {lines[0]}"
