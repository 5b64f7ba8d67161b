"""oncall's teams: a step target that pages its schedule's on-call, else every member."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.oncall import CreateTeam, DeleteTeam, GetTeam, ListTeams, TeamPage, TeamView, UpdateTeam
from oncall import db
from oncall.context import Oncall, field_problem, new_id, referenced, refuse_deactivated, require_admin
from oncall.domain import Referenced, team_warnings
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id


def team_view(row: Any, known: Referenced) -> TeamView:
    schedule_id = str(row.schedule_id) if row.schedule_id else None
    return TeamView(
        id=str(row.id),
        name=row.name,
        members=list(row.members),
        schedule_id=schedule_id,
        warnings=team_warnings(list(row.members), schedule_id, known),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def check_team(conn: Any, tenant_id: str, members: list[str], schedule_id: str | None) -> None:
    if schedule_id is not None:
        if await db.schedule(conn, tenant_id, _id(schedule_id, "schedule")) is None:
            raise field_problem(["body", "schedule_id"], "schedule not found", ErrorCode.NOT_FOUND)
    await refuse_deactivated(
        conn, tenant_id, [(["body", "members", n], user) for n, user in enumerate(members)]
    )


async def answer_team(conn: Any, tenant_id: str, row: Any) -> TeamView:
    return team_view(row, await referenced(conn, tenant_id, teams=[row]))


async def create_team(oc: Oncall, cmd: CreateTeam) -> TeamView:
    caller = cmd.caller
    require_admin(caller)
    now = datetime.now(UTC)
    async with oc.service.engine.begin() as conn:
        await check_team(conn, caller.tenant_id, cmd.members, cmd.schedule_id)
        row = await db.insert_team(
            conn,
            {
                "id": new_id(),
                "tenant_id": caller.tenant_id,
                "name": cmd.name,
                "members": list(dict.fromkeys(cmd.members)),
                "schedule_id": uuid.UUID(cmd.schedule_id) if cmd.schedule_id else None,
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        return await answer_team(conn, caller.tenant_id, row)


async def list_teams(oc: Oncall, cmd: ListTeams) -> TeamPage:
    after = _cursor(cmd.cursor)
    async with oc.service.engine.connect() as conn:
        rows = await db.teams_page(conn, cmd.caller.tenant_id, after, cmd.limit)
        more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
        known = await referenced(conn, cmd.caller.tenant_id, teams=rows)
    return TeamPage(items=[team_view(r, known) for r in rows], next_cursor=str(rows[-1].id) if more else None)


async def get_team(oc: Oncall, cmd: GetTeam) -> TeamView:
    async with oc.service.engine.connect() as conn:
        row = await db.team(conn, cmd.caller.tenant_id, _id(cmd.team_id, "team"))
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
        return await answer_team(conn, cmd.caller.tenant_id, row)


async def update_team(oc: Oncall, cmd: UpdateTeam) -> TeamView:
    caller = cmd.caller
    require_admin(caller)
    team_id = _id(cmd.team_id, "team")
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if cmd.name is not None:
        values["name"] = cmd.name
    if cmd.members is not None:
        values["members"] = list(dict.fromkeys(cmd.members))
    if "schedule_id" in cmd.fields:
        values["schedule_id"] = uuid.UUID(cmd.schedule_id) if cmd.schedule_id else None
    async with oc.service.engine.begin() as conn:
        await check_team(
            conn,
            caller.tenant_id,
            cmd.members or [],
            cmd.schedule_id if "schedule_id" in cmd.fields else None,
        )
        row = await db.update_team(conn, caller.tenant_id, team_id, values)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
        return await answer_team(conn, caller.tenant_id, row)


async def delete_team(oc: Oncall, cmd: DeleteTeam) -> Done:
    """Policies naming the team keep their step (it pages nobody) and say so in `warnings`."""
    require_admin(cmd.caller)
    async with oc.service.engine.begin() as conn:
        if not await db.delete_team(conn, cmd.caller.tenant_id, _id(cmd.team_id, "team")):
            raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
    return Done()
