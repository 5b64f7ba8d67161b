"""Hypothesis accuracy per engine, from resolved incidents and responders' confirmations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.incident_metrics.accuracy import Confirmation, Generation, Resolved, engine_accuracy

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def gen(incident: str, engine: str, minutes: int, *ranked: tuple[str, float]) -> Generation:
    return Generation(
        incident,
        engine,
        T0 + timedelta(minutes=minutes),
        [{"rank": i, "claim": c, "confidence": p} for i, (c, p) in enumerate(ranked, start=1)],
    )


def test_top1_top3_brier_and_time_to_the_right_answer() -> None:
    resolved = [Resolved("a", T0, T0 + timedelta(hours=1)), Resolved("b", T0, T0 + timedelta(hours=1))]
    generations = [
        gen("a", "rules", 1, ("pool", 0.5), ("deploy", 0.3), ("cpu", 0.2)),  # right at once
        gen("b", "rules", 1, ("cpu", 0.6), ("dns", 0.3), ("disk", 0.1)),  # wrong first
        gen("b", "rules", 10, ("dns", 0.7), ("cpu", 0.2), ("disk", 0.1)),  # right later
        gen("b", "claude", 2, ("cpu", 0.5), ("disk", 0.3), ("pool", 0.2)),  # never right
    ]
    confirmations = [Confirmation("a", "pool", T0 + timedelta(minutes=30)), Confirmation("b", "dns", T0)]
    by_engine = {r.engine: r for r in engine_accuracy(resolved, generations, confirmations)}
    rules, claude = by_engine["rules"], by_engine["claude"]
    assert (rules.incidents, rules.top1, rules.top3) == (2, 1.0, 1.0)
    assert rules.median_seconds_to_correct_top1 == (60 + 600) / 2
    # final generations: a (0.5-1)^2+0.3^2+0.2^2 = 0.38; b (0.7-1)^2+0.2^2+0.1^2 = 0.14 -> 0.52 / 6
    assert rules.brier == round(0.52 / 6, 4)
    assert (claude.incidents, claude.top1, claude.top3) == (1, 0.0, 0.0)
    assert claude.median_seconds_to_correct_top1 is None


def test_unconfirmed_or_unresolved_incidents_do_not_count() -> None:
    generations = [gen("a", "rules", 1, ("pool", 0.9))]
    assert engine_accuracy([], generations, [Confirmation("a", "pool", T0)])[0].incidents == 0
    resolved = [Resolved("a", T0, T0 + timedelta(hours=1))]
    only = engine_accuracy(resolved, generations, [])[0]
    assert only.incidents == 0 and only.top1 is None


def test_the_latest_confirmation_is_the_cause_and_later_generations_are_ignored() -> None:
    resolved = [Resolved("a", T0, T0 + timedelta(minutes=20))]
    generations = [
        gen("a", "rules", 5, ("deploy", 0.6), ("pool", 0.4)),
        gen("a", "rules", 40, ("pool", 0.9), ("deploy", 0.1)),  # after resolution: not judged
    ]
    confirmations = [Confirmation("a", "deploy", T0), Confirmation("a", "pool", T0 + timedelta(minutes=1))]
    result = engine_accuracy(resolved, generations, confirmations)[0]
    assert (result.top1, result.top3) == (0.0, 1.0)


def test_reliability_per_confidence_bucket_and_per_rank() -> None:
    resolved = [Resolved(x, T0, T0 + timedelta(hours=1)) for x in "abcd"]
    generations = [
        gen("a", "rules", 1, ("pool", 0.72), ("deploy", 0.2), ("cpu", 0.05)),  # right at 0.72
        gen("b", "rules", 1, ("cpu", 0.75), ("pool", 0.15), ("disk", 0.05)),  # wrong at 0.75
        gen("c", "rules", 1, ("dns", 0.7), ("cpu", 0.2), ("disk", 0.05)),  # right at 0.7
        gen("d", "rules", 1, ("disk", 0.95), ("cpu", 0.03), ("dns", 0.01)),  # right at 0.95
    ]
    confirmations = [
        Confirmation("a", "pool", T0),
        Confirmation("b", "pool", T0),
        Confirmation("c", "dns", T0),
        Confirmation("d", "disk", T0),
    ]
    result = engine_accuracy(resolved, generations, confirmations)[0]
    assert len(result.calibration) == 10 and [b.low for b in result.calibration][:2] == [0.0, 0.1]
    seventy = result.calibration[7]
    assert (seventy.low, seventy.high, seventy.hypotheses) == (0.7, 0.8, 3)
    assert seventy.hit_rate == round(2 / 3, 4) and seventy.mean_confidence == round(
        (0.72 + 0.75 + 0.7) / 3, 4
    )
    top = result.calibration[9]
    assert (top.hypotheses, top.hit_rate) == (1, 1.0)
    assert result.calibration[4].hypotheses == 0 and result.calibration[4].hit_rate is None
    # 0.15 is in the 0.1 bucket, and it was the cause (b's pool); 0.2 opens the next one.
    assert (result.calibration[1].hypotheses, result.calibration[1].hit_rate) == (1, 1.0)
    assert (result.calibration[2].hypotheses, result.calibration[2].hit_rate) == (2, 0.0)
    assert [(r.rank, r.hypotheses, r.hit_rate) for r in result.by_rank] == [
        (1, 4, 0.75),
        (2, 4, 0.25),
        (3, 4, 0.0),
    ]
