"""The API models of incidents, their hypotheses and timeline, postmortems and follow-ups
(`XCreate / XRead / XPage`)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from contracts.events import (
    Description,
    FeedbackVerdict,
    IncidentState,
    Note,
    Severity,
)
from contracts.wire import NOT_BLANK, strip
from gateway.http.fields import (
    NOT_NULL,
    Generation,
    NameText,
    RootCauseText,
    ServiceNameText,
    Strict,
    TitleText,
)


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


class TimelineEntryRead(BaseModel):
    id: str
    seq: int
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any]


class TimelineRead(BaseModel):
    items: list[TimelineEntryRead]


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
