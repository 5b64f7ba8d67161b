"""What crosses the bus for on-call: schedules (layers, restrictions, overrides), escalation policies
and routing, the commands the gateway sends to the oncall service, and their replies."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field, StringConstraints

from contracts.commands import Caller, Command
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


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)") from exc
    return value


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$"),
    AfterValidator(_time_zone),
]
# Wall-clock time of day, minutes precision.
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
UserRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ScheduleName = Annotated[str, StringConstraints(max_length=120, pattern=NOT_BLANK), AfterValidator(strip)]
Text = Annotated[str, StringConstraints(max_length=2_000), AfterValidator(strip)]
Count = Annotated[int, Field(ge=1, le=8_760), BeforeValidator(json_integer)]


class RestrictionSpec(NulFree):
    """On these weekdays, from `start` to `end` in the layer's time zone; an `end` at or before
    `start` runs into the next day (`00:00`-`00:00` is the whole day)."""

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
    start_date: Annotated[date, Field(ge=date(1970, 1, 1), le=date(8999, 12, 31))]
    handoff_time: ClockTime = "09:00"
    time_zone: TimeZoneName
    restrictions: Annotated[list[RestrictionSpec], Field(max_length=14)] = Field(default_factory=list)


Layers = Annotated[list[LayerSpec], Field(min_length=1, max_length=10)]


class OverrideView(BaseModel):
    id: str
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
    caller: Caller
    name: ScheduleName
    description: Text = ""
    layers: Layers


class UpdateSchedule(Command):
    caller: Caller
    schedule_id: str
    name: ScheduleName | None = None
    description: Text | None = None
    layers: Layers | None = None


class ScheduleRef(Command):
    caller: Caller
    schedule_id: str


class ListSchedules(Command):
    caller: Caller
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class CreateOverride(Command):
    caller: Caller
    schedule_id: str
    user_id: UserRef
    start: Rfc3339
    end: Rfc3339


class OverrideRef(Command):
    caller: Caller
    schedule_id: str
    override_id: str


class OnCallAt(Command):
    caller: Caller
    schedule_id: str
    at: Rfc3339 | None = None


class NextShifts(Command):
    caller: Caller
    schedule_id: str
    after: Rfc3339 | None = None
    count: int = Field(default=10, ge=1, le=100)
