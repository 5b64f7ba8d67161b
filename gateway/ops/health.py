from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from contracts.commands import Pong
from contracts.subjects import SERVICES, ping_subject
from gateway.errors import DEFAULT_RETRY_AFTER
from gateway.ops.schemas import DependencyHealth, Liveness, ProjectorHealth, ProjectorStall, ServicesHealth
from gateway.state import Gateway, GatewayDep

router = APIRouter(tags=["health"])

PING_TIMEOUT_SECONDS = 2


@router.get("/health", response_model=Liveness)
async def health(
    gw: GatewayDep,
) -> Liveness:
    """Liveness of the gateway itself, and where its projector is. A stalled projector (stopped at
    an event it cannot apply) is reported but is no failure of liveness: restarting the gateway
    would not help, and every replica would stall at the same event; the alert is
    SreCopilotProjectionStalled."""
    projector = gw.projector
    stall = projector.stall
    return Liveness(
        status="healthy",
        instance=gw.settings.instance,
        projector=ProjectorHealth(
            status="stalled" if stall else "running",
            role=projector.role,
            checkpoint=projector.checkpoint,
            stall=ProjectorStall(
                seq=stall.seq,
                reason=stall.reason.value,
                event_type=stall.event_type,
                since=stall.since,
                attempts=stall.attempts,
            )
            if stall
            else None,
        ),
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _ping_service(gw: Gateway, name: str) -> DependencyHealth:
    started = time.perf_counter()
    try:
        reply = await gw.nc.request(ping_subject(name), b"{}", timeout=PING_TIMEOUT_SECONDS)
        pong = Pong.model_validate(json.loads(reply.data))
    except Exception as exc:
        return DependencyHealth(
            status="unhealthy", detail=type(exc).__name__ + (f": {exc}" if str(exc) else "")
        )
    if not pong.database:
        return DependencyHealth(
            status="unhealthy", latency_ms=_ms(started), instance=pong.instance, detail="database unreachable"
        )
    return DependencyHealth(status="healthy", latency_ms=_ms(started), instance=pong.instance)


async def _ping_nats(gw: Gateway) -> DependencyHealth:
    started = time.perf_counter()
    if not gw.nc.is_connected:  # reconnecting: a flush would only be buffered
        return DependencyHealth(status="unhealthy", detail="disconnected")
    try:
        await gw.nc.flush(timeout=PING_TIMEOUT_SECONDS)
    except Exception as exc:
        return DependencyHealth(status="unhealthy", detail=type(exc).__name__)
    return DependencyHealth(status="healthy", latency_ms=_ms(started))


async def _ping_postgres(gw: Gateway) -> DependencyHealth:
    started = time.perf_counter()
    try:
        async with gw.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), PING_TIMEOUT_SECONDS)
    except Exception as exc:
        return DependencyHealth(status="unhealthy", detail=type(exc).__name__)
    return DependencyHealth(status="healthy", latency_ms=_ms(started))


@router.get(
    "/health/services",
    response_model=ServicesHealth,
    responses={503: {"model": ServicesHealth, "description": "Something is unhealthy (`degraded`)"}},
)
async def services_health(gw: GatewayDep) -> JSONResponse:
    """Each service and dependency pinged for real, with its latency; 503 if any is unhealthy."""
    names = [*SERVICES, "nats", "postgres"]
    checks = await asyncio.gather(
        *(_ping_service(gw, s) for s in SERVICES), _ping_nats(gw), _ping_postgres(gw)
    )
    services = dict(zip(names, checks, strict=True))
    healthy = all(c.status == "healthy" for c in checks)
    body = ServicesHealth(status="healthy" if healthy else "degraded", services=services)
    if healthy:
        return JSONResponse(body.model_dump(mode="json"))
    headers = {"Retry-After": str(DEFAULT_RETRY_AFTER)}
    return JSONResponse(body.model_dump(mode="json"), status_code=503, headers=headers)
