"""Commands are core NATS request/reply on `cmd.<service>.<command>`; these are their bodies and replies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from contracts.events import Description, IncidentState, Note, Role, ServiceName, Severity, Title


class Caller(BaseModel):
    """The identity the gateway verified from the bearer token; services re-check what it may do."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    user_id: str
    role: Role


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    correlation_id: str


class ErrorCode(StrEnum):
    VALIDATION = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal_error"


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: Any = None


class ErrorReply(BaseModel):
    error: ErrorBody


class CommandFailed(Exception):
    """Raised by a handler's domain code; the handler turns it into an ErrorReply."""

    def __init__(self, code: ErrorCode, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def reply(self) -> ErrorReply:
        return ErrorReply(error=ErrorBody(code=self.code, message=self.message, details=self.details))


Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


# ---- auth
class RegisterTenant(Command):
    email: EmailStr
    password: Password
    full_name: Name
    tenant_name: Name


class Login(Command):
    email: EmailStr
    password: Annotated[str, StringConstraints(max_length=128)]


class UserView(BaseModel):
    id: str
    email: str
    full_name: str
    role: Role
    tenant_id: str


class TenantView(BaseModel):
    id: str
    name: str
    slug: str


class TokenGrant(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserView
    tenant: TenantView
    seq: int | None = Field(
        default=None, description="stream sequence of the last event this command emitted"
    )


class PublicKeys(BaseModel):
    """A JWKS document: the keys that verify access tokens."""

    keys: list[dict[str, Any]]


# ---- incidents
class CreateIncident(Command):
    caller: Caller
    title: Title
    description: Description = ""
    service_name: ServiceName
    severity: Severity


class TransitionIncident(Command):
    caller: Caller
    incident_id: str
    to: IncidentState
    note: Note = ""


class IncidentSnapshot(BaseModel):
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
    created_at: AwareDatetime
    updated_at: AwareDatetime


class IncidentAccepted(BaseModel):
    """What an incidents command answers: the incident as it now stands and where its event landed
    (`seq`: the stream sequence the gateway waits for before answering, None if not yet published)."""

    incident: IncidentSnapshot
    seq: int | None


# ---- every service
class Pong(BaseModel):
    service: str
    instance: str
    database: bool
