"""What crosses the bus for integrations: the inbound payloads as senders write them (Alertmanager,
Grafana, CI), the commands the gateway sends to the integrations service, and their replies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from contracts.commands import Caller, Command
from contracts.events import SERVICE_NAME, KeyScope
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


class ReceiveAlerts(Command):
    source: IntegrationSource
    payload: AlertmanagerPayload


class AlertsAccepted(BaseModel):
    """Stored; it is worked on in the background, in arrival order for the tenant."""

    delivery_id: str
    alerts: int


class RecordDeploy(Command):
    source: IntegrationSource
    deploy: DeployReport


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
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


# ---- what a service went through lately (deploys recorded, alerts received): for the MCP server

# `<microseconds since the epoch>.<the rest of the row's key>`, as the previous page's last row left it.
ActivityCursor = Annotated[str, StringConstraints(max_length=256, pattern=r"^-?[0-9]{1,16}\.[!-~]{1,230}$")]


class ListServiceDeploys(Command):
    """The service's deploys, newest first (any role may read them)."""

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
    caller: Caller
    status: InboundStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class GetIntegrationSettings(Command):
    caller: Caller


class UpdateIntegrationSettings(Command):
    caller: Caller
    auto_resolve: bool | None = None


class IntegrationSettingsView(BaseModel):
    # Resolve an incident opened from alerts once every one of its alerts is resolved.
    auto_resolve: bool


# ---- outbound webhooks


class WebhookKind(StrEnum):
    SLACK = "slack"  # a Slack incoming webhook: a Block Kit message
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


class CreateWebhook(Command):
    caller: Caller
    kind: WebhookKind
    name: WebhookName
    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: list(NotifiedEvent))
    enabled: bool = True


class UpdateWebhook(Command):
    caller: Caller
    webhook_id: Id
    name: WebhookName | None = None
    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = None


class WebhookRef(Command):
    caller: Caller
    webhook_id: Id


class ListWebhooks(Command):
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
    caller: Caller
    webhook_id: Id
    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor | None = None


class RetryDelivery(Command):
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
