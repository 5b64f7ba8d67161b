"""What crosses the bus for integrations: the inbound payloads as senders write them (Alertmanager,
Grafana, CI), the commands the gateway sends to the integrations service, and their replies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from contracts.commands import Caller, Command
from contracts.events import SERVICE_NAME, KeyScope
from contracts.slack import SlackRequest
from contracts.wire import NOT_BLANK, NulFree, Rfc3339, json_integer, strip

# ---- inbound payloads

Label = Annotated[str, StringConstraints(max_length=256)]
LabelMap = Annotated[dict[Label, Annotated[str, StringConstraints(max_length=4_096)]], Field(max_length=200)]
# Annotations carry prose (descriptions, runbook excerpts): longer values than labels.
AnnotationMap = Annotated[
    dict[Label, Annotated[str, StringConstraints(max_length=32_768)]], Field(max_length=200)
]


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook (payload version 4); Grafana's extra fields (`values`,
    `silenceURL`, `dashboardURL`, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: LabelMap
    annotations: AnnotationMap = Field(default_factory=dict)
    startsAt: Rfc3339
    # Alertmanager sends 0001-01-01T00:00:00Z (or a time in the future) while an alert fires.
    endsAt: Rfc3339 | None = None
    # Prometheus puts the alert's whole PromQL expression in it.
    generatorURL: Annotated[str, StringConstraints(max_length=16_384)] = ""
    # Alertmanager always sends it; a sender that does not gets one computed from the labels.
    fingerprint: Annotated[str, StringConstraints(max_length=128)] = ""


class AlertmanagerPayload(NulFree):
    """The body of an Alertmanager `webhook_configs` notification (version "4"), or Grafana's
    Alertmanager-compatible webhook (version "1", with `orgId`, `title`, `state`, `message`)."""

    model_config = ConfigDict(extra="ignore")

    version: Annotated[str, StringConstraints(max_length=16)] = "4"
    groupKey: Annotated[str, StringConstraints(min_length=1, max_length=4_096)]
    truncatedAlerts: Annotated[int, Field(ge=0), BeforeValidator(json_integer)] = 0
    status: Literal["firing", "resolved"]
    receiver: Annotated[str, StringConstraints(max_length=512)] = ""
    groupLabels: LabelMap = Field(default_factory=dict)
    commonLabels: LabelMap = Field(default_factory=dict)
    commonAnnotations: AnnotationMap = Field(default_factory=dict)
    externalURL: Annotated[str, StringConstraints(max_length=2_048)] = ""
    # Bounded by the gateway's body limit (MAX_REQUEST_BYTES) rather than by a count.
    alerts: Annotated[list[AlertmanagerAlert], Field(min_length=1, max_length=20_000)]


# Checked as sent, then stripped (see contracts.wire), so that what the document states holds.
Short = Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK), AfterValidator(strip)]
Optional200 = Annotated[str, StringConstraints(max_length=200), AfterValidator(strip)]


class DeployReport(NulFree):
    """What CI sends when it has deployed: `deployed_at` defaults to when it arrives."""

    model_config = ConfigDict(extra="forbid")

    # No spaces to strip: the pattern holds for the name as sent.
    service_name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SERVICE_NAME)]
    version: Short
    environment: Short
    commit: Optional200 | None = None
    author: Optional200 | None = None
    deployed_at: Rfc3339 | None = None


# ---- PagerDuty Events API v2 (what Alertmanager's and Grafana's PagerDuty receivers send)

PdText = Annotated[str, StringConstraints(max_length=1_024)]
PdUrl = Annotated[str, StringConstraints(max_length=2_048)]
# PagerDuty's own limit on a dedup_key.
DedupKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
RoutingKey = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _drop_nul(value: Any) -> Any:
    """Free-form details as sent, less U+0000 (which PostgreSQL cannot keep): a sender's details are
    context, not something to refuse an alert for."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _drop_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_nul(v) for v in value]
    return value


CustomDetails = Annotated[Any, BeforeValidator(_drop_nul)]
# Any JSON a sender or an admin pastes, less U+0000.
FreeJson = CustomDetails


class PagerDutyLink(BaseModel):
    model_config = ConfigDict(extra="ignore")

    href: Annotated[str, StringConstraints(min_length=1, max_length=2_048)]
    text: PdText = ""


class PagerDutyImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    src: Annotated[str, StringConstraints(min_length=1, max_length=2_048)]
    href: PdUrl = ""
    alt: PdText = ""


class PagerDutyPayload(BaseModel):
    """An Events v2 `payload`. `timestamp` is advisory (PagerDuty's own examples write the offset as
    `+0000`): one that does not read as ISO 8601 is ignored, the arrival time is used."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    summary: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: Annotated[str, StringConstraints(max_length=64)] = ""
    component: PdText = ""
    group: PdText = ""
    class_: PdText = Field(default="", alias="class")
    custom_details: CustomDetails = None


class PagerDutyUpdatePayload(BaseModel):
    """What an acknowledge or resolve may carry (Alertmanager repeats the trigger's payload)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    summary: PdText = ""
    source: PdText = ""
    severity: Literal["critical", "error", "warning", "info"] | None = None
    timestamp: Annotated[str, StringConstraints(max_length=64)] = ""
    component: PdText = ""
    group: PdText = ""
    class_: PdText = Field(default="", alias="class")
    custom_details: CustomDetails = None


class _PagerDutyCommon(NulFree):
    model_config = ConfigDict(extra="ignore")

    client: PdText = ""
    client_url: PdUrl = ""
    links: Annotated[list[PagerDutyLink], Field(max_length=50)] = Field(default_factory=list)
    images: Annotated[list[PagerDutyImage], Field(max_length=50)] = Field(default_factory=list)


class PagerDutyTrigger(_PagerDutyCommon):
    """`trigger`: a new problem, or more of an open one (same `dedup_key`). Without a `dedup_key`
    one is made and answered."""

    event_action: Literal["trigger"]
    dedup_key: DedupKey | None = None
    payload: PagerDutyPayload


class PagerDutyUpdate(_PagerDutyCommon):
    """`acknowledge` or `resolve` the alert of `dedup_key`."""

    event_action: Literal["acknowledge", "resolve"]
    dedup_key: DedupKey
    payload: PagerDutyUpdatePayload | None = None


class PagerDutyTriggerEvent(PagerDutyTrigger):
    routing_key: RoutingKey


class PagerDutyUpdateEvent(PagerDutyUpdate):
    routing_key: RoutingKey


# As stored and sent over the bus: the routing key (a credential) is never kept.
PagerDutyAlert = Annotated[PagerDutyTrigger | PagerDutyUpdate, Field(discriminator="event_action")]
# As sent over HTTP, `routing_key` = an integration key.
PagerDutyEvent = Annotated[PagerDutyTriggerEvent | PagerDutyUpdateEvent, Field(discriminator="event_action")]


class PagerDutyChangePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
    timestamp: Annotated[str, StringConstraints(max_length=64)] = ""
    source: PdText = ""
    custom_details: CustomDetails = None


class PagerDutyChange(NulFree):
    """A change event (`/v2/change/enqueue`): recorded as a deploy."""

    model_config = ConfigDict(extra="ignore")

    routing_key: RoutingKey
    payload: PagerDutyChangePayload
    links: Annotated[list[PagerDutyLink], Field(max_length=50)] = Field(default_factory=list)
    images: Annotated[list[PagerDutyImage], Field(max_length=50)] = Field(default_factory=list)


# ---- who sends: a machine holding an integration key


class IntegrationSource(BaseModel):
    """The integration key the gateway verified; integrations checks its scope again."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    key_id: str
    scopes: list[KeyScope]

    @property
    def actor(self) -> str:
        return f"integration:{self.key_id}"


class InboundSource(StrEnum):
    ALERTMANAGER = "alertmanager"
    DEPLOYS = "deploys"
    PAGERDUTY = "pagerduty"
    PAGERDUTY_CHANGE = "pagerduty_change"
    JSON = "json"


class ReceiveAlerts(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.receive_alerts"
    source: IntegrationSource
    payload: AlertmanagerPayload


class AlertsAccepted(BaseModel):
    """Stored; it is worked on in the background, in arrival order for the tenant."""

    delivery_id: str
    alerts: int


class ReceivePagerDuty(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.receive_pagerduty"
    source: IntegrationSource
    event: PagerDutyAlert


class PagerDutyAccepted(BaseModel):
    delivery_id: str
    dedup_key: str


class RecordDeploy(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.record_deploy"
    source: IntegrationSource
    deploy: DeployReport


class RecordChange(Command):
    """A PagerDuty change event, to be recorded as a deploy (`record_deploy`'s rules)."""

    SUBJECT: ClassVar[str] = "cmd.integrations.record_change"
    source: IntegrationSource
    payload: PagerDutyChangePayload
    links: list[PagerDutyLink] = Field(default_factory=list)


class DeployView(BaseModel):
    id: str
    service_name: str
    version: str
    environment: str
    commit: str | None
    author: str | None
    deployed_at: AwareDatetime
    recorded_at: AwareDatetime


class DeployAccepted(BaseModel):
    deploy: DeployView
    # False when the same deploy (same service, environment, version, commit and time) was
    # reported before: nothing new is published.
    created: bool
    seq: int | None


# A refused body is kept up to this many characters (the gateway accepts up to MAX_REQUEST_BYTES).
REJECTED_BODY_KEPT = 64_000


class RecordRejection(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.record_rejection"
    source: IntegrationSource
    endpoint: InboundSource
    message: Annotated[str, StringConstraints(max_length=500)]
    details: Any = None
    # Cut by the sender at REJECTED_BODY_KEPT + 1 characters, so that a cut shows.
    body: Annotated[str, StringConstraints(max_length=REJECTED_BODY_KEPT + 1)] = ""


class RejectionView(BaseModel):
    id: str
    endpoint: InboundSource
    key_id: str
    received_at: AwareDatetime
    message: str
    details: Any
    body: str
    body_truncated: bool


class Page(BaseModel):
    next_cursor: str | None


class RejectionPage(Page):
    items: list[RejectionView]


Cursor = Annotated[str, StringConstraints(max_length=64)]


class ListRejections(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_rejections"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


# ---- what a service went through lately (deploys recorded, alerts received): for the MCP server

# `<microseconds since the epoch>.<the rest of the row's key>`, as the previous page's last row left it.
ActivityCursor = Annotated[str, StringConstraints(max_length=256, pattern=r"^-?[0-9]{1,16}\.[!-~]{1,230}$")]


class ListServiceDeploys(Command):
    """The service's deploys, newest first (any role may read them)."""

    SUBJECT: ClassVar[str] = "cmd.integrations.list_service_deploys"
    caller: Caller
    service_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    since: AwareDatetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: ActivityCursor | None = None


class DeployPage(Page):
    items: list[DeployView]


class ListServiceAlerts(Command):
    """Alerts received about the service (its `service` label, or attached to one of its incidents),
    newest first by when they started."""

    SUBJECT: ClassVar[str] = "cmd.integrations.list_service_alerts"
    caller: Caller
    service_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    since: AwareDatetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: ActivityCursor | None = None


class AlertView(BaseModel):
    fingerprint: str
    alertname: str
    status: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None
    summary: str
    labels: dict[str, str]
    incident_id: str | None
    generator_url: str | None


class AlertPage(Page):
    items: list[AlertView]


class InboundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class InboundView(BaseModel):
    id: str
    source: InboundSource
    key_id: str
    group_key: str
    alerts: int
    status: InboundStatus
    attempts: int
    last_error: str | None
    received_at: AwareDatetime
    processed_at: AwareDatetime | None
    # What processing did: incident opened, alerts attached, duplicates ignored, ...
    outcome: dict[str, Any]


class InboundPage(Page):
    items: list[InboundView]


class ListInbound(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_inbound"
    caller: Caller
    status: InboundStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class GetIntegrationSettings(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_settings"
    caller: Caller


class UpdateIntegrationSettings(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.update_settings"
    caller: Caller
    auto_resolve: bool | None = None


class IntegrationSettingsView(BaseModel):
    # Resolve an incident opened from alerts once every one of its alerts is resolved.
    auto_resolve: bool


# ---- outbound webhooks


class WebhookKind(StrEnum):
    SLACK = "slack"  # a Slack incoming webhook: a Block Kit message
    TEAMS = "teams"  # a Microsoft Teams Workflows webhook: an Adaptive Card
    MATTERMOST = "mattermost"  # a Mattermost incoming webhook: text and a message attachment
    DISCORD = "discord"  # a Discord webhook: an embed, mentions off
    GENERIC = "generic"  # the event envelope as JSON, signed


class NotifiedEvent(StrEnum):
    INCIDENT_CREATED = "incident.created"
    INCIDENT_STATE_CHANGED = "incident.state_changed"
    HYPOTHESIS_GENERATED = "hypothesis.generated"


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# Not 0.x.x.x (0.0.0.0 is never a target) nor multicast or reserved (224 and above).
_FIRST_OCTET = r"(?:22[0-3]|2[01][0-9]|1[0-9]{2}|[1-9][0-9]?)"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# What a webhook URL may be, stated so that the OpenAPI document says it: http(s), a host name (whose
# last label starts with a letter) or an IPv4 address, an optional port, no credentials, printable
# ASCII. Whether a private address is allowed depends on the deployment
# (WEBHOOK_ALLOW_PRIVATE_TARGETS); integrations refuses those with a 422 of its own.
WEBHOOK_URL_PATTERN = rf"^https?://(?:(?:{_LABEL}\.)*{_TOP_LABEL}|{_FIRST_OCTET}(?:\.{_OCTET}){{3}})(?::{_PORT})?(?:[/?#][!-~]*)?$"
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2_048, pattern=WEBHOOK_URL_PATTERN)]
WebhookName = Annotated[str, StringConstraints(max_length=120, pattern=NOT_BLANK), AfterValidator(strip)]
EventTypes = Annotated[list[NotifiedEvent], Field(min_length=1, max_length=len(NotifiedEvent))]
Id = Annotated[str, StringConstraints(max_length=64)]


# The Slack app's signing secret (Basic Information > App Credentials), printable ASCII.
SlackSigningSecret = Annotated[
    str,
    StringConstraints(min_length=8, max_length=128, pattern=r"^[!-~]+$"),
    Field(json_schema_extra={"writeOnly": True}),
]


class CreateWebhook(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.create_webhook"
    caller: Caller
    kind: WebhookKind
    name: WebhookName
    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: list(NotifiedEvent))
    enabled: bool = True
    # Slack only: with it, messages carry Acknowledge and Resolve buttons, and clicks on them are
    # verified with it. Kept encrypted, never shown again.
    slack_signing_secret: SlackSigningSecret | None = None


class UpdateWebhook(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.update_webhook"
    caller: Caller
    webhook_id: Id
    name: WebhookName | None = None
    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = None
    # Slack only: a new signing secret; `null` removes it (and the buttons).
    slack_signing_secret: SlackSigningSecret | None = None


class WebhookRef(Command):
    """What the commands about one of them name; each command is its own subclass."""

    caller: Caller
    webhook_id: Id


class GetWebhook(WebhookRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_webhook"


class DeleteWebhook(WebhookRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.delete_webhook"


class ListWebhooks(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_webhooks"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class WebhookView(BaseModel):
    id: str
    kind: WebhookKind
    name: str
    url: str
    event_types: list[NotifiedEvent]
    enabled: bool
    # A Slack webhook with a signing secret: its messages have Acknowledge and Resolve buttons.
    interactive: bool = False
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class WebhookIssued(BaseModel):
    """`secret` (generic webhooks only) is in this reply only; integrations keeps it encrypted."""

    webhook: WebhookView
    secret: str | None


class WebhookPage(Page):
    items: list[WebhookView]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ListDeliveries(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_deliveries"
    caller: Caller
    webhook_id: Id
    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class RetryDelivery(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.retry_delivery"
    caller: Caller
    webhook_id: Id
    delivery_id: Id


class DeliveryView(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    incident_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: AwareDatetime | None
    created_at: AwareDatetime
    delivered_at: AwareDatetime | None


class DeliveryPage(Page):
    items: list[DeliveryView]


# ---- Slack users linked to SRE Copilot users (who a click on a Slack button acts as)

SlackIdText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Z0-9]+$")]


class SlackLinkSpec(NulFree):
    """A Slack member (`slack_user_id`, `U…`/`W…`, in the workspace `slack_team_id`, `T…`)."""

    model_config = ConfigDict(extra="forbid")

    slack_team_id: SlackIdText
    slack_user_id: SlackIdText


class SetSlackLink(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.set_slack_link"
    caller: Caller
    user_id: Id
    link: SlackLinkSpec


class SlackLinkRef(Command):
    """What the commands about one of them name; each command is its own subclass."""

    caller: Caller
    user_id: Id


class GetSlackLink(SlackLinkRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_slack_link"


class DeleteSlackLink(SlackLinkRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.delete_slack_link"


class IncidentSlackAction(SlackRequest):
    """A click on an incident notification's button (oncall takes the clicks on its pages)."""

    SUBJECT: ClassVar[str] = "cmd.integrations.slack_action"


class ListSlackLinks(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_slack_links"
    caller: Caller


class SlackLinkView(BaseModel):
    user_id: str
    slack_team_id: str
    slack_user_id: str
    created_by: str
    created_at: AwareDatetime


class SlackLinkList(BaseModel):
    items: list[SlackLinkView]


# ---- generic JSON sources: a mapping (JMESPath) from any JSON body to one alert

# A JMESPath expression; integrations compiles it (a 422 naming it otherwise).
Expression = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1_000, pattern=NOT_BLANK),
    Field(json_schema_extra={"format": "jmespath"}),
]
SourceName = WebhookName


class JsonMapping(NulFree):
    """JMESPath expressions (https://jmespath.org) read against each JSON body: `title` (required);
    `severity` (critical/high/medium/low, or P1-P5, error, warning, info...; medium when absent);
    `dedup_key` (one incident per value at a time; else one per title, service and labels);
    `status` (`firing` or `resolved`, or ok/closed/recovered/normal/inactive for resolved and
    alerting/triggered/open/problem/active for firing; firing when absent); `service`; `labels`
    (an object of strings)."""

    model_config = ConfigDict(extra="forbid")

    title: Expression
    severity: Expression | None = None
    dedup_key: Expression | None = None
    status: Expression | None = None
    service: Expression | None = None
    labels: Expression | None = None


class MappedAlert(BaseModel):
    """What a mapping read from one body."""

    title: str
    severity: str
    dedup_key: str
    status: Literal["firing", "resolved"]
    service: str | None
    labels: dict[str, str]


class JsonSourceView(BaseModel):
    id: str
    name: str
    mapping: JsonMapping
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class JsonSourcePage(Page):
    items: list[JsonSourceView]


class CreateJsonSource(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.create_json_source"
    caller: Caller
    name: SourceName
    mapping: JsonMapping


class UpdateJsonSource(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.update_json_source"
    caller: Caller
    source_id: Id
    name: SourceName | None = None
    mapping: JsonMapping | None = None


class JsonSourceRef(Command):
    """What the commands about one of them name; each command is its own subclass."""

    caller: Caller
    source_id: Id


class GetJsonSource(JsonSourceRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_json_source"


class DeleteJsonSource(JsonSourceRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.delete_json_source"


class ListJsonSources(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_json_sources"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class PreviewMapping(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.preview_mapping"
    caller: Caller
    mapping: JsonMapping
    sample: FreeJson = None


class MappingPreview(BaseModel):
    """Either the alert the sample reads as, or why the mapping cannot read it."""

    alert: MappedAlert | None
    problem: str | None


class ReceiveJson(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.receive_json"
    source: IntegrationSource
    source_id: Id
    body: FreeJson = None
    # The body as it arrived, for the rejected deliveries when the mapping cannot read it.
    raw: Annotated[str, StringConstraints(max_length=REJECTED_BODY_KEPT + 1)] = ""


class JsonAccepted(BaseModel):
    delivery_id: str
    alert: MappedAlert


# ---- maintenance windows and silences

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_.:/-]*$")
]
ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SERVICE_NAME)]
# Python's `re` syntax (not ECMA 262's, which `format: regex` means); integrations compiles it (a 422
# otherwise).
Regex = Annotated[
    str, StringConstraints(max_length=1_000), Field(json_schema_extra={"format": "python-regex"})
]
# An IANA time zone name (`Europe/Paris`); integrations checks it exists (a 422 otherwise).
TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$"),
    Field(json_schema_extra={"format": "iana-time-zone"}),
]


class EqualityMatcher(NulFree):
    """`label = value` or `label != value`. A label the alert lacks reads as ""."""

    model_config = ConfigDict(extra="forbid")

    label: LabelName
    op: Literal["=", "!="] = "="
    value: Annotated[str, StringConstraints(max_length=1_000)]


class RegexMatcher(NulFree):
    """`label =~ regex` / `label !~ regex`: the regular expression matches (does not match) the whole
    value, as Alertmanager's."""

    model_config = ConfigDict(extra="forbid")

    label: LabelName
    op: Literal["=~", "!~"]
    value: Regex


Matcher = EqualityMatcher | RegexMatcher


class Recurrence(NulFree):
    """Weekly: a window opens on each of `weekdays` at the time of day `starts_at` has in `timezone`,
    from `starts_at` on, until `until` (none: for ever)."""

    model_config = ConfigDict(extra="forbid")

    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    timezone: TimeZone = "UTC"
    until: Rfc3339 | None = None


class SilenceSpec(NulFree):
    """Firing alerts of any of `services` (an alert's service: `labels.service`, else `labels.job`) and
    matching every one of `matchers`, arriving while a window is open: from `starts_at` for
    `duration_minutes` (one-off), or each occurrence of `recurrence`. At least one service or
    matcher."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["services"], "properties": {"services": {"minItems": 1}}},
                {"required": ["matchers"], "properties": {"matchers": {"minItems": 1}}},
            ]
        },
    )

    name: WebhookName
    services: Annotated[list[ServiceName], Field(max_length=50)] = Field(default_factory=list)
    matchers: Annotated[list[Matcher], Field(max_length=20)] = Field(default_factory=list)
    starts_at: Rfc3339
    # Up to a year for a one-off window; a recurring one's occurrences each last this long.
    duration_minutes: Annotated[int, Field(ge=1, le=527_040), BeforeValidator(json_integer)]
    recurrence: Recurrence | None = None

    @model_validator(mode="after")
    def _something_to_match(self) -> SilenceSpec:
        if not self.services and not self.matchers:
            raise ValueError("name at least one service or one matcher")
        return self


class SilenceState(StrEnum):
    ACTIVE = "active"
    UPCOMING = "upcoming"
    EXPIRED = "expired"


class SilenceView(SilenceSpec):
    # What is stored was checked on the way in: the request's "services or matchers" is not repeated.
    model_config = ConfigDict(json_schema_extra=None)

    id: str
    state: SilenceState
    # The current occurrence's end when active, else the next occurrence's start (None: no more).
    next_change_at: AwareDatetime | None
    created_by: str
    created_at: AwareDatetime


class SilencePage(Page):
    items: list[SilenceView]


class CreateSilence(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.create_silence"
    caller: Caller
    silence: SilenceSpec


class SilenceRef(Command):
    """What the commands about one of them name; each command is its own subclass."""

    caller: Caller
    silence_id: Id


class GetSilence(SilenceRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_silence"


class DeleteSilence(SilenceRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.delete_silence"


class ListSilences(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_silences"
    caller: Caller
    state: SilenceState | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


# ---- correlation rules: alerts of different groups or sources sharing labels join one incident


class CorrelationSource(StrEnum):
    """Where an alert came from: `alertmanager` (Alertmanager and Grafana webhooks), `pagerduty`
    (Events v2) or `json` (generic JSON sources)."""

    ALERTMANAGER = "alertmanager"
    PAGERDUTY = "pagerduty"
    JSON = "json"


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("each value once")
    return values


UNIQUE = {"uniqueItems": True}
RuleLabels = Annotated[
    list[LabelName], Field(min_length=1, max_length=10, json_schema_extra=UNIQUE), AfterValidator(_distinct)
]
# Up to a day: the preview reads the last day's alerts.
WindowMinutes = Annotated[int, Field(ge=1, le=1_440), BeforeValidator(json_integer)]
RuleSources = Annotated[
    list[CorrelationSource], Field(max_length=3, json_schema_extra=UNIQUE), AfterValidator(_distinct)
]


class CorrelationRuleSpec(NulFree):
    """Firing alerts (of `sources`, or of every source when empty) that would open an incident join
    an open one instead when one of its firing alerts, of another group, has the same value for
    every one of `labels` and started within `window_minutes` of it (either side). An alert lacking
    one of the labels (or with it empty) is not correlated by this rule."""

    model_config = ConfigDict(extra="forbid")

    name: WebhookName
    labels: RuleLabels
    window_minutes: WindowMinutes
    sources: RuleSources = Field(default_factory=list)
    enabled: StrictBool = True


class CorrelationRuleView(CorrelationRuleSpec):
    id: str
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CorrelationRulePage(Page):
    items: list[CorrelationRuleView]


class CreateCorrelationRule(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.create_correlation_rule"
    caller: Caller
    rule: CorrelationRuleSpec


class UpdateCorrelationRule(Command):
    """Only what is given (not None) changes."""

    SUBJECT: ClassVar[str] = "cmd.integrations.update_correlation_rule"
    caller: Caller
    rule_id: Id
    name: WebhookName | None = None
    labels: RuleLabels | None = None
    window_minutes: WindowMinutes | None = None
    sources: RuleSources | None = None
    enabled: StrictBool | None = None


class CorrelationRuleRef(Command):
    """What the commands about one of them name; each command is its own subclass."""

    caller: Caller
    rule_id: Id


class GetCorrelationRule(CorrelationRuleRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.get_correlation_rule"


class DeleteCorrelationRule(CorrelationRuleRef):
    SUBJECT: ClassVar[str] = "cmd.integrations.delete_correlation_rule"


class ListCorrelationRules(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.list_correlation_rules"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class PreviewCorrelation(Command):
    SUBJECT: ClassVar[str] = "cmd.integrations.preview_correlation"
    caller: Caller
    rule: CorrelationRuleSpec


class PreviewAlert(BaseModel):
    delivery_id: str
    received_at: AwareDatetime
    starts_at: AwareDatetime
    source: CorrelationSource
    alertname: str
    fingerprint: str
    # The incident it opened or joined, as it happened (None: silenced, or not known).
    incident_id: str | None


class PreviewCluster(BaseModel):
    """Alerts of several groups the rule would have put in one incident."""

    labels: dict[str, str]
    groups: int
    alerts: list[PreviewAlert]
    incident_ids: list[str]


class CorrelationPreview(BaseModel):
    since: AwareDatetime
    until: AwareDatetime
    alerts_considered: int
    # More firing alerts were received than the preview reads (the newest are read).
    truncated: bool
    clusters: list[PreviewCluster]
    incidents_before: int
    incidents_after: int
