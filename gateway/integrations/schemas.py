"""The API models of the integrations: inbound alerts, deploys and JSON sources, silences, correlation
rules, outbound webhooks and Slack."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
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
from gateway.http.fields import NameText, Strict


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
