"""The evaluation set and its scoring: realistic incidents whose cause is known, run through an engine.

Each case (YAML under `cases/`, see README "Evaluating the engines") is turned into the same `Evidence`
the worker gathers in production: the report, the attached alerts, the deploys found around the start,
the resolved past incidents with their recorded root causes and, rarely, metric readings. The engine's
three hypotheses are mapped back to a cause category and scored: top-1, top-3 and the Brier score of
their confidences (the same definition as `/api/v1/metrics/hypotheses`), per category and overall.
The cases were written before the rules engine's evidence catalogue and independently of it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ai_worker.evidence import (
    AlertFact,
    DeployFact,
    Evidence,
    IncidentFacts,
    MetricReading,
    PastIncident,
    gather,
    rank_similar,
    similar_summary,
)
from contracts.events import EvidenceItem, Hypothesis

CASES_DIR = Path(__file__).parent / "cases"
# Every case happens at the same instant, so the same case always gives the same evidence.
NOW = datetime(2026, 3, 4, 14, 10, tzinfo=UTC)


class CaseError(ValueError):
    """A case file that does not have the documented shape."""


@dataclass(frozen=True)
class Case:
    id: str
    cause: str
    service: str
    title: str
    description: str
    alerts: tuple[Mapping[str, Any], ...] = ()
    deploys: tuple[Mapping[str, Any], ...] = ()
    past: tuple[Mapping[str, Any], ...] = ()
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""


REQUIRED = ("id", "cause", "service", "title", "description")


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    """Every case in the directory's *.yaml files, in file then file order; ids are unique."""
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or []
        except yaml.YAMLError as exc:
            raise CaseError(f"{path.name}: not valid YAML: {exc}") from exc
        if not isinstance(raw, list):
            raise CaseError(f"{path.name}: a list of cases expected")
        for entry in raw:
            if not isinstance(entry, dict) or any(not entry.get(k) for k in REQUIRED):
                raise CaseError(f"{path.name}: every case needs {', '.join(REQUIRED)}: {entry!r}")
            if entry["id"] in seen:
                raise CaseError(f"{path.name}: duplicate case id {entry['id']!r}")
            seen.add(entry["id"])
            cases.append(
                Case(
                    id=str(entry["id"]),
                    cause=str(entry["cause"]),
                    service=str(entry["service"]),
                    title=str(entry["title"]),
                    description=str(entry["description"]),
                    alerts=tuple(entry.get("alerts") or ()),
                    deploys=tuple(entry.get("deploys") or ()),
                    past=tuple(entry.get("past") or ()),
                    metrics=dict(entry.get("metrics") or {}),
                    source=path.name,
                )
            )
    return cases


def _history(case: Case) -> list[PastIncident]:
    return [
        PastIncident(
            key=f"INC-{10 + i}",
            title=str(p["title"]),
            description=str(p.get("description", "")),
            service_name=str(p.get("service", case.service)),
            state="resolved",
            created_at=NOW - timedelta(days=float(p.get("days_ago", 30))),
            id=f"00000000-0000-0000-0000-{10 + i:012d}",
            resolved_at=NOW - timedelta(days=float(p.get("days_ago", 30))) + timedelta(hours=2),
            resolution=str(p["root_cause"]),
        )
        for i, p in enumerate(case.past)
    ]


def evidence_of(case: Case) -> Evidence:
    incident = IncidentFacts(
        id="00000000-0000-0000-0000-000000000001",
        tenant_id="t_eval",
        key="INC-100",
        title=case.title,
        description=case.description,
        service_name=case.service,
        severity="high",
        created_at=NOW,
    )
    alerts = [
        AlertFact(
            fingerprint=f"fp{i}",
            alertname=str(a["name"]),
            status="firing",
            labels={"alertname": str(a["name"]), **{k: str(v) for k, v in (a.get("labels") or {}).items()}},
            annotations={"summary": str(a["summary"])} if a.get("summary") else {},
            starts_at=NOW - timedelta(minutes=float(a.get("minutes_before", 5))),
        )
        for i, a in enumerate(case.alerts)
    ]
    deploys = [
        DeployFact(
            deploy_id=f"d-{i + 1}",
            service_name=str(d.get("service", case.service)),
            version=str(d.get("version", "v2.0.1")),
            environment="production",
            deployed_at=NOW - timedelta(minutes=float(d["minutes_before"])),
        )
        for i, d in enumerate(case.deploys)
    ]
    metrics = [
        MetricReading(
            name=name,
            expr=name,
            unit=str(m.get("unit", "")),
            baseline=m.get("baseline"),
            at_start=m.get("start"),
            peak=m.get("peak"),
        )
        for name, m in case.metrics.items()
    ]
    return gather(incident, _history(case), alerts=alerts, deploys=deploys, metrics=metrics)


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Outcome:
    case: Case
    categories: list[str | None]  # the cause category of each hypothesis, by rank
    confidences: list[float]
    fallback_reason: str | None = None

    @property
    def top1(self) -> bool:
        return bool(self.categories) and self.categories[0] == self.case.cause

    @property
    def top3(self) -> bool:
        return self.case.cause in self.categories[:3]

    @property
    def squared_errors(self) -> list[float]:
        return [
            (c - (1.0 if cat == self.case.cause else 0.0)) ** 2
            for cat, c in zip(self.categories, self.confidences, strict=True)
        ]


@dataclass(frozen=True)
class Score:
    name: str
    cases: int
    top1: float
    top3: float
    brier: float


def _score(name: str, outcomes: Sequence[Outcome]) -> Score:
    errors = [e for o in outcomes for e in o.squared_errors]
    n = len(outcomes)
    return Score(
        name=name,
        cases=n,
        top1=round(sum(o.top1 for o in outcomes) / n, 4) if n else 0.0,
        top3=round(sum(o.top3 for o in outcomes) / n, 4) if n else 0.0,
        brier=round(sum(errors) / len(errors), 4) if errors else 0.0,
    )


def summarise(outcomes: Sequence[Outcome]) -> tuple[list[Score], Score]:
    """Per expected category (sorted), and overall."""
    by_cause: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_cause[outcome.case.cause].append(outcome)
    return [_score(c, by_cause[c]) for c in sorted(by_cause)], _score("overall", outcomes)


Categoriser = Callable[[Hypothesis, str], str | None]


def outcome_of(
    case: Case, hypotheses: Sequence[Hypothesis], categorise: Categoriser, reason: str | None = None
) -> Outcome:
    ordered = sorted(hypotheses, key=lambda h: h.rank)
    return Outcome(
        case,
        [categorise(h, case.service) for h in ordered],
        [h.confidence for h in ordered],
        reason,
    )


def run_rules(cases: Iterable[Case]) -> list[Outcome]:
    from ai_worker.engines import rules

    return [outcome_of(c, rules.generate(evidence_of(c)), rules.category_of) for c in cases]


class CaseTools:
    """The evidence tools Claude may call, answered from the case alone (no database, no Prometheus)."""

    def __init__(self, case: Case, evidence: Evidence) -> None:
        self.case, self.evidence = case, evidence

    @property
    def metrics_available(self) -> bool:
        return False

    async def recent_deploys(self, hours: float) -> Any:
        from ai_worker.engines.claude import ToolOutput
        from ai_worker.evidence import deploy_summary

        deploys = [
            d
            for d in [*self.evidence.deploys, *self.evidence.deploys_after]
            if self.evidence.minutes_before_start(d) <= hours * 60
        ]
        return ToolOutput(
            content=[
                {
                    "deploy_id": d.deploy_id,
                    "service": d.service_name,
                    "version": d.version,
                    "minutes_before_start": round(self.evidence.minutes_before_start(d), 1),
                }
                for d in deploys
            ],
            items=[
                EvidenceItem(
                    kind="deploy",
                    summary=deploy_summary(d, self.evidence),
                    source=f"deploy {d.deploy_id}",
                    time=d.deployed_at,
                )
                for d in deploys
            ],
        )

    async def similar_incidents(self, query: str | None, limit: int) -> Any:
        from ai_worker.engines.claude import ToolOutput

        incident = self.evidence.incident
        found = rank_similar(query or incident.text, incident.service_name, _history(self.case))[:limit]
        return ToolOutput(
            content=[
                {"key": s.incident.key, "title": s.incident.title, "root_cause": s.incident.resolution}
                for s in found
            ],
            items=[
                EvidenceItem(
                    kind="similar_incident",
                    summary=similar_summary(s),
                    source="incident history",
                    time=s.incident.created_at,
                )
                for s in found
            ],
        )

    async def query_metrics(
        self, metric: str | None, promql: str | None, minutes_before: int, minutes_after: int
    ) -> Any:
        from ai_worker.engines.claude import ToolOutput

        return ToolOutput({"error": "no Prometheus is configured"})


async def run_claude_async(cases: Sequence[Case], engine: Any, concurrency: int = 4) -> list[Outcome]:
    """Claude on every case. Its free-text claims are mapped to a category by the same catalogue
    the rules use (`rules.category_of`); a case where it fell back to the rules says so."""
    from ai_worker.engines import rules
    from ai_worker.evidence import evidence_items

    slots = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> Outcome:
        evidence = evidence_of(case)
        async with slots:
            result = await engine.generate(evidence, evidence_items(evidence), CaseTools(case, evidence))
        return outcome_of(case, result.hypotheses, rules.category_of, result.fallback_reason)

    return list(await asyncio.gather(*(one(c) for c in cases)))


def run_claude(cases: Sequence[Case], settings: Any) -> list[Outcome]:
    """Claude on every case, with ANTHROPIC_API_KEY and the other settings from the environment."""
    from ai_worker.engines.claude import ClaudeEngine

    return asyncio.run(run_claude_async(cases, ClaudeEngine(settings)))
