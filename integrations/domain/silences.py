"""Maintenance windows and silences: when one is on, and which alerts it matches."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

from contracts.integrations import EqualityMatcher, Recurrence, RegexMatcher, SilenceSpec, SilenceState

# ---- maintenance windows and silences

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@functools.lru_cache(maxsize=1_024)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def silence_problem(spec: SilenceSpec) -> tuple[str, str] | None:
    """(field, why) for what the schema cannot check (a time zone that exists, a regular expression
    that compiles), or None."""
    if spec.recurrence is not None:
        try:
            zoneinfo.ZoneInfo(spec.recurrence.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return "recurrence.timezone", f"{spec.recurrence.timezone!r} is not an IANA time zone"
    for index, matcher in enumerate(spec.matchers):
        if matcher.op in ("=~", "!~"):
            try:
                _pattern(matcher.value)
            except re.error as exc:
                return f"matchers.{index}.value", f"not a regular expression: {exc}"
    return None


def _starts(spec: SilenceSpec, recurrence: Recurrence, day: date) -> datetime:
    """The occurrence on `day` (local to the recurrence's zone), at `starts_at`'s local time of day."""
    zone = zoneinfo.ZoneInfo(recurrence.timezone)
    try:
        at = spec.starts_at.astimezone(zone)
    except OverflowError:
        # At either end of datetime's range: a week later (or earlier) has the same time of day.
        week = timedelta(days=7 if spec.starts_at.year < 5_000 else -7)
        at = (spec.starts_at + week).astimezone(zone)
    return datetime.combine(day, dt_time(at.hour, at.minute, at.second), tzinfo=zone).astimezone(UTC)


def _occurrence(spec: SilenceSpec, recurrence: Recurrence, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence `at` falls in, or None."""
    length = timedelta(minutes=spec.duration_minutes)
    local = at.astimezone(zoneinfo.ZoneInfo(recurrence.timezone)).date()
    for back in range(spec.duration_minutes // 1_440 + 2):
        day = local - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in recurrence.weekdays:
            continue
        start = _starts(spec, recurrence, day)
        if spec.starts_at <= start <= at < start + length:
            if recurrence.until is None or start < recurrence.until:
                return start, start + length
    return None


def _next_start(spec: SilenceSpec, recurrence: Recurrence, after: datetime) -> datetime | None:
    local = after.astimezone(zoneinfo.ZoneInfo(recurrence.timezone)).date()
    for ahead in range(-1, 8):
        day = local + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in recurrence.weekdays:
            continue
        start = _starts(spec, recurrence, day)
        if start >= after and start >= spec.starts_at:
            return start if recurrence.until is None or start < recurrence.until else None
    return None


def silence_state(spec: SilenceSpec, now: datetime) -> tuple[SilenceState, datetime | None]:
    """Active (and when this window closes), upcoming (and when the next opens), or expired."""
    try:
        return _silence_state(spec, now)
    except OverflowError:
        # A window whose end or next occurrence is past year 9999: it starts, and never ends.
        if now < spec.starts_at:
            return SilenceState.UPCOMING, spec.starts_at
        return SilenceState.ACTIVE, None


def _silence_state(spec: SilenceSpec, now: datetime) -> tuple[SilenceState, datetime | None]:
    recurrence = spec.recurrence
    if recurrence is None:
        ends = spec.starts_at + timedelta(minutes=spec.duration_minutes)
        if now < spec.starts_at:
            return SilenceState.UPCOMING, spec.starts_at
        return (SilenceState.ACTIVE, ends) if now < ends else (SilenceState.EXPIRED, None)
    current = _occurrence(spec, recurrence, now)
    if current is not None:
        return SilenceState.ACTIVE, current[1]
    following = _next_start(spec, recurrence, max(now, spec.starts_at))
    return (SilenceState.UPCOMING, following) if following else (SilenceState.EXPIRED, None)


def _matcher_holds(matcher: EqualityMatcher | RegexMatcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.label, "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    found = _pattern(matcher.value).fullmatch(value) is not None
    return found if matcher.op == "=~" else not found


def silence_matches(spec: SilenceSpec, labels: Mapping[str, str], service: str, at: datetime) -> bool:
    """Whether an alert with these labels, of this service, arriving `at`, is silenced by `spec`."""
    if silence_state(spec, at)[0] is not SilenceState.ACTIVE:
        return False
    if spec.services and service not in spec.services:
        return False
    return all(_matcher_holds(m, labels) for m in spec.matchers)
