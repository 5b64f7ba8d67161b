"""What crosses the bus for on-call: schedules (layers, restrictions, overrides), escalation policies
and routing, the commands the gateway sends to the oncall service, and their replies."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from contracts.commands import Caller, Command, Email
from contracts.events import SERVICE_NAME, Severity
from contracts.integrations import LabelName, Matcher, WebhookUrl
from contracts.slack import SlackRequest
from contracts.wire import NOT_BLANK, NulFree, Rfc3339, json_integer, strip


class RotationType(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    HOURS = "hours"
    DAYS = "days"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = list(Weekday)


# The IANA time zones, as the `tzdata` package lists them (the same list wherever the API runs, unlike
# the system's zone files): the document states them as an enum, so an unknown zone is a 422 the
# schema already says.
TIME_ZONES: tuple[str, ...] = tuple(sorted(resources.files("tzdata").joinpath("zones").read_text().split()))
_KNOWN_ZONES = frozenset(TIME_ZONES)


def _time_zone(value: str) -> str:
    if value not in _KNOWN_ZONES:
        raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_time_zone),
    WithJsonSchema({"type": "string", "enum": list(TIME_ZONES), "description": "An IANA time zone"}),
]

# Any time the calendar has: the rules clamp what lies within days of its ends (see oncall/schedule.py).
Moment = Rfc3339


def _iso_date(value: object) -> object:
    """A date as JSON states it (`YYYY-MM-DD`), not a number pydantic would also read as one."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        raise ValueError("a date, e.g. 2026-12-01")
    return value


Day = Annotated[date, BeforeValidator(_iso_date)]
# Wall-clock time of day, minutes precision.
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
UserRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ScheduleName = Annotated[str, StringConstraints(max_length=120, pattern=NOT_BLANK), AfterValidator(strip)]
Text = Annotated[str, StringConstraints(max_length=2_000), AfterValidator(strip)]
Count = Annotated[int, Field(ge=1, le=8_760), BeforeValidator(json_integer)]


class RestrictionSpec(NulFree):
    """On these weekdays, from `start` to `end` in the layer's time zone; an `end` before `start`
    runs into the next day. `00:00`-`00:00` is the whole day; any other window whose `start` and
    `end` are the same time is refused (422)."""

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    start: ClockTime
    end: ClockTime


class LayerSpec(NulFree):
    """Participants hand off in order: the first from `start_date` at `handoff_time` (wall clock in
    `time_zone`), then the next every rotation (`daily`, `weekly`, or every `length` `hours`/`days`)."""

    name: Annotated[str, StringConstraints(max_length=120), AfterValidator(strip)] = ""
    participants: Annotated[list[UserRef], Field(min_length=1, max_length=100)]
    rotation: RotationType
    length: Count = 1
    start_date: Day
    handoff_time: ClockTime = "09:00"
    time_zone: TimeZoneName
    restrictions: Annotated[list[RestrictionSpec], Field(max_length=14)] = Field(default_factory=list)


Layers = Annotated[list[LayerSpec], Field(min_length=1, max_length=10)]


class OverrideView(BaseModel):
    id: str
    schedule_id: str
    user_id: str
    start: AwareDatetime
    end: AwareDatetime
    created_by: str
    created_at: AwareDatetime


class ScheduleView(BaseModel):
    id: str
    name: str
    description: str
    layers: list[LayerSpec]
    overrides: list[OverrideView]
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class SchedulePage(BaseModel):
    items: list[ScheduleView]
    next_cursor: str | None


class OnCallView(BaseModel):
    """Who is on call at `at` (`user_id` null: nobody), from which layer (its index) or override."""

    schedule_id: str
    at: AwareDatetime
    user_id: str | None
    layer: int | None = None
    override_id: str | None = None


class ShiftView(BaseModel):
    user_id: str
    start: AwareDatetime
    end: AwareDatetime
    layer: int | None = None
    override_id: str | None = None


class ShiftPage(BaseModel):
    schedule_id: str
    items: list[ShiftView]


# ---- commands


class CreateSchedule(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.create_schedule"
    caller: Caller
    name: ScheduleName
    description: Text = ""
    layers: Layers


class UpdateSchedule(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.update_schedule"
    caller: Caller
    schedule_id: str
    name: ScheduleName | None = None
    description: Text | None = None
    layers: Layers | None = None


class ScheduleRef(Command):
    """What the commands naming a schedule share; each is its own subclass, with its subject."""

    caller: Caller
    schedule_id: str


class GetSchedule(ScheduleRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_schedule"


class DeleteSchedule(ScheduleRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.delete_schedule"


class ListSchedules(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.list_schedules"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class CreateOverride(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.create_override"
    caller: Caller
    schedule_id: str
    user_id: UserRef
    start: Moment
    end: Moment


class OverrideRef(Command):
    """What the commands naming an override share; each is its own subclass, with its subject."""

    caller: Caller
    schedule_id: str
    override_id: str


class GetOverride(OverrideRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_override"


class DeleteOverride(OverrideRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.delete_override"


class OnCallAt(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.on_call"
    caller: Caller
    schedule_id: str
    at: Moment | None = None


class NextShifts(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.next_shifts"
    caller: Caller
    schedule_id: str
    after: Moment | None = None
    count: int = Field(default=10, ge=1, le=100)


# ---- escalation policies and routing


def _json_number(value: object) -> object:
    """A JSON number, never a boolean or a string (which pydantic would also read as one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return value


# Minutes as a JSON number (fractions allowed: a test's policy waits seconds).
Minutes = Annotated[float, Field(ge=0, le=10_080), BeforeValidator(_json_number)]
PolicyName = ScheduleName


class TargetKind(StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    TEAM = "team"


class TargetSpec(NulFree):
    """A person (`user`, a user id), whoever a schedule has on call when the step fires
    (`schedule`), or a `team` (its schedule's on-call, else every member)."""

    kind: TargetKind
    id: UserRef


class StepSpec(NulFree):
    """Notify `targets`, then wait `wait_minutes` before the next step."""

    targets: Annotated[list[TargetSpec], Field(min_length=1, max_length=20)]
    wait_minutes: Minutes = 5


class WarningCode(StrEnum):
    # A person the policy would page is deactivated (a step's user, a team's member, a participant
    # of a schedule): they are skipped when the step fires.
    DEACTIVATED = "deactivated"
    # A schedule or team a step (or a team) names was deleted: it pages nobody.
    MISSING = "missing"


class PolicyWarning(BaseModel):
    """What became untrue after the policy was saved: `step` and `target` say where, `user_id` who
    (for `deactivated`)."""

    code: WarningCode
    message: str
    step: int
    target: TargetSpec
    user_id: str | None = None


class PolicyView(BaseModel):
    id: str
    name: str
    steps: list[StepSpec]
    repeat: int
    # Computed when read: empty while every target can be paged.
    warnings: list[PolicyWarning] = Field(default_factory=list)
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class PolicyPage(BaseModel):
    items: list[PolicyView]
    next_cursor: str | None


LabelValue = Annotated[str, StringConstraints(max_length=1_000)]
LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_.:/-]*$"
# Stated with `propertyNames` (pydantic would write `patternProperties`, which lets any other name
# through as far as the schema goes, while the model refuses it).
Labels = Annotated[
    dict[LabelName, LabelValue],
    Field(max_length=20),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 20,
            "propertyNames": {"minLength": 1, "maxLength": 256, "pattern": LABEL_NAME},
            "additionalProperties": {"type": "string", "maxLength": 1_000},
        }
    ),
]


class RuleSpec(NulFree):
    """Incidents of this service (any when absent), of one of these severities (any when empty),
    whose labels (those of the alert that opened the incident) equal every one of `labels` and
    match every one of `matchers` (as silences' matchers: `=`, `!=`, `=~`, `!~`; a label the
    incident lacks reads as "") go to `policy_id`."""

    policy_id: Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-f-]{36}$")]
    service_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SERVICE_NAME)] | None
    ) = None
    severities: Annotated[list[Severity], Field(max_length=4)] = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    matchers: Annotated[list[Matcher], Field(max_length=20)] = Field(default_factory=list)


class RoutingView(BaseModel):
    rules: list[RuleSpec]
    default_policy_id: str | None


class ServiceOnCallView(BaseModel):
    """Who the policy routed for `service_name` pages first, right now."""

    service_name: str
    policy_id: str | None
    user_ids: list[str]


class CreatePolicy(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.create_policy"
    caller: Caller
    name: PolicyName
    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=20)]
    repeat: int = Field(default=0, ge=0, le=10)


class UpdatePolicy(Command):
    """Replace a policy's name, steps and repeat (escalations under way keep the policy they
    started with)."""

    SUBJECT: ClassVar[str] = "cmd.oncall.update_policy"
    caller: Caller
    policy_id: str
    name: PolicyName
    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=20)]
    repeat: int = Field(default=0, ge=0, le=10)


class PolicyRef(Command):
    """What the commands naming a policy share; each is its own subclass, with its subject."""

    caller: Caller
    policy_id: str


class GetPolicy(PolicyRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_policy"


class DeletePolicy(PolicyRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.delete_policy"


class ListPolicies(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.list_policies"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class PutRouting(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.put_routing"
    caller: Caller
    rules: Annotated[list[RuleSpec], Field(max_length=100)]
    default_policy_id: Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-f-]{36}$")] | None = (
        None
    )


class GetRouting(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_routing"
    caller: Caller


class ServiceOnCall(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.service_on_call"
    caller: Caller
    service_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]


# ---- teams

TeamName = ScheduleName
TeamMembers = Annotated[list[UserRef], Field(min_length=1, max_length=100)]
ScheduleIdRef = Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-f-]{36}$")]


class TeamWarning(BaseModel):
    """What became untrue after the team was saved: a member (or a participant of its schedule)
    deactivated, or its schedule deleted."""

    code: WarningCode
    message: str
    user_id: str | None = None


class TeamView(BaseModel):
    """A step naming the team pages its schedule's on-call (when it has a schedule and someone is on
    call), else every member."""

    id: str
    name: str
    members: list[str]
    schedule_id: str | None
    warnings: list[TeamWarning] = Field(default_factory=list)
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class TeamPage(BaseModel):
    items: list[TeamView]
    next_cursor: str | None


class CreateTeam(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.create_team"
    caller: Caller
    name: TeamName
    members: TeamMembers
    schedule_id: ScheduleIdRef | None = None


class UpdateTeam(Command):
    """Only what is given changes (`fields`: the names given, so `schedule_id: null` clears it)."""

    SUBJECT: ClassVar[str] = "cmd.oncall.update_team"
    caller: Caller
    team_id: str
    name: TeamName | None = None
    members: TeamMembers | None = None
    schedule_id: ScheduleIdRef | None = None
    fields: list[str] = Field(default_factory=list)


class TeamRef(Command):
    """What the commands naming a team share; each is its own subclass, with its subject."""

    caller: Caller
    team_id: str


class GetTeam(TeamRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_team"


class DeleteTeam(TeamRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.delete_team"


class ListTeams(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.list_teams"
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


# ---- contact methods and acknowledgements


class ChannelKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"


class ContactMethodView(BaseModel):
    """`address`: an email address, a webhook URL, or a Slack member id (a DM from the bot)."""

    id: str
    user_id: str
    kind: ChannelKind
    address: str
    delay_minutes: float
    created_at: AwareDatetime


class ContactMethodIssued(ContactMethodView):
    """`secret` (webhooks) signs every notification (`SRE-Copilot-Signature`); shown this once."""

    secret: str | None


class ContactMethodPage(BaseModel):
    items: list[ContactMethodView]


class EmailContact(NulFree):
    kind: Literal[ChannelKind.EMAIL]
    address: Email
    delay_minutes: Minutes = 0


class WebhookContact(NulFree):
    """A signed POST (the `SRE-Copilot-Signature` of generic webhooks) to an SMS or phone gateway."""

    kind: Literal[ChannelKind.WEBHOOK]
    address: WebhookUrl
    delay_minutes: Minutes = 0


class SlackContact(NulFree):
    """A DM from the bot (`SLACK_BOT_TOKEN`) to this Slack member id."""

    kind: Literal[ChannelKind.SLACK]
    address: Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,20}$")]
    delay_minutes: Minutes = 0


ContactSpec = Annotated[EmailContact | WebhookContact | SlackContact, Field(discriminator="kind")]


class CreateContactMethod(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.create_contact_method"
    caller: Caller
    kind: ChannelKind
    address: Annotated[str, StringConstraints(min_length=1, max_length=2_048)]
    delay_minutes: Minutes = 0


class ListContactMethods(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.list_contact_methods"
    caller: Caller


class ContactMethodRef(Command):
    """What the commands naming a contact method share; each is its own subclass, with its subject."""

    caller: Caller
    contact_method_id: str


class GetContactMethod(ContactMethodRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.get_contact_method"


class DeleteContactMethod(ContactMethodRef):
    SUBJECT: ClassVar[str] = "cmd.oncall.delete_contact_method"


class AcknowledgePage(Command):
    """From a notification's link: the signed token is the authority (no caller)."""

    SUBJECT: ClassVar[str] = "cmd.oncall.acknowledge_page"
    page_id: str
    token: Annotated[str, StringConstraints(max_length=512)]


class SlackPageAction(SlackRequest):
    """A click on a page's Slack DM (its Acknowledge button), forwarded as Slack sent it."""

    SUBJECT: ClassVar[str] = "cmd.oncall.slack_action"


class PageAcknowledgedView(BaseModel):
    page_id: str
    incident_id: str
    user_id: str
    acknowledged_at: AwareDatetime


# ---- calendar feeds (iCalendar)

CalendarToken = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class CalendarFeedIssued(BaseModel):
    """The secret part of your calendar addresses, shown this once; regenerating it makes the old
    addresses stop working."""

    token: str
    my_shifts_path: str
    schedule_path_template: str


class IssueCalendarFeed(Command):
    SUBJECT: ClassVar[str] = "cmd.oncall.issue_calendar_feed"
    caller: Caller


class ReadCalendar(Command):
    """`schedule_id` None: the token owner's own shifts in every schedule."""

    SUBJECT: ClassVar[str] = "cmd.oncall.read_calendar"
    token: CalendarToken
    schedule_id: str | None = None


class CalendarText(BaseModel):
    ics: str
