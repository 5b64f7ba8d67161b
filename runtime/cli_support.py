"""What every `sre-copilot` verb shares, whichever service offers it: the options naming NATS,
PostgreSQL and the running `up`, and one clear line with exit status 1 instead of a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from nats.js import JetStreamContext

T = TypeVar("T")

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir", help="Where the embedded servers keep their data.", envvar="SRE_COPILOT_STATE_DIR"
    ),
]


DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="DATABASE_URL", help="Default: the running `up` in --state-dir."),
]


NatsUrl = Annotated[
    str | None,
    typer.Option("--nats-url", envvar="NATS_URL", help="Default: the running `up` in --state-dir."),
]


def nats_url_of(nats_url: str | None, state_dir: Path) -> str:
    return nats_url or runtime_value(state_dir, "nats_url")


def runtime_value(state_dir: Path, key: str) -> str:
    from runtime.replay import ReplayError, runtime_urls

    try:
        return runtime_urls(state_dir.resolve())[key]
    except ReplayError as exc:
        raise typer.BadParameter(str(exc)) from exc


def parse_since(value: str | None) -> tuple[int | None, datetime | None]:
    """`--since` takes a stream sequence (`1234`) or a time (`2026-11-25T10:00:00Z`)."""
    if value is None:
        return None, None
    if value.isdigit():
        return int(value), None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter("--since takes a sequence number or an ISO 8601 time") from exc
    return None, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fail(message: str) -> NoReturn:
    """One line on stderr and exit status 1: what an operator needs, rather than a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run(work: Coroutine[Any, Any, T], database_url: str | None = None) -> T:
    """Run a command's async part. NATS or PostgreSQL out of reach, or an export that cannot be
    written, ends it with one clear line and a non-zero status."""
    import nats.errors

    from runtime.bus import BusUnreachable, connection_failure
    from runtime.db import database_failure, is_unavailable
    from runtime.replay import ReplayError

    try:
        return asyncio.run(work)
    except (BusUnreachable, ReplayError) as exc:
        fail(str(exc))
    except nats.errors.Error as exc:  # the connection was lost or the server stopped answering
        fail(f"NATS failed: {connection_failure(exc)}")
    except Exception as exc:
        if database_url is not None and is_unavailable(exc):
            fail(database_failure(database_url, exc))
        raise


async def with_js(url: str, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    from runtime.bus import connect

    nc = await connect(url, "sre-copilot-cli", reconnect=False)
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()
