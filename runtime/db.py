"""Database connections: one async SQLAlchemy engine per process, on asyncpg."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def is_unavailable(exc: BaseException) -> bool:
    """True for failures that mean "the database cannot be reached right now" (down, restarting,
    connection lost, pool exhausted): callers answer 503 and retry, rather than report a bug."""
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
        ConnectionError,
        OSError,
    )
    return isinstance(exc, unavailable) or (exc.__cause__ is not None and is_unavailable(exc.__cause__))
