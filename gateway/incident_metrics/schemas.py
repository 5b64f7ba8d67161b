"""The API models of the incident and hypothesis statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class ReliabilityRead(BaseModel):
    """Judged hypotheses whose confidence was in [low, high) (the last bucket includes 1), or of one
    rank: how many, their mean confidence, and the share that was the confirmed cause."""

    low: float
    high: float
    hypotheses: int
    mean_confidence: float | None
    hit_rate: float | None
    rank: int | None = None


class EngineAccuracyRead(BaseModel):
    engine: str
    incidents: int
    top1: float | None
    top3: float | None
    brier: float | None
    median_seconds_to_correct_top1: float | None
    # Reliability per confidence bucket of 0.1 (all ten), and per rank.
    calibration: list[ReliabilityRead] = []
    by_rank: list[ReliabilityRead] = []


class HypothesisSignatureRead(BaseModel):
    """One catalogue entry: a `pattern` searched in reports, alert labels and root causes, or an
    `alert` name (with labels) matched whole; its weight (3 names the cause outright, negative is
    evidence against) and where it comes from."""

    cause: str
    kind: Literal["pattern", "alert"]
    match: str
    weight: float
    source: str
    origin: str


class HypothesisSignaturesRead(BaseModel):
    entries: list[HypothesisSignatureRead]
    extensible: bool


class HypothesisMetricsRead(BaseModel):
    resolved_from: datetime
    resolved_to: datetime
    engines: list[EngineAccuracyRead]


class DurationStats(BaseModel):
    count: int
    mean_seconds: float | None
    p50_seconds: float | None
    p90_seconds: float | None


class OpenIncidentsRead(BaseModel):
    """Incidents not resolved now, whatever the window."""

    total: int
    by_state: dict[str, int]
    by_severity: dict[str, int]


class DayCountRead(BaseModel):
    day: str = Field(description="A UTC date, YYYY-MM-DD")
    count: int


class IncidentMetricsRead(BaseModel):
    created_from: datetime
    created_to: datetime
    total: int
    by_state: dict[str, int]
    by_severity: dict[str, int]
    time_to_acknowledge: DurationStats
    time_to_resolve: DurationStats
    open: OpenIncidentsRead
    # Incidents created in the window per UTC day (days without any are left out).
    created_per_day: list[DayCountRead]
