"""Every domain event's payload, and the registry that maps (type, version) to its model."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from contracts.envelope import EventEnvelope


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class IncidentState(StrEnum):
    DETECTED = "detected"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    RESPONDER = "responder"
    VIEWER = "viewer"

    def at_least(self, needed: Role) -> bool:
        """Owners may do what admins may, admins what responders may, responders what viewers may."""
        order = (Role.VIEWER, Role.RESPONDER, Role.ADMIN, Role.OWNER)
        return order.index(self) >= order.index(needed)


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
ServiceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$"),
]
Note = Annotated[str, StringConstraints(max_length=5_000)]


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantCreated(EventData):
    name: str
    slug: str


class UserCreated(EventData):
    user_id: str
    email: str
    full_name: str
    role: Role


class IncidentCreated(EventData):
    incident_id: str
    key: str
    number: int
    title: str
    description: str
    service_name: str
    severity: Severity
    state: IncidentState
    created_by: str
    created_at: AwareDatetime


class IncidentStateChanged(EventData):
    incident_id: str
    from_state: IncidentState
    to_state: IncidentState
    note: str = ""
    changed_at: AwareDatetime


class Hypothesis(EventData):
    rank: int = Field(ge=1)
    claim: str
    description: str
    confidence: float = Field(ge=0, le=1)
    evidence: list[str]
    engine: str


class HypothesisGenerated(EventData):
    incident_id: str
    engine: str
    hypotheses: list[Hypothesis]
    generated_at: AwareDatetime


EVENT_TYPES: dict[tuple[str, int], type[EventData]] = {
    ("tenant.created", 1): TenantCreated,
    ("user.created", 1): UserCreated,
    ("incident.created", 1): IncidentCreated,
    ("incident.state_changed", 1): IncidentStateChanged,
    ("hypothesis.generated", 1): HypothesisGenerated,
}
CURRENT_VERSION: dict[str, int] = {}
for _type, _version in EVENT_TYPES:
    CURRENT_VERSION[_type] = max(_version, CURRENT_VERSION.get(_type, 0))
MODEL_TYPE: dict[type[EventData], str] = {model: t for (t, _v), model in EVENT_TYPES.items()}


class UnknownEventType(ValueError):
    pass


def payload_of(envelope: EventEnvelope) -> EventData:
    """The typed payload of an envelope, upcast to the current version first."""
    from contracts.upcasters import upcast

    current = upcast(envelope)
    model = EVENT_TYPES.get((current.type, current.version))
    if model is None:
        raise UnknownEventType(f"no schema for {current.type} v{current.version}")
    return model.model_validate(current.data)
