"""The AI worker's `sre-copilot ai` verbs: `eval` and `signatures` (`rerun`, which also needs the
gateway's accuracy measure, is added by the composition, sre_copilot/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from runtime.cli_support import fail

ai_app = typer.Typer(help="Judge hypothesis engines on your own history.", no_args_is_help=True)


@ai_app.command("eval")
def ai_eval(
    engine: Annotated[str, typer.Option(help="rules, or claude (needs ANTHROPIC_API_KEY).")] = "rules",
    cases: Annotated[
        Path | None,
        typer.Option(help="A directory of case files (*.yaml); default: the set shipped with the package."),
    ] = None,
    misses: Annotated[bool, typer.Option("--misses", help="Also list the cases not ranked first.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as one JSON object.")] = False,
) -> None:
    """Score an engine on the evaluation set: incidents whose cause is known (alerts, deploys, report,
    past incidents). Prints top-1, top-3 and the Brier score per expected cause and overall."""
    from ai_worker import eval as evaluation

    if engine not in ("rules", "claude"):
        raise typer.BadParameter("--engine is rules or claude")
    directory = cases or evaluation.CASES_DIR
    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory")
    try:
        loaded = evaluation.load_cases(directory)
    except (evaluation.CaseError, ValueError) as exc:
        fail(str(exc))
    if not loaded:
        fail(f"no cases in {directory}")
    if engine == "claude":
        from ai_worker.settings import AiWorkerSettings

        settings = AiWorkerSettings()
        if settings.anthropic_api_key is None:
            fail("--engine claude needs ANTHROPIC_API_KEY")
        outcomes = evaluation.run_claude(loaded, settings)
    else:
        outcomes = evaluation.run_rules(loaded)
    per_cause, overall = evaluation.summarise(outcomes)
    fallbacks = sum(1 for o in outcomes if o.fallback_reason)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "engine": engine,
                    "fallbacks": fallbacks,
                    "overall": overall.__dict__,
                    "categories": [s.__dict__ for s in per_cause],
                }
            )
        )
        return
    table = Table(
        "expected cause", "cases", "top-1", "top-3", "Brier", title=f"{engine} engine on {len(loaded)} cases"
    )
    for s in [*per_cause, overall]:
        table.add_row(s.name, str(s.cases), f"{s.top1:.0%}", f"{s.top3:.0%}", f"{s.brier:.3f}")
    console = Console()
    console.print(table)
    if fallbacks:
        console.print(f"{fallbacks} case(s) fell back to the rules engine")
    if misses:
        for o in outcomes:
            if not o.top1:
                console.print(f"  {o.case.id:<36} expected {o.case.cause:<20} got {o.categories}")


@ai_app.command("signatures")
def ai_signatures(
    check: Annotated[
        Path | None, typer.Option(help="Validate this catalogue file (a tenant's or common.yaml) and exit.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", envvar="AI_SIGNATURES_DIR", help="The tenants' catalogue directory."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Show the catalogue as this tenant's generations see it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
) -> None:
    """The rules engine's evidence catalogue: list it (shipped, or with a tenant's extensions), or
    check a file before you deploy it (the worker skips a file that does not parse)."""
    from ai_worker import signatures

    if check is not None:
        try:
            entries = signatures.parse(check.read_text(), check.name)
        except OSError as exc:
            fail(f"cannot read {check}: {exc.strerror}")
        except signatures.SignatureError as exc:
            fail(f"{check}: {exc}")
        typer.echo(f"{check}: {len(entries)} valid entr{'y' if len(entries) == 1 else 'ies'}")
        return
    catalogue = signatures.for_tenant(directory, tenant) if tenant else signatures.shipped()
    rows = signatures.describe(catalogue)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("cause", "match", "weight", "source", "from", title=f"{len(rows)} catalogue entries")
    for row in rows:
        table.add_row(row["cause"], row["match"], f"{row['weight']:g}", row["source"], row["origin"])
    Console().print(table)
