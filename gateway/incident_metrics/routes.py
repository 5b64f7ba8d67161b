from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth.dependencies import CallerDep
from gateway.http.fields import DateTimeQuery
from gateway.incident_metrics import queries as metric_queries
from gateway.incident_metrics.accuracy import Confirmation, Generation, Resolved, engine_accuracy
from gateway.incident_metrics.schemas import EngineAccuracyRead, HypothesisMetricsRead, IncidentMetricsRead
from gateway.state import GatewayDep

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

DEFAULT_WINDOW = timedelta(days=30)
ACCURACY_WINDOW = timedelta(days=90)
EARLIEST = datetime.min.replace(tzinfo=UTC)


def window(start: datetime | None, end: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    """The window asked for, its start `default` before its end when not given. A window that ends
    before it starts is empty (its figures are all zero), as a list filtered that way is."""
    end = end or datetime.now(UTC)
    if start is None:
        start = end - default if end - EARLIEST > default else EARLIEST
    return start, end


@router.get("/incidents", response_model=IncidentMetricsRead)
async def incident_metrics(
    gw: GatewayDep,
    caller: CallerDep,
    created_from: Annotated[
        DateTimeQuery | None, Query(description="Window start, RFC 3339 (default: 30 days before its end)")
    ] = None,
    created_to: Annotated[
        DateTimeQuery | None, Query(description="Window end, RFC 3339 (default: now)")
    ] = None,
) -> IncidentMetricsRead:
    """For the incidents created in the window: counts by state and severity, and the mean, p50 and
    p90 time to acknowledge (first move out of `detected`) and to resolve, in seconds; and the
    incidents created per UTC day. `open` counts the incidents not resolved now, whatever the window."""
    start, end = window(created_from, created_to, DEFAULT_WINDOW)
    async with gw.engine.connect() as conn:
        figures = await metric_queries.incident_metrics(conn, caller.tenant_id, start, end)
    return IncidentMetricsRead(created_from=start, created_to=end, **figures)


@router.get("/hypotheses", response_model=HypothesisMetricsRead)
async def hypothesis_metrics(
    gw: GatewayDep,
    caller: CallerDep,
    resolved_from: Annotated[
        DateTimeQuery | None, Query(description="Window start, RFC 3339 (default: 90 days before its end)")
    ] = None,
    resolved_to: Annotated[
        DateTimeQuery | None, Query(description="Window end, RFC 3339 (default: now)")
    ] = None,
) -> HypothesisMetricsRead:
    """Per engine, over incidents resolved in the window with a confirmed hypothesis: the share whose
    confirmed cause the engine ranked 1st and in its top 3, the Brier score of its confidences (lower
    is better calibrated), and the median time from detection to its first generation that ranked
    the confirmed cause 1st. `calibration` is its reliability: the judged hypotheses by confidence
    bucket of 0.1 (how many, mean confidence, share that was the cause), and `by_rank` the same per
    rank, so a console can show how often a "70 %" hypothesis was right."""
    start, end = window(resolved_from, resolved_to, ACCURACY_WINDOW)
    async with gw.engine.connect() as conn:
        resolved, generations, confirmations = await metric_queries.accuracy_inputs(
            conn, caller.tenant_id, start, end
        )
    results = engine_accuracy(
        [Resolved(r.id, r.created_at, r.resolved_at) for r in resolved],
        [Generation(g.incident_id, g.engine, g.generated_at, g.items) for g in generations],
        [Confirmation(c.incident_id, c.claim, c.given_at) for c in confirmations],
    )
    return HypothesisMetricsRead(
        resolved_from=start,
        resolved_to=end,
        engines=[EngineAccuracyRead.model_validate(r, from_attributes=True) for r in results],
    )
