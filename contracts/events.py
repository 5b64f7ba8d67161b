"""Every domain event's payload, and the registry that maps (type, version) to its model."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

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


class FeedbackVerdict(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


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
SERVICE_NAME = r"^[A-Za-z0-9._:/-]+$"
ServiceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=SERVICE_NAME)
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


# ---- identity: users beyond their creation, and integration keys (auth emits all of these)
class UserStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class KeyScope(StrEnum):
    """What an integration key may do; each endpoint that accepts keys names the scope it needs."""

    ALERTS_WRITE = "alerts:write"
    DEPLOYS_WRITE = "deploys:write"
    # The MCP server at /mcp: reading incidents, and (with both) acknowledging, noting, giving feedback.
    MCP_READ = "mcp:read"
    MCP_WRITE = "mcp:write"


class UserInvited(EventData):
    user_id: str
    email: str
    full_name: str
    role: Role
    invited_by: str
    expires_at: AwareDatetime


class UserActivated(EventData):
    """An invited user accepted the invitation (set a password): they can now log in."""

    user_id: str
    full_name: str


class UserReactivated(EventData):
    user_id: str


class UserDeactivated(EventData):
    """Access tokens carrying an older `sep` (session epoch) than this are refused from now on."""

    user_id: str
    session_epoch: int = Field(ge=0)


class UserRoleChanged(EventData):
    user_id: str
    from_role: Role
    to_role: Role


class UserPasswordChanged(EventData):
    user_id: str
    session_epoch: int = Field(ge=0)


class IntegrationKeyCreated(EventData):
    """Never the secret: only its SHA-256, which the gateway compares against presented keys."""

    key_id: str
    name: str
    scopes: list[KeyScope]
    secret_sha256: str
    created_by: str
    created_at: AwareDatetime


class IntegrationKeyRevoked(EventData):
    key_id: str
    revoked_at: AwareDatetime


class IncidentSnapshot(EventData):
    """The incident as it stands after a change: its whole field set, written once here. Every
    incident event carries one, so a view applies the one with the highest `version` and converges to
    the same state whatever order the events reach it in (a late event never undoes a newer one)."""

    id: str
    key: str
    number: int
    title: str
    description: str
    service_name: str
    severity: Severity
    state: IncidentState
    version: int = Field(ge=1)
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    # The first move out of `detected` (time to acknowledge ends there), and the last resolution
    # (cleared when the incident is reopened).
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    assignee_id: str | None = None
    root_cause: str | None = None
    # The earlier incident this one continues (an alert firing again after its incident was resolved).
    related_incident_id: str | None = None

    def row(self, tenant_id: str) -> dict[str, Any]:
        """The snapshot as column values (ids as UUIDs, enums as their values), for any view's table;
        each view keeps the columns it has."""
        values = self.model_dump()
        values.update(
            id=uuid.UUID(self.id),
            tenant_id=tenant_id,
            severity=self.severity.value,
            state=self.state.value,
            related_incident_id=uuid.UUID(self.related_incident_id) if self.related_incident_id else None,
        )
        return values


class IncidentCreated(EventData):
    incident_id: str
    incident: IncidentSnapshot
    # The labels of the alert that opened the incident (none for one opened by hand): what on-call
    # routing rules match on.
    labels: dict[str, str] = Field(default_factory=dict)


class IncidentStateChanged(EventData):
    incident_id: str
    from_state: IncidentState
    to_state: IncidentState
    note: str = ""
    changed_at: AwareDatetime
    # What the responders found, recorded when resolving: what later incidents cite, and what
    # hypothesis accuracy is measured against.
    root_cause: str | None = None
    # None only in history written before version 2, which is upcast without one (its fields
    # cannot be rebuilt from the change alone): views apply such an event as a change instead.
    incident: IncidentSnapshot | None = None


class HypothesisFeedbackRecorded(EventData):
    """A responder's verdict on one ranked hypothesis of one generation."""

    incident_id: str
    generation: int = Field(ge=1)
    rank: int = Field(ge=1)
    claim: str
    engine: str
    verdict: FeedbackVerdict
    comment: str = ""
    given_by: str
    given_at: AwareDatetime


class FieldChange(EventData):
    old: str | None
    new: str | None


class IncidentUpdated(EventData):
    """Fields of an incident changed; `changes` names only the fields that did (for the timeline),
    `incident` is the whole incident after them (for every view)."""

    incident_id: str
    changes: dict[str, FieldChange]
    updated_at: AwareDatetime
    incident: IncidentSnapshot | None = None  # None only in upcast history, see IncidentStateChanged


class IncidentNoteAdded(EventData):
    incident_id: str
    note_id: str
    body: str
    added_at: AwareDatetime


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
    # Each generation for an incident is numbered 1, 2, ...; the API serves the latest.
    generation: int = Field(default=1, ge=1)
    # What caused it: "incident.created", "alert.attached", "deploy.recorded", "regenerate".
    trigger: str = "incident.created"
    # Set when the requested engine failed and another one answered instead.
    fallback_reason: str | None = None


class EvidenceItem(EventData):
    """One checkable fact behind a hypothesis."""

    kind: str  # "report", "deploy", "alert", "similar_incident", "metric", ...
    summary: str
    source: str
    time: AwareDatetime | None = None
    link: str | None = None


class EvidenceCollected(EventData):
    """Published before the hypotheses that cite it, so a generation can be reproduced from the log."""

    incident_id: str
    generation: int = Field(ge=1)
    items: list[EvidenceItem]
    collected_at: AwareDatetime


class HypothesisRegenerationRequested(EventData):
    """Someone asked for fresh hypotheses; ai_worker's consumer turns it into a generation."""

    incident_id: str
    requested_by: str
    requested_at: AwareDatetime


class DeployRecorded(EventData):
    deploy_id: str
    service_name: str
    version: str
    environment: str
    commit: str | None = None
    author: str | None = None
    deployed_at: AwareDatetime


class AlertAttached(EventData):
    """An Alertmanager alert joined an incident (or changed status: firing -> resolved)."""

    incident_id: str
    fingerprint: str
    status: str  # "firing" | "resolved"
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    generator_url: str | None = None


class AlertCorrelated(EventData):
    """A firing alert that would have opened an incident joined this open one by a correlation rule:
    it shares `labels` (the rule's labels, with their values) with `matched_fingerprint`, an alert of
    another group already in the incident, and started within the rule's window of it. Its
    `alert.attached` follows."""

    incident_id: str
    rule_id: str
    rule_name: str
    labels: dict[str, str]
    window_minutes: int
    fingerprint: str
    alertname: str
    source: str
    matched_fingerprint: str
    matched_alertname: str
    matched_source: str
    reason: str


# ---- on-call: escalations and pages (each on the incident's timeline)


class EscalationStarted(EventData):
    """An incident's escalation policy started (chosen by the routing rules)."""

    incident_id: str
    policy_id: str
    policy_name: str


class EscalationStepReached(EventData):
    """A step of the policy fired: `user_ids` are paged (a schedule's on-call resolved at that time).
    `last`: the last step of the last round, the escalation has nowhere further to go."""

    incident_id: str
    policy_id: str
    round: int = Field(ge=0)
    step: int = Field(ge=0)
    user_ids: list[str]
    last: bool = False


class PageNotified(EventData):
    """One notification of a page through one contact method, and what came of it."""

    incident_id: str
    page_id: str
    user_id: str
    channel: str  # "email" | "webhook" | "slack"
    delivered: bool
    error: str | None = None


class PageAcknowledged(EventData):
    """Someone acknowledged from a page's link: the incident is acknowledged, the escalation stops."""

    incident_id: str
    page_id: str
    user_id: str
    acknowledged_at: AwareDatetime


class EscalationStopped(EventData):
    """No more steps: `reason` is `acknowledged`, `resolved` or `exhausted` (the last step's wait ran
    out with nobody acknowledging)."""

    incident_id: str
    policy_id: str
    reason: str


# ---- postmortems and follow-up actions (the incidents service emits these)
class PostmortemStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Citation(EventData):
    """An event of the log a line of a postmortem comes from: its id and its stream sequence."""

    event_id: str
    seq: int = Field(ge=1)


class PostmortemSnapshot(EventData):
    """An incident's postmortem as it stands after a change (every postmortem event carries it, so a
    view keeps the highest `version`). `markdown` cites events as `[#<seq>](#event-<event id>)`."""

    incident_id: str
    version: int = Field(ge=1)
    status: PostmortemStatus
    markdown: str
    citations: list[Citation]
    # Who wrote the text of the last generated draft ("template" or "claude"), and why Claude's
    # draft was not used when it was asked for and the template answered instead.
    engine: str
    fallback_reason: str | None = None
    updated_by: str
    updated_at: AwareDatetime
    published_at: AwareDatetime | None = None
    # The version that was published last (an edit after publishing makes a new draft).
    published_version: int | None = None


class PostmortemDrafted(EventData):
    """A draft was generated from the incident's events (a new version)."""

    incident_id: str
    postmortem: PostmortemSnapshot


class PostmortemEdited(EventData):
    """A person changed the draft's markdown (a new version)."""

    incident_id: str
    postmortem: PostmortemSnapshot


class PostmortemPublished(EventData):
    """The postmortem's current version is the review of record."""

    incident_id: str
    published_version: int = Field(ge=1)
    postmortem: PostmortemSnapshot


class FollowUpSnapshot(EventData):
    """A follow-up action of an incident as it stands after a change."""

    id: str
    incident_id: str
    title: str
    owner: str | None = None
    due_date: date | None = None
    done: bool = False
    version: int = Field(ge=1)
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    done_at: AwareDatetime | None = None


class FollowUpAdded(EventData):
    incident_id: str
    follow_up: FollowUpSnapshot


class FollowUpUpdated(EventData):
    """`changes` names the fields that changed (old and new as text)."""

    incident_id: str
    changes: dict[str, FieldChange]
    follow_up: FollowUpSnapshot


EVENT_TYPES: dict[tuple[str, int], type[EventData]] = {
    ("tenant.created", 1): TenantCreated,
    ("user.created", 1): UserCreated,
    ("user.invited", 1): UserInvited,
    ("user.activated", 1): UserActivated,
    ("user.reactivated", 1): UserReactivated,
    ("user.deactivated", 1): UserDeactivated,
    ("user.role_changed", 1): UserRoleChanged,
    ("user.password_changed", 1): UserPasswordChanged,
    ("integration_key.created", 1): IntegrationKeyCreated,
    ("integration_key.revoked", 1): IntegrationKeyRevoked,
    ("incident.created", 2): IncidentCreated,
    ("incident.state_changed", 2): IncidentStateChanged,
    ("incident.updated", 2): IncidentUpdated,
    ("incident.note_added", 1): IncidentNoteAdded,
    ("hypothesis.generated", 1): HypothesisGenerated,
    ("evidence.collected", 1): EvidenceCollected,
    ("hypothesis.regeneration_requested", 1): HypothesisRegenerationRequested,
    ("hypothesis.feedback_recorded", 1): HypothesisFeedbackRecorded,
    ("deploy.recorded", 1): DeployRecorded,
    ("alert.attached", 1): AlertAttached,
    ("alert.correlated", 1): AlertCorrelated,
    ("escalation.started", 1): EscalationStarted,
    ("escalation.step_reached", 1): EscalationStepReached,
    ("escalation.stopped", 1): EscalationStopped,
    ("page.notified", 1): PageNotified,
    ("page.acknowledged", 1): PageAcknowledged,
    ("postmortem.drafted", 1): PostmortemDrafted,
    ("postmortem.edited", 1): PostmortemEdited,
    ("postmortem.published", 1): PostmortemPublished,
    ("follow_up.added", 1): FollowUpAdded,
    ("follow_up.updated", 1): FollowUpUpdated,
}
CURRENT_VERSION: dict[str, int] = {}
for _type, _version in EVENT_TYPES:
    CURRENT_VERSION[_type] = max(_version, CURRENT_VERSION.get(_type, 0))
MODEL_TYPE: dict[type[EventData], str] = {model: t for (t, _v), model in EVENT_TYPES.items()}


# The events whose data carries the incident's snapshot (`incident`).
INCIDENT_EVENT_TYPES = frozenset({"incident.created", "incident.state_changed", "incident.updated"})


def incident_snapshot(data: EventData) -> IncidentSnapshot | None:
    """The snapshot an event carries, if it is an incident event that has one."""
    if isinstance(data, IncidentCreated | IncidentStateChanged | IncidentUpdated):
        return data.incident
    return None


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
