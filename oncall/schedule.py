"""The final schedule, computed: layers, then their restrictions, then overrides. Pure (no I/O, no
clock): every function takes the instants it works on, so tests drive it with any time they like.

- A **layer** hands off between its participants, in order, starting with the first at the layer's
  first handoff (`start_date` at `handoff_time`, wall clock in `time_zone`). A day-based rotation
  (`daily`, `weekly`, every N `days`) keeps the wall-clock handoff time: across a DST change a shift is
  an hour shorter or longer. An hour-based one (every N `hours`) counts real hours from the first
  handoff, so its handoffs drift on the wall clock when the offset changes.
- A wall-clock time that does not exist (the hour skipped in spring) is read with the offset before
  the change (PEP 495's `fold=0`: 02:30 on a spring-forward night is 03:30 after it); one that occurs
  twice (the hour repeated in autumn) is its first occurrence.
- **Restrictions** (weekly windows, e.g. Monday to Friday 09:00-17:00 in the layer's zone; an end at
  or before the start runs past midnight into the next day) limit when a layer's participant is on
  call; a layer without restrictions is on call around the clock.
- **Layers** stack: where several have someone, the last layer wins (layers are listed bottom-up).
- **Overrides** put a person on call over a range whatever the layers say; where overrides overlap,
  the later one (listed later: created later) wins.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class RotationType(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    HOURS = "hours"
    DAYS = "days"


class ScheduleError(ValueError):
    """A schedule the rules cannot compute: an unknown zone, an empty layer, a bad window."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc, self.message = list(loc), message


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name (ScheduleError otherwise)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(["time_zone"], f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class Window:
    """On the listed weekdays (0 = Monday), from `start` to `end`, wall clock; `end <= start` ends the
    next day."""

    weekdays: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True)
class Layer:
    participants: tuple[str, ...]
    rotation: RotationType
    start_date: date
    handoff_time: time
    time_zone: str
    # Only for `hours` and `days`: every N of them (`daily` is one day, `weekly` seven).
    length: int = 1
    restrictions: tuple[Window, ...] = ()

    def check(self, index: int) -> None:
        where: list[str | int] = ["layers", index]
        if not self.participants:
            raise ScheduleError([*where, "participants"], "a layer needs at least one participant")
        if self.length < 1:
            raise ScheduleError([*where, "length"], "a rotation is at least one hour or day long")
        try:
            zone(self.time_zone)
        except ScheduleError as exc:
            raise ScheduleError([*where, "time_zone"], exc.message) from None
        for n, window in enumerate(self.restrictions):
            if not window.weekdays or not window.weekdays <= set(range(7)):
                raise ScheduleError([*where, "restrictions", n, "weekdays"], "weekdays are 0 (Monday) to 6")
            if window.start == window.end and window.start != time(0):
                # A 24-hour window is spelled 00:00-00:00; any other equal pair is ambiguous.
                raise ScheduleError([*where, "restrictions", n], "a window's start and end differ")


@dataclass(frozen=True)
class Override:
    user_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Schedule:
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()

    def check(self) -> None:
        for index, layer in enumerate(self.layers):
            layer.check(index)
        for index, override in enumerate(self.overrides):
            if override.end <= override.start:
                raise ScheduleError(["overrides", index, "end"], "an override ends after it starts")


@dataclass(frozen=True)
class OnCall:
    """Who is on call, and why: `layer` is the index of the layer, `override` of the override."""

    user_id: str
    layer: int | None = None
    override: int | None = None


@dataclass(frozen=True)
class Shift:
    user_id: str
    start: datetime
    end: datetime
    layer: int | None = None
    override: int | None = None


@dataclass(frozen=True)
class _Rotation:
    """A layer's handoffs: `handoff(k)` is when the k-th shift starts (k may be negative)."""

    layer: Layer
    tz: ZoneInfo = field(init=False)
    days: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zone(self.layer.time_zone))
        days = {RotationType.DAILY: 1, RotationType.WEEKLY: 7, RotationType.DAYS: self.layer.length}
        object.__setattr__(self, "days", days.get(self.layer.rotation, 0))

    def handoff(self, k: int) -> datetime:
        layer = self.layer
        try:
            if self.days:
                day = layer.start_date + timedelta(days=k * self.days)
                return wall_clock(day, layer.handoff_time, self.tz)
            first = wall_clock(layer.start_date, layer.handoff_time, self.tz)
            return first + timedelta(hours=k * layer.length)
        except OverflowError:
            return LAST if k > 0 else FIRST

    def index(self, at: datetime) -> int:
        """The shift `at` falls in (negative before the first handoff)."""
        if self.days:
            local = at.astimezone(self.tz).date()
            k = (local - self.layer.start_date).days // self.days
        else:
            first = wall_clock(self.layer.start_date, self.layer.handoff_time, self.tz)
            k = int((at - first) // timedelta(hours=self.layer.length))
        # The wall-clock estimate can be one off either way near a handoff.
        while self.handoff(k) > at:
            k -= 1
        while self.handoff(k + 1) <= at:
            k += 1
        return k

    def participant(self, at: datetime) -> str | None:
        k = self.index(at)
        if k < 0:
            return None
        return self.layer.participants[k % len(self.layer.participants)]


# The ends of the calendar: instants are taken a week inside them (a rotation's arithmetic around an
# instant reaches a few days either way), and a handoff past them is at the end itself.
FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
SAFE_FIRST, SAFE_LAST = FIRST + timedelta(days=7), LAST - timedelta(days=7)


def wall_clock(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) that reads `day` `at` on the clocks of `tz` (see the module's rules)."""
    try:
        return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return FIRST if day.year < 5000 else LAST


def _window_spans(
    window: Window, tz: ZoneInfo, first: date, last: date
) -> Iterable[tuple[datetime, datetime]]:
    day = first
    while day <= last:
        if day.weekday() in window.weekdays:
            start = wall_clock(day, window.start, tz)
            end_day = day + timedelta(days=1) if window.end <= window.start else day
            end = wall_clock(end_day, window.end, tz)
            if end > start:
                yield start, end
        day += timedelta(days=1)


def _local_days(at: datetime, tz: ZoneInfo) -> tuple[date, date]:
    local = at.astimezone(tz).date()
    return local - timedelta(days=2), local + timedelta(days=1)


def _allowed(layer: Layer, tz: ZoneInfo, at: datetime) -> bool:
    if not layer.restrictions:
        return True
    first, last = _local_days(at, tz)
    return any(
        start <= at < end
        for window in layer.restrictions
        for start, end in _window_spans(window, tz, first, last)
    )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("instants are timezone-aware")
    try:
        at = at.astimezone(UTC)
    except OverflowError:
        return SAFE_FIRST if at.year < 5000 else SAFE_LAST
    return min(max(at, SAFE_FIRST), SAFE_LAST)


def on_call_at(schedule: Schedule, at: datetime) -> OnCall | None:
    """Who is on call at `at`: the latest override covering it, else the last layer with someone."""
    at = _utc(at)
    for index in range(len(schedule.overrides) - 1, -1, -1):
        override = schedule.overrides[index]
        if override.start <= at < override.end:
            return OnCall(override.user_id, override=index)
    for index in range(len(schedule.layers) - 1, -1, -1):
        layer = schedule.layers[index]
        rotation = _Rotation(layer)
        user = rotation.participant(at)
        if user is not None and _allowed(layer, rotation.tz, at):
            return OnCall(user, layer=index)
    return None


def _boundaries(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in (start, end) at which the answer of `on_call_at` may change."""
    points: set[datetime] = set()
    for layer in schedule.layers:
        rotation = _Rotation(layer)
        k = max(rotation.index(start), -1) + 1
        while (handoff := rotation.handoff(k)) < end:
            points.add(handoff)
            k += 1
        first = start.astimezone(rotation.tz).date() - timedelta(days=2)
        last = end.astimezone(rotation.tz).date() + timedelta(days=1)
        for window in layer.restrictions:
            for span in _window_spans(window, rotation.tz, first, last):
                points.update(span)
    for override in schedule.overrides:
        points.update((override.start, override.end))
    return sorted(p for p in points if start < p < end)


def final_shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The final schedule between `start` and `end`: consecutive shifts of one person (from the same
    layer or override) are one shift; a time nobody covers is no shift."""
    start, end = _utc(start), _utc(end)
    shifts: list[Shift] = []
    edges = [start, *_boundaries(schedule, start, end), end]
    for left, right in itertools.pairwise(edges):
        who = on_call_at(schedule, left)
        if who is None:
            continue
        last = shifts[-1] if shifts else None
        if (
            last is not None
            and last.end == left
            and (last.user_id, last.layer, last.override) == (who.user_id, who.layer, who.override)
        ):
            shifts[-1] = Shift(who.user_id, last.start, right, who.layer, who.override)
        else:
            shifts.append(Shift(who.user_id, left, right, who.layer, who.override))
    return shifts


def next_shifts(schedule: Schedule, after: datetime, count: int, horizon_days: int = 366) -> list[Shift]:
    """The next `count` shifts from `after` (the one under way first), looking at most `horizon_days`
    ahead."""
    after = _utc(after)
    found: list[Shift] = []
    window, start = timedelta(days=14), after
    limit = (
        min(after + timedelta(days=horizon_days), SAFE_LAST)
        if after < SAFE_LAST - timedelta(days=horizon_days)
        else SAFE_LAST
    )
    # One more than asked: the last one found may go on past the window looked at.
    while len(found) <= count and start < limit:
        stop = min(start + window, limit) if start < limit - window else limit
        for shift in final_shifts(schedule, start, stop):
            if found and found[-1].end == shift.start and _same(found[-1], shift):
                found[-1] = Shift(shift.user_id, found[-1].start, shift.end, shift.layer, shift.override)
            else:
                found.append(shift)
        start = stop
    return found[:count]


def _same(a: Shift, b: Shift) -> bool:
    return (a.user_id, a.layer, a.override) == (b.user_id, b.layer, b.override)
