"""The `sre-copilot` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import runpy
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from nats.js import JetStreamContext
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ai_worker.cli import ai_app
from contracts.subjects import SERVICES
from gateway.cli import projections_app
from runtime.cli_support import (
    NatsUrl,
    StateDir,
    fail,
    nats_url_of,
    parse_since,
    run,
    with_js,
)
from runtime.logging import configure_logging
from sre_copilot.dlq_cli import dlq_app

T = TypeVar("T")

app = typer.Typer(help="SRE Copilot: incident response for SRE teams.", no_args_is_help=True)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="The gateway's HTTP port.")] = 8000,
    host: Annotated[str, typer.Option(help="The gateway's bind address.")] = "127.0.0.1",
    state_dir: StateDir = Path(".sre-copilot"),
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart a service when its code changes (development).")
    ] = False,
    nats_nodes: Annotated[
        int,
        typer.Option(
            min=1, max=5, help="Embedded NATS as a cluster of this many nodes (the streams on up to three)."
        ),
    ] = 1,
    replicas: Annotated[
        int, typer.Option(min=1, max=8, help="Processes of every service (the gateways share the port).")
    ] = 1,
) -> None:
    """Run the whole platform. Without NATS_URL / DATABASE_URL it starts embedded nats-server and
    PostgreSQL with their data under --state-dir; Ctrl-C stops everything. With --reload, a change
    under runtime/ or contracts/ restarts every service, one under a service's package that one.
    `--nats-nodes 3 --replicas 2` runs a local cluster: three routed NATS nodes with the streams
    replicated on all three, and two processes of every service."""
    from sre_copilot.supervisor import Platform, run_forever

    if nats_nodes > 1 and os.environ.get("NATS_URL"):
        raise typer.BadParameter(
            "--nats-nodes starts embedded NATS nodes: unset NATS_URL", param_hint="--nats-nodes"
        )

    configure_logging("supervisor", os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json"))
    platform = Platform(
        state_dir=state_dir.resolve(),
        port=port,
        host=host,
        nats_url=os.environ.get("NATS_URL") or None,
        database_url=os.environ.get("DATABASE_URL") or None,
        reload=reload,
        nats_nodes=nats_nodes,
        replicas=replicas,
    )
    run_forever(platform)


@app.command()
def migrate(
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL", help="PostgreSQL URL.")],
) -> None:
    """Apply the database migrations (every service's schema) up to the latest."""
    from runtime.db import database_failure, is_unavailable
    from sre_copilot.migrate import upgrade

    try:
        upgrade(database_url)
    except Exception as exc:
        if is_unavailable(exc):
            fail(database_failure(database_url, exc))
        raise
    typer.echo("migrated to the latest revision")


@app.command()
def service(
    name: Annotated[
        str,
        typer.Argument(
            help=f"One of: gateway, {', '.join(SERVICES)}",
            envvar="SRE_COPILOT_SERVICE",  # each image of the CI's matrix sets it
        ),
    ],
) -> None:
    """Run one service in the foreground (what each container of compose.yaml runs)."""
    if name not in ("gateway", *SERVICES):
        raise typer.BadParameter(f"unknown service {name!r}")
    runpy.run_module(name, run_name="__main__")


@app.command()
def ping(
    name: Annotated[str, typer.Argument(metavar="SERVICE", help=f"One of: {', '.join(SERVICES)}")],
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the answer, connecting included.")
    ] = 2.0,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Only a replica on this host may answer (what a container's health probe runs).",
        ),
    ] = False,
    ignore_database: Annotated[
        bool,
        typer.Option(
            "--ignore-database",
            help="Succeed even when the service cannot reach PostgreSQL (a liveness probe: "
            "restarting it would not bring the database back).",
        ),
    ] = False,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Ask a bus-only service whether it is up: exit 0 when a replica answers and reaches its
    database, 1 with one line on stderr otherwise. The gateway is probed over HTTP (GET /health)."""
    import socket
    import time

    import nats.errors

    from contracts.commands import Pong
    from contracts.subjects import host_ping_subject, ping_subject
    from runtime.bus import BusUnreachable, connect
    from runtime.logging import redact_url

    if name not in SERVICES:
        hint = " (the gateway answers over HTTP: GET /health)" if name == "gateway" else ""
        raise typer.BadParameter(f"unknown service {name!r}{hint}; one of: {', '.join(SERVICES)}")
    url = nats_url_of(nats_url, state_dir)
    host = socket.gethostname()
    subject = host_ping_subject(name, host) if local else ping_subject(name)
    who = f"{name} on {host}" if local else name

    async def ask() -> tuple[Pong, float]:
        async with asyncio.timeout(timeout):
            try:
                nc = await connect(url, "sre-copilot-ping", reconnect=False)
            except TimeoutError as exc:
                raise BusUnreachable(f"cannot reach NATS at {redact_url(url)}: timed out") from exc
            try:
                started = time.perf_counter()
                reply = await nc.request(subject, b"{}", timeout=timeout)
                return Pong.model_validate_json(reply.data), time.perf_counter() - started
            finally:
                await nc.close()

    try:
        pong, seconds = asyncio.run(ask())
    except BusUnreachable as exc:
        fail(str(exc))
    except nats.errors.NoRespondersError:
        fail(f"{who} is not running: nothing answers {subject} on this NATS")
    except (TimeoutError, nats.errors.TimeoutError):
        fail(f"{who} did not answer within {timeout:g} s ({subject})")
    except nats.errors.Error as exc:
        fail(f"NATS failed: {exc}")
    if not pong.database and not ignore_database:
        fail(f"{name} ({pong.instance}) answers but cannot reach its database")
    state = "" if pong.database else " (its database is unreachable)"
    typer.echo(f"{name} ({pong.instance}) answered in {seconds * 1000:.1f} ms{state}")


@app.command()
def mcp(
    url: Annotated[
        str,
        typer.Option(
            help="The platform, e.g. http://127.0.0.1:8000 (its /mcp endpoint).", envvar="SRE_COPILOT_URL"
        ),
    ] = "http://127.0.0.1:8000",
    key: Annotated[
        str,
        typer.Option(
            help="An integration key with mcp:read (and mcp:write for the write tools).",
            envvar="SRE_COPILOT_KEY",
        ),
    ] = "",
) -> None:
    """Serve the platform's MCP tools over stdio, for assistants that launch a command (Claude
    Desktop, Claude Code): every call goes to the running platform at --url with the key."""
    from sre_copilot.mcp_stdio import PlatformUnreachable, serve

    if not key:
        fail("--key (or SRE_COPILOT_KEY) is required: an integration key with the scope mcp:read")
    try:
        asyncio.run(serve(url, key))
    except PlatformUnreachable as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


events_app = typer.Typer(help="Read, follow, export and import the event log.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(projections_app, name="projections")
app.add_typer(ai_app, name="ai")


@events_app.command("tail")
def events_tail(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's events.")] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only these event types (repeatable).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Start after this sequence, or at this time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep waiting for new events.")] = True,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Follow the stream, one readable line per event (or --json). Without --since it starts with the
    next event; `--since 0` starts from the beginning."""
    from runtime.replay import StoredEvent, describe, read_events, subject_filters

    since_seq, since_time = parse_since(since)
    console = Console(highlight=False)

    async def work(js: JetStreamContext) -> None:
        async for stored in read_events(
            js, subject_filters(tenant, type_ or ()), since_seq, since_time, follow=follow
        ):
            if not isinstance(stored, StoredEvent):
                console.print(f"[red]{stored.metadata.sequence.stream}: not an event envelope[/red]")
            elif as_json:
                print(json.dumps(stored.to_json()), flush=True)
            else:
                console.print(describe(stored), markup=False, soft_wrap=True)

    with contextlib.suppress(KeyboardInterrupt):
        run(with_js(nats_url_of(nats_url, state_dir), work))


@events_app.command("export")
def events_export(
    out: Annotated[Path, typer.Option("--out", help="A .jsonl file to write.")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's events.")] = None,
    since: Annotated[str | None, typer.Option(help="After this sequence, or from this time.")] = None,
    until: Annotated[int | None, typer.Option(help="Up to this sequence (inclusive).")] = None,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Write history to a JSON-lines file (`{"seq","subject","event"}` per line), oldest first."""
    from runtime.replay import (
        ReplayError,
        StoredEvent,
        export_file,
        export_path,
        read_events,
        subject_filters,
    )

    since_seq, since_time = parse_since(since)
    try:
        target = export_path(out)
    except ReplayError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(js: JetStreamContext) -> int:
        from contracts.subjects import EVENTS_STREAM

        total = (await js.stream_info(EVENTS_STREAM)).state.messages
        written = 0
        # Through a temporary file renamed over `target` once complete: never a partial export.
        with export_file(target) as write, Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task("exporting", total=total)
            async for stored in read_events(
                js, subject_filters(tenant), since_seq, since_time, until_seq=until
            ):
                progress.advance(task)
                if isinstance(stored, StoredEvent):
                    write(json.dumps(stored.to_json()) + "\n")
                    written += 1
            progress.update(task, completed=total)
        return written

    written = run(with_js(nats_url_of(nats_url, state_dir), work))
    typer.echo(f"exported {written} events to {target}")


@events_app.command("import")
def events_import(
    source: Annotated[
        Path, typer.Argument(help="A .jsonl file from `events export`.", exists=True, dir_okay=False)
    ],
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Publish exported history into this installation. Every line is validated against the
    event contracts first (a bad line imports nothing); events already present are skipped, so
    importing twice changes nothing. Imported events update every read model, but trigger no new
    actions (hypotheses, notifications)."""
    from runtime.replay import import_events

    lines = sum(1 for line in source.open() if line.strip())

    async def work(js: JetStreamContext) -> Any:
        with source.open() as stream, Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task("importing", total=lines)
            return await import_events(js, stream, lambda: progress.advance(task))

    report = run(with_js(nats_url_of(nats_url, state_dir), work))
    if report.invalid:
        for _line, problem in report.invalid[:20]:
            typer.echo(problem, err=True)
        typer.echo(f"nothing imported: {len(report.invalid)} invalid line(s) of {report.read}", err=True)
        raise typer.Exit(1)
    typer.echo(f"read {report.read}, published {report.published}, already present {report.already_present}")


@events_app.command("stats")
def events_stats(
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Counts per type and tenant, the stream's size, each durable consumer's lag, dead letters."""
    from runtime.replay import stream_stats

    stats = run(with_js(nats_url_of(nats_url, state_dir), stream_stats))
    console = Console()
    console.print(
        f"stream EVENTS: {stats.messages} events, {stats.bytes / 1e6:.2f} MB, "
        f"sequences {stats.first_seq}..{stats.last_seq}; dead letters: {stats.dead_letters}"
    )
    by_type = Table("event type", "count", title="by type")
    for event_type, count in stats.by_type.most_common():
        by_type.add_row(event_type, str(count))
    console.print(by_type)
    by_tenant = Table("tenant", "events", "types", title="by tenant")
    for tenant, counts in sorted(stats.by_tenant.items(), key=lambda item: -sum(item[1].values())):
        by_tenant.add_row(
            tenant, str(sum(counts.values())), ", ".join(f"{t} {n}" for t, n in counts.most_common())
        )
    console.print(by_tenant)
    consumers = Table(
        "consumer", "lag (pending)", "awaiting ack", "redelivered", "delivered up to", title="consumers"
    )
    for c in stats.consumers:
        consumers.add_row(
            str(c["name"]),
            str(c["pending"]),
            str(c["ack_pending"]),
            str(c["redelivered"]),
            str(c["delivered_seq"]),
        )
    console.print(consumers)


# `ai rerun` composes two services (the AI worker's re-run and the gateway's accuracy measure), so
# it is the composition's verb rather than either service's.
@ai_app.command("rerun")
def ai_rerun(
    engine: Annotated[str, typer.Option(help="rules or claude (needs ANTHROPIC_API_KEY).")] = "rules",
    since: Annotated[
        str | None, typer.Option(help="Only incidents created from this time (ISO 8601).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Re-run hypothesis generation over past incidents as they were known at the time (only what
    existed before each incident), publishing nothing, and print its accuracy against the causes
    responders confirmed, side by side with what was generated live."""
    from ai_worker.rerun import rerun
    from ai_worker.settings import AiWorkerSettings
    from gateway.incident_metrics.accuracy import Confirmation, Generation, Resolved, engine_accuracy
    from runtime.replay import StoredEvent, read_events, subject_filters

    if engine not in ("rules", "claude"):
        raise typer.BadParameter("--engine is rules or claude")
    _seq, since_time = parse_since(since) if since and not since.isdigit() else (None, None)
    settings = AiWorkerSettings()

    async def work(js: JetStreamContext) -> Any:
        async def envelopes() -> Any:
            async for stored in read_events(js, subject_filters(tenant)):
                if isinstance(stored, StoredEvent):
                    yield stored.event

        return await rerun(envelopes(), engine, settings, since=since_time)

    replayed = run(with_js(nats_url_of(nats_url, state_dir), work))
    rerun_ids = {g.incident_id for g in replayed.rerun}
    resolved = [Resolved(i, c, r) for i, (c, r) in replayed.resolved.items() if i in rerun_ids]
    generations = [
        Generation(g.incident_id, g.engine, g.generated_at, g.hypotheses)
        for g in [*replayed.live, *replayed.rerun]
        if g.incident_id in rerun_ids
    ]
    confirmations = [Confirmation(i, claim, at) for i, claim, at in replayed.confirmations]
    results = engine_accuracy(resolved, generations, confirmations)
    table = Table(
        "engine",
        "incidents judged",
        "top-1",
        "top-3",
        "Brier",
        "median s to right top-1",
        title=f"{replayed.incidents_seen} incidents re-run; judged: resolved with a confirmed cause",
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for r in results:
        table.add_row(
            r.engine,
            str(r.incidents),
            pct(r.top1),
            pct(r.top3),
            "-" if r.brier is None else f"{r.brier:.3f}",
            "-" if r.median_seconds_to_correct_top1 is None else f"{r.median_seconds_to_correct_top1:.1f}",
        )
    Console().print(table)


streams_app = typer.Typer(
    help="The streams' configuration: what differs from this version's, and changing it on purpose.",
    no_args_is_help=True,
)
app.add_typer(streams_app, name="streams")


def _print_drifts(drifts: list[Any], console: Console, applied: bool) -> None:
    if not drifts:
        console.print("EVENTS and DLQ are as this version declares them.")
        return
    for drift in drifts:
        verb = "changed" if applied else "differs"
        for field, (has, wanted) in sorted(drift.differences.items()):
            console.print(f"{drift.stream} {verb}: {field} {has!r} -> {wanted!r}", markup=False)


@streams_app.command("status")
def streams_status(nats_url: NatsUrl = None, state_dir: StateDir = Path(".sre-copilot")) -> None:
    """How the existing streams differ from what this version declares (replicas from
    STREAM_REPLICAS, the DLQ's limits); nothing is changed. Exits 1 when they differ."""
    from runtime.bus import StreamDrift, stream_configs

    async def work(js: JetStreamContext) -> list[StreamDrift]:
        from nats.js.errors import NotFoundError

        from runtime.bus import drift

        found = []
        for config in stream_configs():
            assert config.name
            try:
                existing = (await js.stream_info(config.name)).config
            except NotFoundError:
                found.append(StreamDrift(config.name, {"exists": (False, True)}))
                continue
            if differences := drift(existing, config):
                found.append(StreamDrift(config.name, differences))
        return found

    drifts = run(with_js(nats_url_of(nats_url, state_dir), work))
    _print_drifts(drifts, Console(highlight=False), applied=False)
    if drifts:
        raise typer.Exit(1)


@streams_app.command("apply")
def streams_apply(nats_url: NatsUrl = None, state_dir: StateDir = Path(".sre-copilot")) -> None:
    """Create missing streams and bring existing ones to this version's declaration (e.g. three
    replicas after moving to a cluster, new DLQ limits). A start never does this by itself."""
    from runtime.bus import declare_streams

    async def work(js: JetStreamContext) -> list[Any]:
        return await declare_streams(js, apply=True)

    _print_drifts(run(with_js(nats_url_of(nats_url, state_dir), work)), Console(highlight=False), True)
