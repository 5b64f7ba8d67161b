from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from gateway import read_models as rm
from gateway.errors import ApiError
from gateway.schemas import IncidentMetricsRead, as_utc
from gateway.security import CallerDep

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

DEFAULT_WINDOW = timedelta(days=30)


@router.get("/incidents", response_model=IncidentMetricsRead)
async def incident_metrics(
    caller: CallerDep,
    request: Request,
    created_from: Annotated[datetime | None, Query(description="Window start (default: 30 days ago)")] = None,
    created_to: Annotated[datetime | None, Query(description="Window end (default: now)")] = None,
) -> IncidentMetricsRead:
    """For the incidents created in the window: counts by state and severity, and the mean, p50 and
    p90 time to acknowledge (first move out of `detected`) and to resolve, in seconds."""
    end = as_utc(created_to) or datetime.now(UTC)
    start = as_utc(created_from) or end - DEFAULT_WINDOW
    if start >= end:
        raise ApiError(422, "validation_error", "created_from must be before created_to")
    async with request.app.state.engine.connect() as conn:
        figures = await rm.incident_metrics(conn, caller.tenant_id, start, end)
    return IncidentMetricsRead(created_from=start, created_to=end, **figures)
