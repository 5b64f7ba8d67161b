"""The gateway's `sre-copilot` verbs: `projections rebuild` and `projections skip`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from nats.js import JetStreamContext
from rich.console import Console
from rich.progress import Progress

from runtime.cli_support import (
    DatabaseUrl,
    NatsUrl,
    StateDir,
    fail,
    nats_url_of,
    run,
    runtime_value,
    with_js,
)

projections_app = typer.Typer(
    help="Rebuild and verify read models from the event log; move the projector past an event.",
    no_args_is_help=True,
)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Option(help="Which read models (only `gateway` exists).")] = "gateway",
    verify: Annotated[
        bool, typer.Option(help="Compare a rebuild with the live read models; change nothing.")
    ] = False,
    nats_url: NatsUrl = None,
    database_url: DatabaseUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Rebuild the gateway's read models from sequence 1 into fresh tables and swap them in
    atomically; the live gateway keeps serving the old ones meanwhile. With --verify, report every
    difference between a rebuild and the live read models instead."""
    from gateway.projection.rebuild import rebuild
    from runtime.db import create_engine

    if name != "gateway":
        raise typer.BadParameter("the only projection is `gateway`")
    nats = nats_url_of(nats_url, state_dir)
    db_url = database_url or runtime_value(state_dir, "database_url")

    async def work(js: JetStreamContext) -> Any:
        from contracts.subjects import EVENTS_STREAM

        engine = create_engine(db_url, pool_size=2)
        total = (await js.stream_info(EVENTS_STREAM)).state.messages
        try:
            with Progress(console=Console(stderr=True)) as progress:
                task = progress.add_task("replaying", total=total)
                return await rebuild(
                    engine, js, verify=verify, progress=lambda n: progress.advance(task, n), nats_url=nats
                )
        finally:
            await engine.dispose()

    report = run(with_js(nats, work), database_url=db_url)
    typer.echo(
        f"replayed {report.events} events up to sequence {report.up_to_seq} in {report.seconds:.2f} s "
        f"({report.rate:,.0f} events/s); skipped {report.skipped} unreadable"
    )
    if verify:
        for diff in report.differences:
            typer.echo(
                f"  {diff.table}: {diff.only_live} row(s) only live, {diff.only_rebuilt} only rebuilt; "
                f"e.g. {'; '.join(diff.examples)}"
            )
        typer.echo(
            "no differences" if not report.differences else f"{len(report.differences)} table(s) differ"
        )
        if report.differences:
            raise typer.Exit(1)
    else:
        typer.echo("swapped the rebuilt read models in")


@projections_app.command("skip")
def projections_skip(
    seq: Annotated[int, typer.Argument(help="The stream sequence the projector is stalled at.")],
    reason: Annotated[
        str | None, typer.Option(help="Why (kept with the skip, and as the dead letter's error).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip a sequence the projector is not stalled at (yet).")
    ] = False,
    nats_url: NatsUrl = None,
    database_url: DatabaseUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Move the gateway's projector past an event it cannot apply: copy the event to
    dlq.gateway_projector (to replay it later) and record the skip, which the projector honours
    by passing exactly that sequence. Refused for any sequence but the one it is stalled at,
    unless --force."""
    from gateway.projection.skip import SkipRefused, skip
    from runtime.db import create_engine

    nats = nats_url_of(nats_url, state_dir)
    db_url = database_url or runtime_value(state_dir, "database_url")

    async def work(js: JetStreamContext) -> Any:
        engine = create_engine(db_url, pool_size=1)
        try:
            return await skip(engine, js, seq, reason, force)
        finally:
            await engine.dispose()

    try:
        report = run(with_js(nats, work), database_url=db_url)
    except SkipRefused as exc:
        fail(str(exc))
    typer.echo(report.describe())
