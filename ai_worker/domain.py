"""Pure rules: scores become confidences, and when a trigger makes a new generation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HYPOTHESES_PER_INCIDENT = 3
MIN_CONFIDENCE = 0.01


@dataclass(frozen=True)
class Scored:
    code: str
    score: float


def _floor2(value: float) -> float:
    # round() first so that 0.29 (0.28999... in binary) is not floored to 0.28.
    return math.floor(round(value * 100, 6)) / 100


def rank(candidates: Sequence[Scored], temperature: float = 1.0) -> list[tuple[Scored, float]]:
    """The top three by score (ties broken by code, so ranking is deterministic), each with a
    confidence: its softmax share among all candidates, rounded down to two places (at least
    0.01), never above the one ranked before it. The three confidences sum to at most 1."""
    if not candidates:
        return []
    top = max(c.score for c in candidates)
    weights = {c.code: math.exp((c.score - top) / temperature) for c in candidates}
    total = sum(weights.values())
    ordered = sorted(candidates, key=lambda c: (-c.score, c.code))[:HYPOTHESES_PER_INCIDENT]
    confidences: list[float] = []
    previous = 1.0
    for c in ordered:
        confidence = max(min(previous, _floor2(weights[c.code] / total)), MIN_CONFIDENCE)
        confidences.append(confidence)
        previous = confidence
    # Only the 0.01 floor can push the sum over 1 (when the first takes nearly everything).
    excess = round(sum(confidences) - 1.0, 6)
    if excess > 0:
        confidences[0] = round(confidences[0] - excess, 2)
    return list(zip(ordered, confidences, strict=True))


@dataclass(frozen=True)
class GenerationState:
    """What the worker knows, under the incident's lock, about its generations."""

    last_generated_at: datetime | None
    # Set while a worker is generating for the incident (a lease).
    claimed_until: datetime | None


@dataclass(frozen=True)
class Decision:
    generate: bool
    # When not generating: how long to wait before looking again.
    wait_seconds: float = 0.0


# While another worker holds the incident, look again this often.
CLAIM_POLL_SECONDS = 0.25


def decide(
    state: GenerationState, now: datetime, window: timedelta, waited: timedelta, max_wait: timedelta
) -> Decision:
    """Coalescing: a trigger generates at once unless the incident's last generation is younger
    than `window` (then it waits until the window has passed, so a burst of triggers makes one
    more generation, not one each) or another worker is generating (then it waits for that to
    finish: it may cover this trigger). After `max_wait` it generates whatever the state, so a
    stuck lease or a steady stream of triggers cannot starve it."""
    if waited >= max_wait:
        return Decision(generate=True)
    if state.claimed_until is not None and state.claimed_until > now:
        remaining = (state.claimed_until - now).total_seconds()
        return Decision(generate=False, wait_seconds=min(CLAIM_POLL_SECONDS, remaining))
    if state.last_generated_at is not None:
        due = state.last_generated_at + window
        if due > now:
            return Decision(generate=False, wait_seconds=(due - now).total_seconds())
    return Decision(generate=True)
