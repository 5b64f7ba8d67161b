"""Commands are core NATS request/reply on `cmd.<service>.<command>`; these are their bodies and replies."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import email_validator
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from contracts.events import (
    Citation,
    Description,
    FeedbackVerdict,
    FollowUpSnapshot,
    IncidentSnapshot,
    IncidentState,
    KeyScope,
    Note,
    PostmortemSnapshot,
    Role,
    ServiceName,
    Severity,
    Title,
    UserStatus,
)

# Counters stored in 32-bit integer columns (versions, generations): larger values are invalid input.
MAX_INT32 = 2_147_483_647


class Caller(BaseModel):
    """The identity the gateway verified from the bearer token; services re-check what it may do."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    user_id: str
    role: Role


class Command(BaseModel):
    """A command's body. Each concrete command names its subject once, in `SUBJECT`: the handler
    registers on it and runtime.commands.CommandClient sends there."""

    model_config = ConfigDict(extra="forbid")
    SUBJECT: ClassVar[str]

    correlation_id: str

    @classmethod
    def subject(cls) -> str:
        subject: str | None = getattr(cls, "SUBJECT", None)
        if subject is None:
            raise TypeError(f"{cls.__name__} declares no SUBJECT")
        return subject


class ErrorCode(StrEnum):
    VALIDATION = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    # Too many attempts: `details.retry_after` says in how many seconds to try again.
    RATE_LIMITED = "rate_limited"
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


# RFC 5321's limit on an address (a path of 256 octets, less its angle brackets).
MAX_EMAIL_LENGTH = 254


def _email(value: str) -> str:
    """email-validator's syntax check, without its refusal of the `.test` domain (RFC 2606's, which
    test set-ups use): nothing is ever sent to these addresses, so deliverability is not at stake."""
    try:
        return email_validator.validate_email(
            value, check_deliverability=False, test_environment=True
        ).normalized
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from exc


Email = Annotated[
    str,
    StringConstraints(max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


# ---- auth
# Where a request came from, as the gateway saw it (rate limits are per address too).
ClientAddress = Annotated[str, StringConstraints(max_length=64)]
# Opaque secrets handed to clients (refresh tokens, invitation tokens): long, but bounded.
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PresentedPassword = Annotated[str, StringConstraints(max_length=128)]


class RegisterTenant(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.register"
    email: Email
    password: Password
    full_name: Name
    tenant_name: Name
    client_address: ClientAddress = ""


class Login(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.login"
    email: Email
    password: PresentedPassword
    client_address: ClientAddress = ""


class RefreshSession(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.refresh"
    refresh_token: OpaqueToken


class Logout(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.logout"
    refresh_token: OpaqueToken


class ChangePassword(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.change_password"
    caller: Caller
    current_password: PresentedPassword
    new_password: Password
    client_address: ClientAddress = ""


class InviteUser(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.invite"
    caller: Caller
    email: Email
    full_name: Name
    role: Role


class AcceptInvite(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.accept_invite"
    invite_token: OpaqueToken
    password: Password
    full_name: Name | None = None


class ChangeUserRole(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.change_role"
    caller: Caller
    user_id: UserId
    role: Role


class SetUserActive(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.set_active"
    caller: Caller
    user_id: UserId
    active: bool


class GetMember(Command):
    """Between services: a user of `tenant_id` as they stand now (role, status), for a service that
    acts as someone it knows only by id (a Slack click acts as the linked user). Not on the API."""

    SUBJECT: ClassVar[str] = "cmd.auth.get_member"

    tenant_id: Annotated[str, StringConstraints(max_length=64)]
    user_id: UserId


class MemberView(BaseModel):
    """A user as their organisation's admins see them."""

    id: str
    tenant_id: str
    email: str
    full_name: str
    role: Role
    status: UserStatus
    created_at: AwareDatetime


class MemberAccepted(BaseModel):
    user: MemberView
    seq: int | None


class InviteIssued(BaseModel):
    """The invitation token is in this reply only; auth keeps its hash."""

    user: MemberView
    invite_token: str
    invite_expires_at: AwareDatetime
    seq: int | None


class CreateIntegrationKey(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.create_key"
    caller: Caller
    name: Name
    scopes: Annotated[list[KeyScope], Field(min_length=1, max_length=len(KeyScope))]


class RevokeIntegrationKey(Command):
    SUBJECT: ClassVar[str] = "cmd.auth.revoke_key"
    caller: Caller
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class IntegrationKeyView(BaseModel):
    id: str
    tenant_id: str
    name: str
    scopes: list[KeyScope]
    created_by: str
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None


class IntegrationKeyAccepted(BaseModel):
    key: IntegrationKeyView
    seq: int | None


class IntegrationKeyIssued(BaseModel):
    """`secret` is the whole key (`sck_<id>_<secret>`), shown this once; auth keeps its hash."""

    key: IntegrationKeyView
    secret: str
    seq: int | None


class Done(BaseModel):
    seq: int | None = None


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
    # Opaque, single use: each refresh answers with a new one (rotation).
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
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
    SUBJECT: ClassVar[str] = "cmd.incidents.create"
    caller: Caller
    title: Title
    description: Description = ""
    service_name: ServiceName
    severity: Severity
    # Chosen by a service that opens incidents on its own (integrations), so that sending the same
    # command again after a lost reply answers with the incident it already created.
    incident_id: str | None = None
    # An earlier incident this one continues (an alert that fires again after its incident was resolved).
    related_incident_id: str | None = None
    # The opening alert's labels, carried on `incident.created` for on-call routing.
    labels: Annotated[dict[str, str], Field(max_length=100)] = Field(default_factory=dict)


RootCause = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]


class TransitionIncident(Command):
    SUBJECT: ClassVar[str] = "cmd.incidents.transition"
    caller: Caller
    incident_id: str
    to: IncidentState
    note: Note = ""
    # Only with `to: resolved`.
    root_cause: RootCause | None = None
    # The move's id, chosen by the caller (the gateway derives it from an Idempotency-Key), so that
    # the same command again (its first answer lost) is recognised and carried out once.
    transition_id: str | None = None


class RecordFeedback(Command):
    """A verdict on the hypothesis at `rank` of a generation (the latest when none is given)."""

    SUBJECT: ClassVar[str] = "cmd.ai_worker.feedback"

    caller: Caller
    incident_id: str
    rank: int = Field(ge=1, le=10)
    verdict: FeedbackVerdict
    comment: Annotated[str, StringConstraints(max_length=2_000)] = ""
    generation: int | None = Field(default=None, ge=1, le=MAX_INT32)


class FeedbackAccepted(BaseModel):
    incident_id: str
    generation: int
    rank: int
    seq: int | None


class UpdateIncident(Command):
    """Only the fields present change; `assignee_id: null` unassigns. With `expected_version`, the
    update applies only to that version of the incident (a 409 otherwise)."""

    SUBJECT: ClassVar[str] = "cmd.incidents.update"

    caller: Caller
    incident_id: str
    title: Title | None = None
    description: Description | None = None
    service_name: ServiceName | None = None
    severity: Severity | None = None
    assignee_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    expected_version: int | None = Field(default=None, ge=1, le=MAX_INT32)


class AddNote(Command):
    SUBJECT: ClassVar[str] = "cmd.incidents.add_note"
    caller: Caller
    incident_id: str
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000)]
    # As `TransitionIncident.transition_id`: a retried note is added once.
    note_id: str | None = None


class IncidentAccepted(BaseModel):
    """What an incidents command answers: the incident as it now stands and where its event landed
    (`seq`: the stream sequence the gateway waits for before answering, None if not yet published)."""

    incident: IncidentSnapshot
    seq: int | None


# ---- postmortems and follow-ups (incidents owns them; ai_worker writes the drafts' text)
PostmortemMarkdown = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
FollowUpTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
FollowUpOwner = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class LogEntry(BaseModel):
    """One event of an incident's log as the gateway's timeline holds it."""

    event_id: str
    seq: int
    kind: str
    actor: str
    at: AwareDatetime
    data: dict[str, Any]


class DraftPostmortem(Command):
    """Write a postmortem draft's text from an incident and its log (computes, stores nothing)."""

    SUBJECT: ClassVar[str] = "cmd.ai_worker.draft_postmortem"

    caller: Caller
    incident: IncidentSnapshot
    entries: list[LogEntry]
    # user id -> full name, to say who did what.
    people: dict[str, str] = {}
    follow_ups: list[FollowUpSnapshot] = []


class PostmortemText(BaseModel):
    markdown: str
    citations: list[Citation]
    engine: str
    fallback_reason: str | None = None


class SavePostmortemDraft(Command):
    """Store a generated draft as the postmortem's next version."""

    SUBJECT: ClassVar[str] = "cmd.incidents.save_postmortem_draft"

    caller: Caller
    incident_id: str
    draft: PostmortemText


class EditPostmortem(Command):
    """Replace the markdown of `version` (the one the editor started from; a 409 when it is not the
    current one)."""

    SUBJECT: ClassVar[str] = "cmd.incidents.edit_postmortem"

    caller: Caller
    incident_id: str
    version: int = Field(ge=1, le=MAX_INT32)
    markdown: PostmortemMarkdown


class PublishPostmortem(Command):
    SUBJECT: ClassVar[str] = "cmd.incidents.publish_postmortem"
    caller: Caller
    incident_id: str
    # The version the publisher read; None publishes the current one.
    version: int | None = Field(default=None, ge=1, le=MAX_INT32)


class PostmortemAccepted(BaseModel):
    postmortem: PostmortemSnapshot
    seq: int | None


class AddFollowUp(Command):
    SUBJECT: ClassVar[str] = "cmd.incidents.add_follow_up"
    caller: Caller
    incident_id: str
    title: FollowUpTitle
    owner: FollowUpOwner | None = None
    due_date: date | None = None
    # Chosen by the gateway from an `Idempotency-Key`, so that a retry after a lost answer makes
    # the follow-up once.
    follow_up_id: str | None = None


class UpdateFollowUp(Command):
    """Only the fields present change; `owner`/`due_date` null clears them."""

    SUBJECT: ClassVar[str] = "cmd.incidents.update_follow_up"

    caller: Caller
    incident_id: str
    follow_up_id: str
    title: FollowUpTitle | None = None
    owner: FollowUpOwner | None = None
    due_date: date | None = None
    done: bool | None = None


class FollowUpAccepted(BaseModel):
    follow_up: FollowUpSnapshot
    seq: int | None


# ---- ai_worker
class RegenerateHypotheses(Command):
    """Ask for a new generation of an incident's hypotheses (responders and above)."""

    SUBJECT: ClassVar[str] = "cmd.ai_worker.regenerate"

    caller: Caller
    incident_id: str


class ListHypothesisSignatures(Command):
    """The evidence catalogue the rules engine applies to the caller's organisation."""

    SUBJECT: ClassVar[str] = "cmd.ai_worker.signatures"

    caller: Caller


class HypothesisSignatureView(BaseModel):
    cause: str
    kind: Literal["pattern", "alert"]
    match: str
    weight: float
    source: str
    # "shipped", or the file of AI_SIGNATURES_DIR the entry comes from.
    origin: str


class HypothesisSignatures(BaseModel):
    entries: list[HypothesisSignatureView]
    # Whether the operator set AI_SIGNATURES_DIR (where common.yaml and <tenant_id>.yaml extend it).
    extensible: bool


class RegenerationAccepted(BaseModel):
    """The request is on the log (`seq`); the generation it causes follows as `hypothesis.generated`
    with `trigger` "regenerate" and `causation_id` = `request_id`."""

    incident_id: str
    request_id: str
    seq: int | None


# ---- every service
class Pong(BaseModel):
    service: str
    instance: str
    database: bool


class MetricsReport(BaseModel):
    """One process's answer to `cmd.<service>.metrics`: its metrics in the Prometheus text format."""

    service: str
    instance: str
    exposition: str
