"""The API models of the health checks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
)


class DependencyHealth(BaseModel):
    status: Literal["healthy", "unhealthy"]
    latency_ms: float | None = None
    detail: str | None = None
    instance: str | None = None


class ProjectorStall(BaseModel):
    # The error itself (which may quote the event's data) is in the log and the metrics' labels
    # name only the reason and type: /health is public.
    seq: int
    reason: str
    event_type: str | None
    since: datetime
    attempts: int


class ProjectorHealth(BaseModel):
    # `stalled`: stopped at an event it cannot apply; reads are stale from `stall.seq` on.
    status: Literal["running", "stalled"]
    # `leader`: this gateway writes the read models; `follower`: another one does, and this one
    # follows its checkpoint (several gateways: exactly one leads, the others take over on failure).
    role: Literal["leader", "follower", "starting"] = "starting"
    checkpoint: int
    stall: ProjectorStall | None = None


class Liveness(BaseModel):
    status: Literal["healthy"]
    # Which gateway answered (its INSTANCE): with several behind one address, so you can tell.
    instance: str
    projector: ProjectorHealth


class ServicesHealth(BaseModel):
    status: Literal["healthy", "degraded"]
    services: dict[str, DependencyHealth]
