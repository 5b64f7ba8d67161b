"""Calendar feeds: each person's secret iCalendar address, for their own shifts or a schedule's."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from contracts.commands import CommandFailed, ErrorCode
from contracts.oncall import CalendarFeedIssued, CalendarText, IssueCalendarFeed, ReadCalendar
from oncall import db
from oncall.context import Oncall
from oncall.domain import CalendarShift, calendar, layers_of, schedule_of, stored_overrides
from oncall.schedule import final_shifts
from runtime.command_args import object_id as _id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_calendar_feed(oc: Oncall, cmd: IssueCalendarFeed) -> CalendarFeedIssued:
    caller = cmd.caller
    token = secrets.token_urlsafe(32)
    values = {"token_hash": _digest(token), "created_at": datetime.now(UTC)}
    async with oc.service.engine.begin() as conn:
        await db.save_calendar_feed(conn, caller.tenant_id, caller.user_id, values)
    return CalendarFeedIssued(
        token=token,
        my_shifts_path=f"/api/v1/calendars/{token}/me.ics",
        schedule_path_template=f"/api/v1/calendars/{token}/schedules/{{schedule_id}}.ics",
    )


async def read_calendar(oc: Oncall, cmd: ReadCalendar) -> CalendarText:
    now = datetime.now(UTC)
    start, end = now - timedelta(days=7), now + timedelta(days=oc.settings.calendar_days)
    async with oc.service.engine.connect() as conn:
        feed = await db.calendar_feed(conn, _digest(cmd.token))
        if feed is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "no such calendar")
        schedule_id = _id(cmd.schedule_id, "schedule") if cmd.schedule_id is not None else None
        rows = await db.tenant_schedules(conn, feed.tenant_id, schedule_id)
        if cmd.schedule_id is not None and not rows:
            raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
        overrides = await db.overrides_of(conn, [r.id for r in rows])
    shifts: list[CalendarShift] = []
    for row in rows:
        stored = stored_overrides(overrides[row.id])
        for shift in final_shifts(schedule_of(layers_of(row), stored), start, end):
            if cmd.schedule_id is None and shift.user_id != feed.user_id:
                continue
            summary = f"On call: {row.name}" + (f" ({shift.user_id})" if cmd.schedule_id else "")
            uid = f"{row.id}-{shift.user_id}-{int(shift.start.timestamp())}@sre-copilot"
            shifts.append(CalendarShift(uid, summary, shift.start, shift.end))
    name = rows[0].name if cmd.schedule_id is not None else "My on-call shifts"
    return CalendarText(ics=calendar(name, shifts, now))
