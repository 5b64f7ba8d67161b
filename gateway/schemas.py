"""The public API's request and response models (`XCreate / XRead / XPage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr

from contracts.commands import Name, Password, TenantView, UserView
from contracts.events import Description, IncidentState, Note, ServiceName, Severity, Title


class Strict(BaseModel):
    # Unknown fields are refused: a tenant or an id never comes from the body.
    model_config = ConfigDict(extra="forbid")


class RegisterCreate(Strict):
    email: EmailStr
    password: Password
    full_name: Name
    tenant_name: Name


class LoginCreate(Strict):
    email: EmailStr
    password: str


class SessionRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserView
    tenant: TenantView


class IncidentCreate(Strict):
    title: Title
    description: Description = ""
    service_name: ServiceName
    severity: Severity


class TransitionCreate(Strict):
    to: IncidentState
    note: Note = ""


class IncidentRead(BaseModel):
    id: str
    key: str
    number: int
    title: str
    description: str
    service_name: str
    severity: Severity
    state: IncidentState
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


class IncidentPage(BaseModel):
    items: list[IncidentRead]
    next_cursor: str | None


class HypothesisRead(BaseModel):
    rank: int
    claim: str
    description: str
    confidence: float
    evidence: list[str]
    engine: str


class HypothesesRead(BaseModel):
    status: Literal["pending", "ready"]
    engine: str | None = None
    generated_at: datetime | None = None
    items: list[HypothesisRead]


class TimelineEntryRead(BaseModel):
    id: str
    seq: int
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any]


class TimelineRead(BaseModel):
    items: list[TimelineEntryRead]


class DependencyHealth(BaseModel):
    status: Literal["healthy", "unhealthy"]
    latency_ms: float | None = None
    detail: str | None = None
    instance: str | None = None


class ServicesHealth(BaseModel):
    status: Literal["healthy", "degraded"]
    services: dict[str, DependencyHealth]
