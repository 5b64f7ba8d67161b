"""The `sre-copilot` command."""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Annotated

import typer

from contracts.subjects import SERVICES
from runtime.logging import configure_logging

app = typer.Typer(help="SRE Copilot: incident response for SRE teams.", no_args_is_help=True)

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir", help="Where the embedded servers keep their data.", envvar="SRE_COPILOT_STATE_DIR"
    ),
]


@app.command()
def up(
    port: Annotated[int, typer.Option(help="The gateway's HTTP port.")] = 8000,
    host: Annotated[str, typer.Option(help="The gateway's bind address.")] = "127.0.0.1",
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Run the whole platform. Without NATS_URL / DATABASE_URL it starts embedded nats-server and
    PostgreSQL with their data under --state-dir; Ctrl-C stops everything."""
    from runtime.supervisor import Platform, run_forever

    configure_logging("supervisor", os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json"))
    platform = Platform(
        state_dir=state_dir.resolve(),
        port=port,
        host=host,
        nats_url=os.environ.get("NATS_URL") or None,
        database_url=os.environ.get("DATABASE_URL") or None,
    )
    run_forever(platform)


@app.command()
def migrate(
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL", help="PostgreSQL URL.")],
) -> None:
    """Apply the database migrations (every service's schema) up to the latest."""
    from runtime.migrate import upgrade

    upgrade(database_url)
    typer.echo("migrated to the latest revision")


@app.command()
def service(
    name: Annotated[str, typer.Argument(help=f"One of: gateway, {', '.join(SERVICES)}")],
) -> None:
    """Run one service in the foreground (what each container of compose.yaml runs)."""
    if name not in ("gateway", *SERVICES):
        raise typer.BadParameter(f"unknown service {name!r}")
    runpy.run_module(name, run_name="__main__")


if __name__ == "__main__":
    app()
