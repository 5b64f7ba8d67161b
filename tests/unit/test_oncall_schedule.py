"""The final schedule as a pure function: rotations, DST changes, leap days, restrictions, overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.schedule import (
    Layer,
    Override,
    RotationType,
    Schedule,
    ScheduleError,
    Window,
    final_shifts,
    next_shifts,
    on_call_at,
    wall_clock,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[arg-type,misc]


def who(schedule: Schedule, moment: datetime) -> str | None:
    found = on_call_at(schedule, moment)
    return found.user_id if found else None


def weekly(*people: str, tz: str = "Europe/Berlin", start: date = date(2026, 11, 30)) -> Layer:
    return Layer(tuple(people), RotationType.WEEKLY, start, time(9), tz)


def test_a_weekly_rotation_hands_off_at_the_handoff_time() -> None:
    schedule = Schedule((weekly("ann", "bob"),))
    assert who(schedule, at(BERLIN, 2026, 11, 30, 8, 59)) is None  # before the first handoff
    assert who(schedule, at(BERLIN, 2026, 11, 30, 9, 0)) == "ann"
    assert who(schedule, at(BERLIN, 2026, 12, 7, 8, 59)) == "ann"
    assert who(schedule, at(BERLIN, 2026, 12, 7, 9, 0)) == "bob"
    assert who(schedule, at(BERLIN, 2026, 12, 14, 9, 0)) == "ann"


def test_daily_handoffs_keep_the_wall_clock_across_both_dst_changes() -> None:
    layer = Layer(("ann", "bob"), RotationType.DAILY, date(2026, 3, 27), time(9), "Europe/Berlin")
    schedule = Schedule((layer,))
    # 2026-03-29 Berlin springs forward: the shift of the 28th to the 29th lasts 23 hours.
    shifts = final_shifts(schedule, at(BERLIN, 2026, 3, 28, 9), at(BERLIN, 2026, 3, 30, 9))
    assert [(s.user_id, s.end - s.start) for s in shifts] == [
        ("bob", timedelta(hours=23)),
        ("ann", timedelta(hours=24)),
    ]
    assert all(s.start.astimezone(BERLIN).hour == 9 for s in shifts)
    # 2026-10-25 it falls back: that night's shift lasts 25 hours.
    autumn = final_shifts(schedule, at(BERLIN, 2026, 10, 24, 9), at(BERLIN, 2026, 10, 25, 9))
    assert [s.end - s.start for s in autumn] == [timedelta(hours=25)]


def test_hour_rotations_count_real_hours_across_dst() -> None:
    layer = Layer(
        ("ann", "bob"), RotationType.HOURS, date(2026, 11, 1), time(0), "America/New_York", length=12
    )
    schedule = Schedule((layer,))
    # 2026-11-01 New York falls back at 02:00: twelve real hours after midnight is 11:00 local.
    assert who(schedule, at(NEW_YORK, 2026, 11, 1, 10, 59)) == "ann"
    assert who(schedule, at(NEW_YORK, 2026, 11, 1, 11, 0)) == "bob"


def test_a_handoff_in_the_skipped_hour_happens_after_the_change() -> None:
    layer = Layer(("ann", "bob"), RotationType.DAILY, date(2026, 3, 28), time(2, 30), "Europe/Berlin")
    schedule = Schedule((layer,))
    # 02:30 does not exist on 2026-03-29 in Berlin: it is read as 03:30 (the offset before, +01:00).
    assert who(schedule, datetime(2026, 3, 29, 1, 29, tzinfo=UTC)) == "ann"
    assert who(schedule, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == "bob"


def test_leap_days_are_days_like_any_other() -> None:
    daily = Layer(("ann", "bob", "cat"), RotationType.DAILY, date(2028, 2, 27), time(0), "UTC")
    schedule = Schedule((daily,))
    assert who(schedule, datetime(2028, 2, 29, 12, tzinfo=UTC)) == "cat"
    assert who(schedule, datetime(2028, 3, 1, 12, tzinfo=UTC)) == "ann"
    # Every 3 days from the 28th: the 28th, 2nd of March (29th and 1st counted), ...
    every3 = Layer(("ann", "bob"), RotationType.DAYS, date(2028, 2, 28), time(0), "UTC", length=3)
    shifts = final_shifts(
        Schedule((every3,)), datetime(2028, 2, 28, tzinfo=UTC), datetime(2028, 3, 5, tzinfo=UTC)
    )
    assert [(s.user_id, s.start.date()) for s in shifts] == [
        ("ann", date(2028, 2, 28)),
        ("bob", date(2028, 3, 2)),
    ]


def test_restrictions_limit_a_layer_to_office_hours_in_its_zone() -> None:
    office = Window(frozenset(range(5)), time(9), time(17))
    layer = Layer(
        ("ann",), RotationType.WEEKLY, date(2026, 11, 30), time(0), "Europe/Berlin", restrictions=(office,)
    )
    night = Layer(("nick",), RotationType.WEEKLY, date(2026, 11, 30), time(0), "Europe/Berlin")
    schedule = Schedule((night, layer))  # the later layer wins where it has someone
    assert who(schedule, at(BERLIN, 2026, 12, 1, 10)) == "ann"  # Tuesday, office hours
    assert who(schedule, at(BERLIN, 2026, 12, 1, 17)) == "nick"
    assert who(schedule, at(BERLIN, 2026, 12, 5, 10)) == "nick"  # Saturday
    assert who(Schedule((layer,)), at(BERLIN, 2026, 12, 5, 10)) is None


def test_a_window_ending_before_it_starts_runs_past_midnight() -> None:
    nights = Window(frozenset({4}), time(22), time(6))  # Friday 22:00 to Saturday 06:00
    layer = Layer(("ann",), RotationType.DAILY, date(2026, 11, 1), time(0), "UTC", restrictions=(nights,))
    schedule = Schedule((layer,))
    assert who(schedule, datetime(2026, 12, 4, 23, tzinfo=UTC)) == "ann"
    assert who(schedule, datetime(2026, 12, 5, 5, 59, tzinfo=UTC)) == "ann"
    assert who(schedule, datetime(2026, 12, 5, 6, tzinfo=UTC)) is None
    assert who(schedule, datetime(2026, 12, 5, 23, tzinfo=UTC)) is None


def test_overrides_win_and_the_later_of_two_overlapping_ones_wins() -> None:
    base = datetime(2026, 12, 1, tzinfo=UTC)
    first = Override("ovi", base + timedelta(hours=10), base + timedelta(hours=14))
    later = Override("lee", base + timedelta(hours=12), base + timedelta(hours=13))
    schedule = Schedule((weekly("ann", tz="UTC"),), (first, later))
    assert who(schedule, base + timedelta(hours=11)) == "ovi"
    assert who(schedule, base + timedelta(hours=12, minutes=30)) == "lee"
    assert who(schedule, base + timedelta(hours=13, minutes=30)) == "ovi"
    assert who(schedule, base + timedelta(hours=14)) == "ann"
    shifts = final_shifts(schedule, base + timedelta(hours=9), base + timedelta(hours=15))
    assert [s.user_id for s in shifts] == ["ann", "ovi", "lee", "ovi", "ann"]


def test_next_shifts_reach_beyond_one_window_and_merge_across_it() -> None:
    schedule = Schedule((weekly("ann", "bob", tz="UTC"),))
    shifts = next_shifts(schedule, datetime(2026, 12, 2, tzinfo=UTC), 5)
    assert [s.user_id for s in shifts] == ["ann", "bob", "ann", "bob", "ann"]
    assert shifts[0].start == datetime(2026, 12, 2, tzinfo=UTC)  # the one under way, from now
    assert all(s.end - s.start == timedelta(days=7) for s in shifts[1:])
    single = next_shifts(Schedule((weekly("ann", tz="UTC"),)), datetime(2026, 12, 2, tzinfo=UTC), 1, 30)
    assert single[0].end == datetime(2027, 1, 1, tzinfo=UTC)  # one person: one shift to the horizon


@pytest.mark.parametrize(
    ("schedule", "loc"),
    [
        (Schedule((weekly(tz="Mars/Olympus"),)), ["layers", 0, "participants"]),
        (Schedule((weekly("ann", tz="Mars/Olympus"),)), ["layers", 0, "time_zone"]),
        (
            Schedule((Layer(("a",), RotationType.HOURS, date(2026, 1, 1), time(0), "UTC", length=0),)),
            ["layers", 0, "length"],
        ),
        (
            Schedule(
                (weekly("ann"),),
                (Override("x", datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),),
            ),
            ["overrides", 0, "end"],
        ),
    ],
)
def test_what_cannot_be_computed_is_refused_with_where(schedule: Schedule, loc: list[object]) -> None:
    with pytest.raises(ScheduleError) as raised:
        schedule.check()
    assert raised.value.loc == loc


# ---- properties: whatever the schedule, the shifts and the point answers agree

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"]
people = st.lists(st.sampled_from(["ann", "bob", "cat", "dan"]), min_size=1, max_size=4)
windows = st.builds(
    Window,
    st.frozensets(st.integers(0, 6), min_size=1),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
).filter(lambda w: w.start != w.end or w.start == time(0))
layers = st.builds(
    Layer,
    people.map(tuple),
    st.sampled_from(list(RotationType)),
    st.dates(date(2024, 1, 1), date(2029, 12, 31)),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.sampled_from(ZONES),
    st.integers(1, 72),
    st.lists(windows, max_size=2).map(tuple),
)
instants = st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(instants)
        overrides.append(
            Override(
                draw(st.sampled_from(["ovi", "ann"])),
                start,
                start + draw(st.timedeltas(timedelta(minutes=1), timedelta(days=3))),
            )
        )
    return Schedule(tuple(draw(st.lists(layers, min_size=1, max_size=3))), tuple(overrides))


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, st.timedeltas(timedelta(hours=1), timedelta(days=10)), st.data())
def test_shifts_tile_the_range_and_agree_with_who_is_on_call(
    schedule: Schedule, start: datetime, length: timedelta, data: st.DataObject
) -> None:
    end = start + length
    shifts = final_shifts(schedule, start, end)
    for shift in shifts:
        assert start <= shift.start < shift.end <= end
    for a, b in itertools.pairwise(shifts):
        assert a.end <= b.start
        assert a.end < b.start or (a.user_id, a.layer, a.override) != (b.user_id, b.layer, b.override)
    moment = data.draw(
        st.datetimes(start.replace(tzinfo=None), end.replace(tzinfo=None), timezones=st.just(UTC))
    )
    if moment >= end:
        return
    covering = [s for s in shifts if s.start <= moment < s.end]
    found = on_call_at(schedule, moment)
    assert (covering[0].user_id if covering else None) == (found.user_id if found else None)


@settings(max_examples=100, deadline=None)
@given(layers, instants)
def test_a_day_based_rotation_hands_off_at_its_wall_clock_time(layer: Layer, moment: datetime) -> None:
    if layer.rotation is RotationType.HOURS or layer.restrictions:
        return
    tz = ZoneInfo(layer.time_zone)
    for shift in final_shifts(Schedule((layer,)), moment, moment + timedelta(days=20)):
        for edge in (shift.start, shift.end):
            if edge in (moment, moment + timedelta(days=20)):
                continue
            day = edge.astimezone(tz).date()
            # The handoff time read on that day's clocks (with the module's rule for skipped hours).
            handoffs = {wall_clock(day + timedelta(days=d), layer.handoff_time, tz) for d in (-1, 0, 1)}
            assert edge in handoffs


@pytest.mark.parametrize("rotation", list(RotationType))
@pytest.mark.parametrize(
    ("start", "moment"),
    [
        (date(1, 1, 1), datetime(1, 1, 1, tzinfo=UTC)),
        (date(9999, 12, 31), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        (date(1, 1, 1), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        (date(9999, 12, 31), datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_the_ends_of_the_calendar_answer_rather_than_overflow(
    rotation: RotationType, start: date, moment: datetime
) -> None:
    layer = Layer(("ann", "bob"), rotation, start, time(23, 30), "Pacific/Kiritimati", length=5)
    schedule = Schedule((layer,), (Override("ovi", moment, datetime.max.replace(tzinfo=UTC)),))
    on_call_at(schedule, moment)
    next_shifts(schedule, moment, 3)
    final_shifts(Schedule((layer,)), moment - timedelta(days=1) if moment.year > 1 else moment, moment)


def test_a_calendar_lists_the_shifts_in_utc() -> None:
    from icalendar import Calendar

    from oncall.domain import CalendarShift, calendar

    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    text = calendar(
        "Payments", [CalendarShift("a@x", "On call: Payments", start, start + timedelta(days=7))], start
    )
    parsed = Calendar.from_ical(text)
    (event,) = parsed.walk("VEVENT")
    assert event["summary"] == "On call: Payments"
    assert event.decoded("dtstart") == start and event.decoded("dtend") == start + timedelta(days=7)
