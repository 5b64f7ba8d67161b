"""The API models of on-call: schedules and overrides, escalation policies and routing, teams, contact
methods, acknowledgements and calendar feeds."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
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
from contracts.wire import json_integer
from gateway.http.fields import UUID_PATTERN, Strict

# ---- schedules and overrides


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


# ---- escalation policies, routing, contact methods, acknowledgements


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
