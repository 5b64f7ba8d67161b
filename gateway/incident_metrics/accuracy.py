"""How well each engine's hypotheses matched what responders confirmed: pure functions over rows.

Definitions (also in the README):
- An incident counts once it is resolved and a responder confirmed one of its hypotheses; the
  confirmed claim (the latest confirmation) is its cause.
- top-1 / top-3: the engine's last generation before resolution ranked the cause 1st / among its three.
- Brier score: mean over those generations' hypotheses of (confidence - outcome)^2, outcome 1 for the
  cause and 0 otherwise; lower is better calibrated.
- Time to the right answer: median seconds from detection to the engine's first generation that
  ranked the cause 1st.
- Calibration (reliability): those same hypotheses grouped by confidence in buckets of 0.1; for each,
  how many, their mean confidence and the share that was the cause. A calibrated engine's "70 %"
  hypotheses are right about 70 % of the time. The same per rank."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any


@dataclass(frozen=True)
class Generation:
    incident_id: Any
    engine: str
    generated_at: datetime
    hypotheses: list[dict[str, Any]]  # rank, claim, confidence


@dataclass(frozen=True)
class Confirmation:
    incident_id: Any
    claim: str
    given_at: datetime


@dataclass(frozen=True)
class Resolved:
    incident_id: Any
    created_at: datetime
    resolved_at: datetime


@dataclass(frozen=True)
class Reliability:
    """Hypotheses with confidence in [low, high) (the last bucket includes 1.0), or of one rank."""

    low: float
    high: float
    hypotheses: int
    mean_confidence: float | None
    hit_rate: float | None
    rank: int | None = None


@dataclass(frozen=True)
class EngineAccuracy:
    engine: str
    incidents: int
    top1: float | None
    top3: float | None
    brier: float | None
    median_seconds_to_correct_top1: float | None
    calibration: list[Reliability] = field(default_factory=list)
    by_rank: list[Reliability] = field(default_factory=list)


BUCKETS = 10


def _reliability(
    pairs: list[tuple[float, bool]], low: float, high: float, rank: int | None = None
) -> Reliability:
    n = len(pairs)
    return Reliability(
        low=low,
        high=high,
        hypotheses=n,
        mean_confidence=round(sum(c for c, _ in pairs) / n, 4) if n else None,
        hit_rate=round(sum(1 for _, hit in pairs if hit) / n, 4) if n else None,
        rank=rank,
    )


def reliability(judged: list[tuple[int, float, bool]]) -> tuple[list[Reliability], list[Reliability]]:
    """(rank, confidence, was it the cause) of each judged hypothesis -> per confidence bucket (all
    ten, empty ones included, so a chart has fixed axes) and per rank (1 to 3)."""
    buckets: list[list[tuple[float, bool]]] = [[] for _ in range(BUCKETS)]
    ranks: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for rank, confidence, hit in judged:
        # round() first: 0.3 * 10 is 3.0000000000000004, 0.29 * 10 must not become 3.
        index = min(int(round(max(confidence, 0.0) * BUCKETS, 6)), BUCKETS - 1)
        buckets[index].append((confidence, hit))
        ranks[rank].append((confidence, hit))
    per_bucket = [_reliability(b, i / BUCKETS, (i + 1) / BUCKETS) for i, b in enumerate(buckets)]
    per_rank = [_reliability(ranks[r], 0.0, 1.0, rank=r) for r in sorted(ranks)]
    return per_bucket, per_rank


def _claims_by_rank(generation: Generation) -> list[str]:
    return [h["claim"] for h in sorted(generation.hypotheses, key=lambda h: h["rank"])]


def engine_accuracy(
    resolved: list[Resolved], generations: list[Generation], confirmations: list[Confirmation]
) -> list[EngineAccuracy]:
    cause: dict[Any, str] = {}
    for confirmation in sorted(confirmations, key=lambda c: c.given_at):
        cause[confirmation.incident_id] = confirmation.claim
    by_incident_engine: dict[tuple[Any, str], list[Generation]] = defaultdict(list)
    for generation in sorted(generations, key=lambda g: g.generated_at):
        by_incident_engine[(generation.incident_id, generation.engine)].append(generation)
    engines = sorted({g.engine for g in generations})
    results = []
    for engine in engines:
        hits1 = hits3 = counted = 0
        squared_errors: list[float] = []
        judged: list[tuple[int, float, bool]] = []
        times: list[float] = []
        for incident in resolved:
            truth = cause.get(incident.incident_id)
            history = by_incident_engine.get((incident.incident_id, engine), [])
            if truth is None or not history:
                continue
            before = [g for g in history if g.generated_at <= incident.resolved_at] or history[:1]
            final = before[-1]
            claims = _claims_by_rank(final)
            counted += 1
            hits1 += int(bool(claims) and claims[0] == truth)
            hits3 += int(truth in claims[:3])
            squared_errors += [
                (float(h["confidence"]) - (1.0 if h["claim"] == truth else 0.0)) ** 2
                for h in final.hypotheses
            ]
            judged += [
                (int(h["rank"]), float(h["confidence"]), h["claim"] == truth) for h in final.hypotheses
            ]
            first_right = next((g for g in history if _claims_by_rank(g)[:1] == [truth]), None)
            if first_right is not None:
                times.append((first_right.generated_at - incident.created_at).total_seconds())
        calibration, by_rank = reliability(judged)
        results.append(
            EngineAccuracy(
                engine=engine,
                incidents=counted,
                top1=round(hits1 / counted, 4) if counted else None,
                top3=round(hits3 / counted, 4) if counted else None,
                brier=round(sum(squared_errors) / len(squared_errors), 4) if squared_errors else None,
                median_seconds_to_correct_top1=round(median(times), 3) if times else None,
                calibration=calibration,
                by_rank=by_rank,
            )
        )
    return results
