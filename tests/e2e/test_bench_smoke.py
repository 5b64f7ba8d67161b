"""`python -m bench` at its tiny sizes against the session platform, so the bench's code cannot
rot unnoticed. No figure is judged (this machine's load is no benchmark): each benchmark must run,
and print a figure and its baseline. The cluster benchmark (three NATS nodes of its own) is left to
the bench itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.__main__ import TINY, Bench, run
from sre_copilot.supervisor import Platform

STEPS = ["e2e", "reads", "fanout", "ingest", "footprint"]


async def test_the_bench_runs_each_benchmark_and_reports_a_figure_beside_its_baseline(
    platform: Platform, tmp_path: Path
) -> None:
    bench = Bench(TINY, platform=platform)
    bench.start()
    try:
        await run(bench, STEPS)
    finally:
        bench.stop()
    out = tmp_path / "bench.json"
    bench.report(out)
    rows = json.loads(out.read_text())["results"]
    names = [row["benchmark"] for row in rows]
    for expected in (
        "POST /api/v1/incidents, one client, p50",
        "end-to-end p99 at 10/s",
        "GET /health",
        "GET /api/v1/incidents (50 items)",
        "GET /api/v1/incidents/{id}",
        "live feed",
        "alert ingestion",
        "resident memory: gateway",
    ):
        assert any(name.startswith(expected) for name in names), (expected, names)
    for row in rows:
        assert row["baseline"] > 0 and not math.isnan(row["figure"]), row
    ingest = next(row for row in rows if row["benchmark"].startswith("alert ingestion"))
    assert ingest["loss"] == 0 and ingest["errors"] == 0, ingest
    # The platform is the session's: the bench left it running.
    assert platform.children and all(c.process and c.process.poll() is None for c in platform.children)
