"""`/api/v1/schedules`: on-call schedules (layers, restrictions, overrides), who is on call at a time,
and the next shifts.

Schedules are configuration only the oncall service computes with, so they are read through query
commands to it (as integrations' webhooks are), not from the gateway's read models. Admins manage
schedules; responders put themselves on call with overrides (and delete the ones involving them);
every member reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from contracts import oncall as co
from contracts.commands import Caller, Done
from contracts.events import Role
from contracts.wire import NO_NUL
from gateway.errors import declare
from gateway.schemas import (
    UUID_PATTERN,
    DateTimeQuery,
    OnCallRead,
    OverrideCreate,
    OverrideRead,
    ScheduleCreate,
    SchedulePage,
    ScheduleRead,
    ScheduleUpdate,
    ShiftPage,
)
from gateway.security import AdminDep, SelfDep, require_role

router = APIRouter(prefix="/api/v1/schedules", tags=["on-call"])

ScheduleId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
OverrideId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
ResponderDep = Annotated[Caller, require_role(Role.RESPONDER)]
Cursor = Annotated[
    str | None, Query(pattern=UUID_PATTERN, description="The previous page's `next_cursor`, as it was given")
]
COMMAND = (504,)
R = TypeVar("R", bound=BaseModel)


async def _call(request: Request, command: str, body: dict[str, object], reply: type[R]) -> R:
    result: R = await request.app.state.commands.call(f"cmd.oncall.{command}", body, reply)
    return result


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@router.post("", status_code=201, response_model=ScheduleRead, responses=declare(*COMMAND))
async def create_schedule(body: ScheduleCreate, caller: AdminDep, request: Request) -> ScheduleRead:
    """A schedule: layers of participants (user ids) rotating `daily`, `weekly` or every `length`
    `hours`/`days` from `start_date` at `handoff_time` in `time_zone` (IANA), optionally restricted to
    weekly windows. An unknown time zone or an empty layer is a 422."""
    view = await _call(
        request,
        "create_schedule",
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        co.ScheduleView,
    )
    return ScheduleRead.model_validate(view.model_dump())


@router.get("", response_model=SchedulePage, responses=declare(*COMMAND))
async def list_schedules(
    caller: SelfDep, request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None
) -> SchedulePage:
    page = await _call(
        request,
        "list_schedules",
        {"caller": caller.model_dump(), "limit": limit, "cursor": cursor},
        co.SchedulePage,
    )
    return SchedulePage.model_validate(page.model_dump())


@router.get("/{schedule_id}", response_model=ScheduleRead, responses=declare(*COMMAND))
async def get_schedule(schedule_id: ScheduleId, caller: SelfDep, request: Request) -> ScheduleRead:
    view = await _call(
        request, "get_schedule", {"caller": caller.model_dump(), "schedule_id": schedule_id}, co.ScheduleView
    )
    return ScheduleRead.model_validate(view.model_dump())


@router.patch("/{schedule_id}", response_model=ScheduleRead, responses=declare(*COMMAND))
async def update_schedule(
    schedule_id: ScheduleId, body: ScheduleUpdate, caller: AdminDep, request: Request
) -> ScheduleRead:
    view = await _call(
        request,
        "update_schedule",
        {
            "caller": caller.model_dump(),
            "schedule_id": schedule_id,
            **body.model_dump(mode="json", exclude_unset=True),
        },
        co.ScheduleView,
    )
    return ScheduleRead.model_validate(view.model_dump())


@router.delete("/{schedule_id}", status_code=204, responses=declare(*COMMAND))
async def delete_schedule(schedule_id: ScheduleId, caller: AdminDep, request: Request) -> Response:
    await _call(request, "delete_schedule", {"caller": caller.model_dump(), "schedule_id": schedule_id}, Done)
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/overrides", status_code=201, response_model=ScheduleRead, responses=declare(*COMMAND)
)
async def create_override(
    schedule_id: ScheduleId, body: OverrideCreate, caller: ResponderDep, request: Request
) -> ScheduleRead:
    """Put someone on call over a range (admins: anyone; responders: themselves). Answers the
    schedule with its overrides, the new one last."""
    view = await _call(
        request,
        "create_override",
        {"caller": caller.model_dump(), "schedule_id": schedule_id, **body.model_dump(mode="json")},
        co.ScheduleView,
    )
    return ScheduleRead.model_validate(view.model_dump())


@router.get(
    "/{schedule_id}/overrides/{override_id}", response_model=OverrideRead, responses=declare(*COMMAND)
)
async def get_override(
    schedule_id: ScheduleId, override_id: OverrideId, caller: SelfDep, request: Request
) -> OverrideRead:
    view = await _call(
        request,
        "get_override",
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "override_id": override_id},
        co.OverrideView,
    )
    return OverrideRead.model_validate(view.model_dump())


@router.delete("/{schedule_id}/overrides/{override_id}", status_code=204, responses=declare(*COMMAND))
async def delete_override(
    schedule_id: ScheduleId,
    override_id: OverrideId,
    caller: ResponderDep,
    request: Request,
) -> Response:
    await _call(
        request,
        "delete_override",
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "override_id": override_id},
        Done,
    )
    return Response(status_code=204)


@router.get("/{schedule_id}/on-call", response_model=OnCallRead, responses=declare(*COMMAND))
async def on_call(
    schedule_id: ScheduleId,
    caller: SelfDep,
    request: Request,
    at: Annotated[DateTimeQuery | None, Query(description="RFC 3339 (default: now)")] = None,
) -> OnCallRead:
    """Who is on call at `at`: `user_id` (null: nobody), from which layer or override."""
    view = await _call(
        request,
        "on_call",
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "at": _iso(at)},
        co.OnCallView,
    )
    return OnCallRead.model_validate(view.model_dump())


@router.get("/{schedule_id}/shifts", response_model=ShiftPage, responses=declare(*COMMAND))
async def next_shifts(
    schedule_id: ScheduleId,
    caller: SelfDep,
    request: Request,
    after: Annotated[DateTimeQuery | None, Query(description="RFC 3339 (default: now)")] = None,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ShiftPage:
    """The next `count` shifts of the final schedule (layers, restrictions, overrides), the one under
    way first (from `after`); a time nobody covers is no shift."""
    page = await _call(
        request,
        "next_shifts",
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "after": _iso(after), "count": count},
        co.ShiftPage,
    )
    return ShiftPage.model_validate(page.model_dump())
