"""The evaluation set: well formed, and the rules engine held at its recorded baseline on it (CI runs
this). The goal the issue set: top-1 >= 80 %, top-3 >= 95 % on the repo's set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ai_worker import eval as evaluation
from ai_worker import signatures
from sre_copilot.cli import app
from tests.unit.test_ai_claude import GOOD_ANSWER, SUBMIT, FakeAnthropic, message, tool_use

BASELINE = json.loads((evaluation.CASES_DIR.parent / "baseline.json").read_text())
SETS = {"cases": evaluation.CASES_DIR, "holdout": evaluation.CASES_DIR.parent / "holdout"}


def test_the_set_is_large_varied_and_well_formed() -> None:
    cases = evaluation.load_cases()
    assert len(cases) >= 100
    per_cause = Counter(c.cause for c in cases)
    assert set(per_cause) == set(signatures.CAUSES)
    assert min(per_cause.values()) >= 10
    # The kinds of case the issue asks for are there.
    assert sum(1 for c in cases if not c.deploys) >= 60  # no-deploy cases
    assert sum(1 for c in cases if c.alerts and len(c.description) < 80) >= 8  # label-led
    assert sum(1 for c in cases if c.past) >= 10
    assert sum(1 for c in cases if " not " in f" {c.description.lower()} ") >= 10  # negations


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_rules_engine_holds_its_recorded_baseline(name: str) -> None:
    outcomes = evaluation.run_rules(evaluation.load_cases(SETS[name]))
    per_cause, overall = evaluation.summarise(outcomes)
    recorded = BASELINE[name]
    print(f"\n{name}: top-1 {overall.top1:.1%}, top-3 {overall.top3:.1%}, Brier {overall.brier:.3f}")
    for s in per_cause:
        print(f"  {s.name:<20} {s.cases:>3}  top-1 {s.top1:.0%}  top-3 {s.top3:.0%}  Brier {s.brier:.3f}")
    assert overall.cases == recorded["cases"], "cases were added or removed: record the baseline again"
    assert overall.top1 >= recorded["top1"]
    assert overall.top3 >= recorded["top3"]
    assert overall.brier <= recorded["brier"] + 0.01
    if name == "cases":
        assert overall.top1 >= 0.80 and overall.top3 >= 0.95


def test_a_malformed_case_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- {id: x, cause: disk_full, service: s, title: t}\n")
    with pytest.raises(evaluation.CaseError, match="every case needs"):
        evaluation.load_cases(tmp_path)
    (tmp_path / "a.yaml").write_text("- id: [unclosed\n")
    with pytest.raises(evaluation.CaseError, match="not valid YAML"):
        evaluation.load_cases(tmp_path)


def test_the_cli_prints_the_table_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ai", "eval", "--json"])
    assert result.exit_code == 0, result.output
    figures: dict[str, Any] = json.loads(result.output)
    assert figures["overall"]["top1"] == BASELINE["cases"]["top1"]
    assert {c["name"] for c in figures["categories"]} == set(signatures.CAUSES)
    table = runner.invoke(app, ["ai", "eval", "--cases", str(SETS["holdout"]), "--misses"])
    assert table.exit_code == 0 and "overall" in table.output and "top-3" in table.output
    assert runner.invoke(app, ["ai", "eval", "--engine", "gpt"]).exit_code != 0
    assert runner.invoke(app, ["ai", "eval", "--cases", str(tmp_path)]).exit_code == 1  # no cases


async def test_claude_is_scored_on_the_same_cases_through_its_tools() -> None:
    cases = [
        c for c in evaluation.load_cases() if c.id in ("deploy-npe-after-release", "pool-hikari-timeout")
    ]
    fake = FakeAnthropic(message(tool_use(SUBMIT, GOOD_ANSWER)))
    outcomes = await evaluation.run_claude_async(cases, fake.engine())
    by_id = {o.case.id: o for o in outcomes}
    # The fake always answers "Bad deploy v2.4.1" first, then "Connection pool exhaustion".
    assert by_id["deploy-npe-after-release"].top1
    assert not by_id["pool-hikari-timeout"].top1 and by_id["pool-hikari-timeout"].top3
    assert all(o.fallback_reason is None for o in outcomes)
    assert len(fake.requests) == 2


def test_the_cli_checks_and_lists_the_catalogue(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "t_1.yaml"
    good.write_text("signatures:\n  - {cause: disk_full, pattern: 'E_QUOTA', source: 'our runbook'}\n")
    bad = tmp_path / "common.yaml"
    bad.write_text("signatures:\n  - {cause: disk_full, pattern: '(', source: 's'}\n")
    checked = runner.invoke(app, ["ai", "signatures", "--check", str(good)])
    assert checked.exit_code == 0 and "1 valid entry" in checked.output
    refused = runner.invoke(app, ["ai", "signatures", "--check", str(bad)])
    assert refused.exit_code == 1 and "not a valid regular expression" in refused.output
    listed = runner.invoke(app, ["ai", "signatures", "--dir", str(tmp_path), "--tenant", "t_1", "--json"])
    # The skipped file is logged (a line of its own); the list is the JSON line.
    rows = json.loads(next(line for line in listed.output.splitlines() if line.startswith("[")))
    assert len(rows) == len(signatures.shipped().entries) + 1  # the broken common.yaml is skipped
    assert rows[-1]["origin"] == "t_1.yaml" and rows[-1]["source"] == "our runbook"
