"""Pure rules for ranking: scores become confidences in (0, 1), ordered, three of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HYPOTHESES_PER_INCIDENT = 3


@dataclass(frozen=True)
class Scored:
    code: str
    score: float


def rank(candidates: Sequence[Scored], temperature: float = 1.0) -> list[tuple[Scored, float]]:
    """The top three by score (ties broken by code, so ranking is deterministic), each with a
    confidence: its softmax share among all candidates, rounded to two places."""
    if not candidates:
        return []
    top = max(c.score for c in candidates)
    weights = {c.code: math.exp((c.score - top) / temperature) for c in candidates}
    total = sum(weights.values())
    ordered = sorted(candidates, key=lambda c: (-c.score, c.code))[:HYPOTHESES_PER_INCIDENT]
    ranked, previous = [], 1.0
    for c in ordered:
        confidence = min(previous, round(weights[c.code] / total, 2))
        ranked.append((c, max(confidence, 0.01)))
        previous = confidence
    return ranked
