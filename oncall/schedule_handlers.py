"""oncall's schedules, their overrides, who is on call and the shifts to come.

Schedules are configuration that only oncall computes with: they are read through query commands,
as integrations' webhooks are, not projected into the gateway's read models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from contracts.commands import Caller, CommandFailed, Done, ErrorCode
from contracts.oncall import (
    CreateOverride,
    CreateSchedule,
    DeleteOverride,
    DeleteSchedule,
    GetOverride,
    GetSchedule,
    LayerSpec,
    ListSchedules,
    NextShifts,
    OnCallAt,
    OnCallView,
    OverrideView,
    SchedulePage,
    ScheduleView,
    ShiftPage,
    ShiftView,
    UpdateSchedule,
)
from oncall import db
from oncall.context import Oncall, new_id, refuse_deactivated, require_admin
from oncall.domain import (
    StoredOverride,
    layers_of,
    may_delete_override,
    may_override,
    override_span_problem,
    schedule_of,
    stored_overrides,
)
from oncall.schedule import ScheduleError, Shift, next_shifts, on_call_at
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id

log = structlog.get_logger(__name__)


def _invalid(exc: ScheduleError) -> CommandFailed:
    return CommandFailed(
        ErrorCode.VALIDATION,
        exc.message,
        [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "value_error"}],
    )


def override_view(row: Any) -> OverrideView:
    return OverrideView(
        id=str(row.id),
        schedule_id=str(row.schedule_id),
        user_id=row.user_id,
        start=row.start_at,
        end=row.end_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def schedule_view(row: Any, overrides: list[Any]) -> ScheduleView:
    return ScheduleView(
        id=str(row.id),
        name=row.name,
        description=row.description,
        layers=layers_of(row),
        overrides=[override_view(o) for o in overrides],
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _checked(layers: list[LayerSpec]) -> None:
    try:
        schedule_of(layers, []).check()
    except ScheduleError as exc:
        raise _invalid(exc) from None


def shift_view(shift: Shift, overrides: list[StoredOverride]) -> ShiftView:
    return ShiftView(
        user_id=shift.user_id,
        start=shift.start,
        end=shift.end,
        layer=shift.layer,
        override_id=overrides[shift.override].id if shift.override is not None else None,
    )


def _participants(layers: list[LayerSpec]) -> list[tuple[list[str | int], str]]:
    return [
        (["body", "layers", n, "participants", m], user)
        for n, layer in enumerate(layers)
        for m, user in enumerate(layer.participants)
    ]


async def load(oc: Oncall, caller: Caller, raw_id: str, lock: bool = False) -> tuple[Any, list[Any]]:
    schedule_id = _id(raw_id, "schedule")
    async with oc.service.engine.begin() as conn:
        row = await db.schedule(conn, caller.tenant_id, schedule_id, lock=lock)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
        overrides = (await db.overrides_of(conn, [schedule_id]))[schedule_id]
    return row, overrides


async def create_schedule(oc: Oncall, cmd: CreateSchedule) -> ScheduleView:
    caller = cmd.caller
    require_admin(caller)
    _checked(cmd.layers)
    now = datetime.now(UTC)
    async with oc.service.engine.begin() as conn:
        await refuse_deactivated(conn, caller.tenant_id, _participants(cmd.layers))
        row = await db.insert_schedule(
            conn,
            {
                "id": new_id(),
                "tenant_id": caller.tenant_id,
                "name": cmd.name,
                "description": cmd.description,
                "layers": [layer.model_dump(mode="json") for layer in cmd.layers],
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    log.info("schedule_created", schedule_id=str(row.id), layers=len(cmd.layers))
    return schedule_view(row, [])


async def list_schedules(oc: Oncall, cmd: ListSchedules) -> SchedulePage:
    after = _cursor(cmd.cursor)
    async with oc.service.engine.connect() as conn:
        rows = await db.schedules_page(conn, cmd.caller.tenant_id, after, cmd.limit)
        rows, more = rows[: cmd.limit], len(rows) > cmd.limit
        overrides = await db.overrides_of(conn, [r.id for r in rows])
    return SchedulePage(
        items=[schedule_view(r, overrides[r.id]) for r in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


async def get_schedule(oc: Oncall, cmd: GetSchedule) -> ScheduleView:
    row, overrides = await load(oc, cmd.caller, cmd.schedule_id)
    return schedule_view(row, overrides)


async def update_schedule(oc: Oncall, cmd: UpdateSchedule) -> ScheduleView:
    caller = cmd.caller
    require_admin(caller)
    schedule_id = _id(cmd.schedule_id, "schedule")
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if cmd.name is not None:
        values["name"] = cmd.name
    if cmd.description is not None:
        values["description"] = cmd.description
    if cmd.layers is not None:
        _checked(cmd.layers)
        values["layers"] = [layer.model_dump(mode="json") for layer in cmd.layers]
    async with oc.service.engine.begin() as conn:
        if cmd.layers is not None:
            await refuse_deactivated(conn, caller.tenant_id, _participants(cmd.layers))
        row = await db.update_schedule(conn, caller.tenant_id, schedule_id, values)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
        overrides = (await db.overrides_of(conn, [schedule_id]))[schedule_id]
    return schedule_view(row, overrides)


async def delete_schedule(oc: Oncall, cmd: DeleteSchedule) -> Done:
    require_admin(cmd.caller)
    schedule_id = _id(cmd.schedule_id, "schedule")
    async with oc.service.engine.begin() as conn:
        if not await db.delete_schedule(conn, cmd.caller.tenant_id, schedule_id):
            raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
    return Done()


async def create_override(oc: Oncall, cmd: CreateOverride) -> OverrideView:
    caller = cmd.caller
    if not may_override(caller, cmd.user_id):
        raise CommandFailed(ErrorCode.FORBIDDEN, "responders may only create overrides for themselves")
    problem = override_span_problem(cmd.start, cmd.end)
    if problem is not None:
        message, why = problem
        raise CommandFailed(
            ErrorCode.VALIDATION, message, [{"loc": ["body", "end"], "msg": why, "type": "value_error"}]
        )
    schedule_id = _id(cmd.schedule_id, "schedule")
    now = datetime.now(UTC)
    async with oc.service.engine.begin() as conn:
        row = await db.schedule(conn, caller.tenant_id, schedule_id, lock=True)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
        created = await db.insert_override(
            conn,
            {
                "id": new_id(),
                "tenant_id": caller.tenant_id,
                "schedule_id": schedule_id,
                "user_id": cmd.user_id,
                "start_at": cmd.start,
                "end_at": cmd.end,
                "created_by": caller.user_id,
                "created_at": now,
            },
        )
        return override_view(created)


async def get_override(oc: Oncall, cmd: GetOverride) -> OverrideView:
    schedule_id, override_id = _id(cmd.schedule_id, "schedule"), _id(cmd.override_id, "override")
    async with oc.service.engine.connect() as conn:
        row = await db.override(conn, cmd.caller.tenant_id, schedule_id, override_id)
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, "override not found")
    return override_view(row)


async def delete_override(oc: Oncall, cmd: DeleteOverride) -> Done:
    caller = cmd.caller
    schedule_id, override_id = _id(cmd.schedule_id, "schedule"), _id(cmd.override_id, "override")
    async with oc.service.engine.begin() as conn:
        row = await db.override(conn, caller.tenant_id, schedule_id, override_id)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "override not found")
        if not may_delete_override(caller, row.user_id, row.created_by):
            raise CommandFailed(ErrorCode.FORBIDDEN, "responders may only delete overrides that involve them")
        await db.delete_override(conn, override_id)
    return Done()


async def on_call(oc: Oncall, cmd: OnCallAt) -> OnCallView:
    row, rows = await load(oc, cmd.caller, cmd.schedule_id)
    overrides = stored_overrides(rows)
    at = cmd.at or datetime.now(UTC)
    found = on_call_at(schedule_of(layers_of(row), overrides), at)
    return OnCallView(
        schedule_id=str(row.id),
        at=at,
        user_id=found.user_id if found else None,
        layer=found.layer if found else None,
        override_id=overrides[found.override].id if found and found.override is not None else None,
    )


async def shifts(oc: Oncall, cmd: NextShifts) -> ShiftPage:
    row, rows = await load(oc, cmd.caller, cmd.schedule_id)
    overrides = stored_overrides(rows)
    found = next_shifts(
        schedule_of(layers_of(row), overrides),
        cmd.after or datetime.now(UTC),
        cmd.count,
        oc.settings.shifts_horizon_days,
    )
    return ShiftPage(schedule_id=str(row.id), items=[shift_view(s, overrides) for s in found])
