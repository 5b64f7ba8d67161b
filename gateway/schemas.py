"""The public API's request and response models (`XCreate / XRead / XPage`)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from contracts.commands import (
    MAX_INT32,
    Email,
    OpaqueToken,
    Password,
    PresentedPassword,
    TenantView,
    UserView,
)
from contracts.events import (
    SERVICE_NAME,
    Description,
    FeedbackVerdict,
    IncidentState,
    KeyScope,
    Note,
    Role,
    Severity,
    UserStatus,
)
from contracts.integrations import (
    CorrelationPreview,
    CorrelationRuleSpec,
    CorrelationRuleView,
    DeliveryView,
    DeployView,
    EventTypes,
    FreeJson,
    InboundView,
    IntegrationSettingsView,
    JsonMapping,
    JsonSourceView,
    MappedAlert,
    MappingPreview,
    NotifiedEvent,
    RejectionView,
    RuleLabels,
    RuleSources,
    SilenceSpec,
    SilenceView,
    SlackLinkSpec,
    SlackLinkView,
    SlackSigningSecret,
    WebhookKind,
    WebhookUrl,
    WebhookView,
    WindowMinutes,
)
from contracts.oncall import (
    CalendarFeedIssued,
    ContactMethodIssued,
    ContactMethodView,
    Layers,
    Moment,
    OnCallView,
    OverrideView,
    PageAcknowledgedView,
    PolicyView,
    RoutingView,
    RuleSpec,
    ScheduleName,
    ScheduleView,
    ServiceOnCallView,
    StepSpec,
    TeamMembers,
    TeamName,
    TeamView,
    UserRef,
)
from contracts.oncall import ShiftPage as ShiftPageView
from contracts.oncall import Text as OncallText
from contracts.wire import NOT_BLANK, NulFree, Rfc3339, json_integer, strip

# A query parameter's moment, in UTC: RFC 3339 only (see contracts.wire).
DateTimeQuery = Rfc3339
# The ids the integrations service hands out as cursors (UUIDs, lower case, as they are given).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def one_or_more(values: type[StrEnum]) -> str:
    """The pattern of a filter taking one or more of an enum's values, comma-separated."""
    one = "(" + "|".join(re.escape(v.value) for v in values) + ")"
    return f"^{one}(,{one})*$"


def _not_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# An optional field of an update that may be left out but not sent as null (null means nothing for
# it): the document says so, and the service refuses a null (422).
NOT_NULL: Any = Field(default=None, json_schema_extra=_not_null)


TWO_CHARACTERS_AT_MOST = r"^([\s\S])\1*$|^([\s\S])\2*([\s\S])(\2|\3)*$"
# Passwords are `format: password` (clients mask them). A new one must also pass rules a schema cannot
# state; they are described here, and a 422 whose details carry `type: weak_password` names the one
# broken.
NewPassword = Annotated[
    Password,
    Field(
        description="8 to 128 characters, at least 3 different ones; not a commonly used password "
        "(compared case-insensitively) and not the email address or its part before the @. Otherwise "
        "a 422 whose `details` name the rule (`type: weak_password`)",
        # The rule of three distinct characters is one a pattern can state (its negation: one or two).
        json_schema_extra={"format": "password", "not": {"pattern": TWO_CHARACTERS_AT_MOST}},
    ),
]
GivenPassword = Annotated[PresentedPassword, Field(json_schema_extra={"format": "password"})]


# Text fields of requests, checked as sent and then stripped (see contracts.wire): the same limits as
# the commands' `Title`, `Name`, `RootCause` (which strip first), stated so that the document holds.
TitleText = Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK), AfterValidator(strip)]
NameText = Annotated[str, StringConstraints(max_length=120, pattern=NOT_BLANK), AfterValidator(strip)]
RootCauseText = Annotated[str, StringConstraints(max_length=2_000, pattern=NOT_BLANK), AfterValidator(strip)]
# A service name has no spaces to strip: its pattern says so, on the name as sent.
ServiceNameText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SERVICE_NAME)]

# A version or generation number (a 32-bit column), as a JSON integer.
Generation = Annotated[int, Field(ge=1, le=MAX_INT32), BeforeValidator(json_integer)]


class Strict(NulFree):
    # Unknown fields are refused: a tenant or an id never comes from the body. No string may hold a
    # NUL character (NulFree). Integers and booleans are `json_integer`/`StrictBool`: the document says
    # `integer`/`boolean`, and pydantic would also take "5", 0 or "true" for them.
    model_config = ConfigDict(extra="forbid")


class RegisterCreate(Strict):
    email: Email
    password: NewPassword
    full_name: NameText
    tenant_name: NameText


class LoginCreate(Strict):
    email: Email
    password: GivenPassword


class SessionRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    # Single use: POST it to /api/v1/auth/refresh for a new access token and a new refresh token.
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    user: UserView
    tenant: TenantView


class IncidentCreate(Strict):
    title: TitleText
    description: Description = ""
    service_name: ServiceNameText
    severity: Severity


class MoveCreate(Strict):
    """A move to any state but `resolved`."""

    to: Literal[IncidentState.DETECTED, IncidentState.ACKNOWLEDGED, IncidentState.INVESTIGATING]
    note: Note = ""
    # Only a resolution records a root cause; null is accepted for clients that always send it.
    root_cause: None = None


class ResolutionCreate(Strict):
    """A move to `resolved`, with what the cause turned out to be (what hypothesis accuracy is
    measured against)."""

    to: Literal[IncidentState.RESOLVED]
    note: Note = ""
    root_cause: RootCauseText | None = None


# Which fields a move may carry depends on where it goes, so the document says so (a oneOf on `to`,
# the route's body being `Annotated[TransitionCreate, Body(discriminator="to")]`).
TransitionCreate = MoveCreate | ResolutionCreate


class FeedbackCreate(Strict):
    verdict: FeedbackVerdict
    comment: Annotated[str, StringConstraints(max_length=2_000)] = ""
    generation: Generation | None = Field(default=None, description="The latest generation by default")


class FeedbackRead(BaseModel):
    incident_id: str
    generation: int
    rank: int
    verdict: FeedbackVerdict


class RegenerationRead(BaseModel):
    incident_id: str
    request_id: str
    status: Literal["requested"] = "requested"


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


class IncidentUpdate(Strict):
    """Only the fields sent change; `"assignee_id": null` unassigns. Send the `version` you read as
    `expected_version` to refuse (409) an update over someone else's change."""

    title: TitleText | SkipJsonSchema[None] = NOT_NULL
    description: Description | SkipJsonSchema[None] = NOT_NULL
    service_name: ServiceNameText | SkipJsonSchema[None] = NOT_NULL
    severity: Severity | SkipJsonSchema[None] = NOT_NULL
    assignee_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    expected_version: Generation | None = None


class NoteCreate(Strict):
    body: Annotated[str, StringConstraints(max_length=5_000, pattern=NOT_BLANK), AfterValidator(strip)]


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
    assignee_id: str | None = None
    root_cause: str | None = None
    # The earlier incident this one continues (an alert that fired again after it was resolved).
    related_incident_id: uuid.UUID | None = None


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
    # Responders' verdicts on this hypothesis of this generation.
    feedback: dict[str, int] = Field(default_factory=lambda: {"confirmed": 0, "rejected": 0})


class EvidenceItemRead(BaseModel):
    kind: str
    summary: str
    source: str
    time: datetime | None = None
    link: str | None = None


class HypothesesRead(BaseModel):
    status: Literal["pending", "ready"]
    engine: str | None = None
    generation: int | None = None
    trigger: str | None = None
    fallback_reason: str | None = None
    generated_at: datetime | None = None
    items: list[HypothesisRead]
    # The structured evidence gathered for this generation (when the worker published it).
    evidence: list[EvidenceItemRead] = []


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


# ---- sessions, users and integration keys (auth)
class RefreshCreate(Strict):
    refresh_token: OpaqueToken


class LogoutCreate(Strict):
    refresh_token: OpaqueToken


class PasswordChange(Strict):
    current_password: GivenPassword
    new_password: NewPassword


class InviteCreate(Strict):
    email: Email
    full_name: NameText
    role: Role = Role.RESPONDER


class InviteAccept(Strict):
    token: OpaqueToken
    password: NewPassword
    full_name: NameText | None = None


class RoleUpdate(Strict):
    role: Role


class UserRead(BaseModel):
    id: str
    email: str
    full_name: str
    role: Role
    status: UserStatus
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None


class InviteRead(BaseModel):
    """`invite_token` is shown this once: hand it to the person invited (auth keeps only its hash)."""

    user: UserRead
    invite_token: str
    invite_expires_at: datetime


class MeRead(BaseModel):
    user: UserRead
    role: Role
    tenant: TenantView


class IntegrationKeyCreate(Strict):
    name: NameText
    scopes: Annotated[list[KeyScope], Field(min_length=1, max_length=len(KeyScope))]


class IntegrationKeyRead(BaseModel):
    id: str
    name: str
    scopes: list[KeyScope]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None


class IntegrationKeyPage(BaseModel):
    items: list[IntegrationKeyRead]
    next_cursor: str | None


class IntegrationKeySecretRead(IntegrationKeyRead):
    """`key` is the whole secret, shown this once: auth keeps only its hash."""

    key: str


class KeyIdentityRead(BaseModel):
    key_id: str
    name: str
    tenant_id: str
    scopes: list[KeyScope]


# ---- integrations: inbound alerts and deploys, outbound webhooks
class AlertsAcceptedRead(BaseModel):
    """Stored; incidents open, grow and resolve in the background (see `GET .../inbound`)."""

    delivery_id: str
    status: Literal["accepted"] = "accepted"
    alerts: int


class PagerDutyAcceptedRead(BaseModel):
    """PagerDuty's own answer to an accepted event: stored, worked on in the background."""

    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class PagerDutyChangeAcceptedRead(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Change event processed"


class PagerDutyErrorRead(BaseModel):
    """PagerDuty's error shape (Events API v2), not this API's `ErrorResponse`: senders built for
    PagerDuty read `status`, `message` and `errors`."""

    status: str
    message: str
    errors: list[str]


class DeployRead(DeployView):
    pass


class RejectionRead(RejectionView):
    """A payload that was refused (4xx), as it arrived (up to 64 000 characters)."""


class RejectionPage(BaseModel):
    items: list[RejectionRead]
    next_cursor: str | None


class InboundDeliveryRead(InboundView):
    """An accepted Alertmanager notification and what processing it did."""


class InboundDeliveryPage(BaseModel):
    items: list[InboundDeliveryRead]
    next_cursor: str | None


class IntegrationSettingsRead(IntegrationSettingsView):
    pass


class IntegrationSettingsUpdate(Strict):
    auto_resolve: StrictBool | None = None


class JsonSourceCreate(Strict):
    name: NameText
    mapping: JsonMapping


class JsonSourceUpdate(Strict):
    name: NameText | None = None
    mapping: JsonMapping | None = None


class JsonSourceRead(JsonSourceView):
    pass


class JsonSourcePage(BaseModel):
    items: list[JsonSourceRead]
    next_cursor: str | None


class MappingPreviewCreate(Strict):
    """A mapping and a sample body (pasted as JSON), before the mapping is saved."""

    mapping: JsonMapping
    sample: FreeJson = None


class MappingPreviewRead(MappingPreview):
    pass


class JsonAcceptedRead(BaseModel):
    """Read with the source's mapping and stored; incidents open and resolve in the background."""

    delivery_id: str
    status: Literal["accepted"] = "accepted"
    alert: MappedAlert


class SilenceCreate(SilenceSpec):
    pass


class SilenceRead(SilenceView):
    pass


class SilencePage(BaseModel):
    items: list[SilenceRead]
    next_cursor: str | None


class CorrelationRuleCreate(CorrelationRuleSpec):
    pass


class CorrelationRuleUpdate(Strict):
    """Only what is given changes."""

    name: NameText | None = None
    labels: RuleLabels | None = None
    window_minutes: WindowMinutes | None = None
    sources: RuleSources | None = None
    enabled: StrictBool | None = None


class CorrelationRuleRead(CorrelationRuleView):
    pass


class CorrelationRulePage(BaseModel):
    items: list[CorrelationRuleRead]
    next_cursor: str | None


class CorrelationPreviewCreate(CorrelationRuleSpec):
    """A rule as it would be saved (`enabled` is not read: the preview takes it as on)."""


class CorrelationPreviewRead(CorrelationPreview):
    pass


class WebhookCreate(Strict):
    kind: WebhookKind
    name: NameText
    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: list(NotifiedEvent))
    enabled: StrictBool = True
    slack_signing_secret: SlackSigningSecret | None = Field(
        default=None,
        description="Slack webhooks only (422 otherwise): the Slack app's signing secret. With it, "
        "messages carry Acknowledge and Resolve buttons, and clicks are verified with it. Kept "
        "encrypted, never shown again",
    )


class WebhookUpdate(Strict):
    name: NameText | None = None
    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    enabled: StrictBool | None = None
    slack_signing_secret: SlackSigningSecret | None = Field(
        default=None,
        description="Slack webhooks only (422 otherwise): a new signing secret; `null` removes it "
        "(and the buttons)",
    )


class WebhookRead(WebhookView):
    pass


class WebhookSecretRead(WebhookRead):
    """`secret` (generic webhooks) signs every delivery; it is shown this once."""

    secret: str | None


class WebhookPage(BaseModel):
    items: list[WebhookRead]
    next_cursor: str | None


class SlackLinkUpdate(SlackLinkSpec):
    pass


class SlackLinkRead(SlackLinkView):
    pass


class SlackLinkPage(BaseModel):
    items: list[SlackLinkRead]


class SlackActionRead(BaseModel):
    """What the click did (Slack reads only the status; the message is updated through its
    `response_url`)."""

    outcome: str = Field(
        description="`acknowledged`, `resolved`, `unlinked` (the Slack member is linked to nobody: "
        "told so in Slack, nothing changed), `refused` (told why in Slack, nothing changed), "
        "`ignored` (a link button)"
    )


class WebhookDeliveryRead(DeliveryView):
    pass


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryRead]
    next_cursor: str | None


# ---- on-call: schedules and overrides


class ScheduleCreate(Strict):
    """Layers are listed bottom-up: where several have someone on call, the last one wins."""

    name: ScheduleName
    description: OncallText = ""
    layers: Layers


class ScheduleUpdate(Strict):
    """Only the fields present change; `layers` replaces every layer."""

    name: ScheduleName | None = None
    description: OncallText | None = None
    layers: Layers | None = None


class ScheduleRead(ScheduleView):
    pass


class SchedulePage(BaseModel):
    items: list[ScheduleRead]
    next_cursor: str | None


class OverrideCreate(Strict):
    """`user_id` is on call from `start` to `end` whatever the layers say; where overrides overlap,
    the later one wins."""

    user_id: UserRef
    start: Moment
    end: Moment


class OverrideRead(OverrideView):
    pass


class OnCallRead(OnCallView):
    pass


class ShiftPage(ShiftPageView):
    pass


# ---- on-call: escalation policies, routing, contact methods, acknowledgements


class PolicyCreate(Strict):
    """Steps run in order: notify the step's targets, wait `wait_minutes`, the next step; after the
    last, the whole policy again, `repeat` more times. An acknowledgement or a resolution stops it."""

    name: ScheduleName
    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=20)]
    repeat: Annotated[int, Field(ge=0, le=10), BeforeValidator(json_integer)] = 0


class PolicyRead(PolicyView):
    pass


class PolicyPage(BaseModel):
    items: list[PolicyRead]
    next_cursor: str | None


class RoutingUpdate(Strict):
    """The rules in order (the first that matches wins) and the policy when none does."""

    rules: Annotated[list[RuleSpec], Field(max_length=100)]
    default_policy_id: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] | None = None


class RoutingRead(RoutingView):
    pass


class ServiceOnCallRead(ServiceOnCallView):
    pass


class ContactMethodRead(ContactMethodView):
    pass


class ContactMethodSecretRead(ContactMethodIssued):
    pass


class ContactMethodPage(BaseModel):
    items: list[ContactMethodRead]


class PageAcknowledgedRead(PageAcknowledgedView):
    pass


class CalendarFeedRead(CalendarFeedIssued):
    pass


class TeamCreate(Strict):
    """`members` are user ids of the organisation; with a `schedule_id`, a step naming the team pages
    that schedule's on-call (every member while nobody is on call), else every member."""

    name: TeamName
    members: TeamMembers
    schedule_id: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] | None = None


class TeamUpdate(Strict):
    """Only the fields present change; `members` replaces the members, `schedule_id: null` detaches
    the schedule."""

    name: TeamName | None = None
    members: TeamMembers | None = None
    schedule_id: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] | None = None


class TeamRead(TeamView):
    pass


class TeamPage(BaseModel):
    items: list[TeamRead]
    next_cursor: str | None


# ---- postmortems and follow-ups
def _calendar_date(value: Any) -> Any:
    """A JSON string `YYYY-MM-DD` naming a day the calendar has (pydantic alone would also take a
    number of seconds, which the document does not allow)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        raise ValueError("not a date of the form YYYY-MM-DD")
    return date.fromisoformat(value)


CalendarDate = Annotated[
    date, BeforeValidator(_calendar_date), WithJsonSchema({"type": "string", "format": "date"})
]
PostmortemMarkdownText = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]


class CitationRead(BaseModel):
    event_id: str = Field(description="The cited event's id (the timeline entry's `id`)")
    seq: int = Field(description="Its sequence on the event stream")


class PostmortemRead(BaseModel):
    incident_id: str
    version: int
    status: Literal["draft", "published"]
    markdown: str = Field(description="Cites events as `[#<seq>](#event-<event id>)`")
    citations: list[CitationRead]
    engine: str = Field(description="Who wrote the last generated draft: `template` or `claude`")
    fallback_reason: str | None = Field(
        default=None, description="Why Claude's draft was not used, when it was asked for"
    )
    updated_by: str
    updated_at: datetime
    published_at: datetime | None = None
    published_version: int | None = None


class PostmortemUpdate(Strict):
    version: Generation = Field(
        description="The version the edit started from (a 409 if it is not the current one)"
    )
    markdown: PostmortemMarkdownText


class PostmortemPublish(Strict):
    version: Generation | None = Field(
        default=None, description="The version read; the current one by default"
    )


class FollowUpCreate(Strict):
    title: TitleText
    owner: NameText | None = None
    due_date: CalendarDate | None = None


class FollowUpUpdate(Strict):
    """Only the fields sent change; `owner` or `due_date` null clears it."""

    title: TitleText | SkipJsonSchema[None] = NOT_NULL
    owner: NameText | None = None
    due_date: CalendarDate | None = None
    done: StrictBool | SkipJsonSchema[None] = NOT_NULL


class FollowUpRead(BaseModel):
    id: str
    incident_id: str
    incident_key: str | None = None
    incident_title: str | None = None
    title: str
    owner: str | None = None
    due_date: date | None = None
    done: bool
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None = None


class FollowUpList(BaseModel):
    items: list[FollowUpRead]


class FollowUpPage(BaseModel):
    items: list[FollowUpRead]
    next_cursor: str | None = None
