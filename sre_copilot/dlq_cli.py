"""`sre-copilot dlq`: inspect, replay and drop dead letters (the logic is in runtime/dlq.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from nats.aio.client import Client
from rich.console import Console
from rich.table import Table

from runtime.cli_support import NatsUrl, StateDir, nats_url_of, run

T = TypeVar("T")

# A consumer that takes a while over one event (an AI generation with Claude's tool loop can take a
# minute and a half) still answers within this.
REPLAY_TIMEOUT_SECONDS = 120.0

dlq_app = typer.Typer(
    help="Dead letters: what a consumer gave up on. List, show, replay to the consumer, drop.",
    no_args_is_help=True,
)

Consumer = Annotated[
    str | None, typer.Option("--consumer", help="Only this consumer's dead letters (e.g. ai_worker).")
]
Ids = Annotated[
    list[int] | None,
    typer.Argument(metavar="[ID]...", help="Dead letter ids (their DLQ sequence).", min=1),
]


def _run_with_nats(nats_url: str | None, state_dir: Path, work: Callable[[Client], Awaitable[T]]) -> T:
    """The `events` commands' conventions: the URL from --nats-url / NATS_URL or the running `up`,
    and one line with exit status 1 when NATS is out of reach."""
    from runtime.bus import connect

    url = nats_url_of(nats_url, state_dir)

    async def connected() -> T:
        nc = await connect(url, "sre-copilot-cli", reconnect=False)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return run(connected())


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dlq_app.command("list")
def dlq_list(
    consumer: Consumer = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Every stored dead letter, oldest first.

    Its id, consumer, original subject and sequence, event type, attempts, error, and when it was
    given up on."""
    from runtime.dlq import DeadLetter, DlqError, consumer_filter, dead_letters

    try:
        consumer_filter(consumer)
    except DlqError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(nc: Client) -> list[DeadLetter]:
        return [letter async for letter in dead_letters(nc.jetstream(), consumer)]

    letters = _run_with_nats(nats_url, state_dir, work)
    if as_json:
        for letter in letters:
            print(json.dumps(letter.summary()), flush=True)
        return
    console = Console(highlight=False)
    if not letters:
        console.print("no dead letters" + (f" of {consumer}" if consumer else ""))
        return
    table = Table()
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("consumer", no_wrap=True)
    table.add_column("original", overflow="fold")
    table.add_column("event type", overflow="fold")
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold", max_width=60)
    table.add_column("time (UTC)", no_wrap=True)
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.consumer,
            f"#{letter.original_seq or '?'} {letter.original_subject}",
            letter.event_type or "(not an event)",
            str(letter.attempts or "?"),
            _short(letter.error, 120),
            f"{letter.time:%Y-%m-%d %H:%M:%S}" if letter.time else "",
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s); `sre-copilot dlq show ID` for one in full")


@dlq_app.command("show")
def dlq_show(
    letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.", min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """One dead letter: its headers (the error among them) and the event as JSON."""
    from runtime.dlq import dead_letter

    letter = _run_with_nats(nats_url, state_dir, lambda nc: dead_letter(nc.jetstream(), letter_id))
    if as_json:
        print(json.dumps(letter.to_json()))
        return
    typer.echo(f"dead letter {letter.id} on {letter.subject}, stored {letter.time or '?'}")
    for name, value in letter.headers.items():
        typer.echo(f"{name}: {value}")
    typer.echo("")
    event = letter.event
    if event is not None:
        typer.echo(json.dumps(event, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"(not a JSON event: {len(letter.data)} bytes)")
        typer.echo(letter.data.decode("utf-8", "replace"))


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: Ids = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter (of --consumer).")] = False,
    consumer: Consumer = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each consumer's answer.", min=0.1)
    ] = REPLAY_TIMEOUT_SECONDS,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Hand dead letters back to the consumer that gave up on them.

    A request on `cmd.dlq.<consumer>.replay` with the stored data and headers. Each one the consumer
    handles is deleted; one it refuses is kept and its error printed, and the exit status is 1.
    Handlers are idempotent by event id: replaying twice is harmless."""
    from runtime.dlq import (
        DeadLetter,
        DlqError,
        Replayed,
        consumer_filter,
        dead_letter,
        dead_letters,
        replay,
    )

    if all_ == bool(letter_ids):
        raise typer.BadParameter("give dead letter ids, or --all")
    if consumer and not all_:
        raise typer.BadParameter("--consumer goes with --all")
    try:
        consumer_filter(consumer)
    except DlqError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(nc: Client) -> list[Replayed]:
        js = nc.jetstream()
        letters: list[DeadLetter]
        if all_:
            letters = [letter async for letter in dead_letters(js, consumer)]
        else:
            letters = [await dead_letter(js, letter_id) for letter_id in letter_ids or ()]
        outcomes = []
        for letter in letters:
            outcome = await replay(nc, letter, timeout)
            what = f"{letter.id} ({letter.consumer}, {letter.event_type or 'not an event'})"
            if outcome.ok:
                typer.echo(f"replayed {what}: handled, deleted")
            else:
                typer.echo(f"failed {what}: {outcome.problem}", err=True)
            outcomes.append(outcome)
        return outcomes

    outcomes = _run_with_nats(nats_url, state_dir, work)
    failed = sum(not o.ok for o in outcomes)
    if not outcomes:
        typer.echo("no dead letters to replay")
    elif all_ or len(outcomes) > 1:
        typer.echo(f"replayed {len(outcomes) - failed}, failed {failed} (kept)")
    if failed:
        raise typer.Exit(1)


@dlq_app.command("drop")
def dlq_drop(
    letter_ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Dead letter ids.", min=1)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    nats_url: NatsUrl = None,
    state_dir: StateDir = Path(".sre-copilot"),
) -> None:
    """Delete dead letters for good (after confirmation, or with --yes)."""
    from runtime.dlq import DeadLetter, dead_letter, drop

    async def fetch(nc: Client) -> list[DeadLetter]:
        return [await dead_letter(nc.jetstream(), letter_id) for letter_id in letter_ids]

    letters = _run_with_nats(nats_url, state_dir, fetch)
    for letter in letters:
        typer.echo(f"{letter.id}: {letter.consumer}, {letter.event_type or 'not an event'}, {letter.error}")
    if not yes:
        typer.confirm(f"Drop {len(letters)} dead letter(s) for good?", abort=True)

    async def work(nc: Client) -> None:
        for letter in letters:
            await drop(nc.jetstream(), letter.id)

    _run_with_nats(nats_url, state_dir, work)
    typer.echo(f"dropped {len(letters)} dead letter(s)")
