"""oncall's teams: a step target that pages its schedule's on-call, else every member."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update

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
        found = await conn.execute(
            select(db.schedules.c.id).where(
                db.schedules.c.tenant_id == tenant_id, db.schedules.c.id == _id(schedule_id, "schedule")
            )
        )
        if found.first() is None:
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
        row = (
            await conn.execute(
                db.teams.insert()
                .values(
                    id=new_id(),
                    tenant_id=caller.tenant_id,
                    name=cmd.name,
                    members=list(dict.fromkeys(cmd.members)),
                    schedule_id=uuid.UUID(cmd.schedule_id) if cmd.schedule_id else None,
                    created_by=caller.user_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(db.teams)
            )
        ).one()
        return await answer_team(conn, caller.tenant_id, row)


async def list_teams(oc: Oncall, cmd: ListTeams) -> TeamPage:
    t = db.teams
    query = select(t).where(t.c.tenant_id == cmd.caller.tenant_id)
    after = _cursor(cmd.cursor)
    if after is not None:
        query = query.where(t.c.id < after)
    async with oc.service.engine.connect() as conn:
        rows = list((await conn.execute(query.order_by(t.c.id.desc()).limit(cmd.limit + 1))).all())
        more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
        known = await referenced(conn, cmd.caller.tenant_id, teams=rows)
    return TeamPage(items=[team_view(r, known) for r in rows], next_cursor=str(rows[-1].id) if more else None)


async def get_team(oc: Oncall, cmd: GetTeam) -> TeamView:
    t = db.teams
    async with oc.service.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t).where(t.c.tenant_id == cmd.caller.tenant_id, t.c.id == _id(cmd.team_id, "team"))
            )
        ).first()
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
    t = db.teams
    async with oc.service.engine.begin() as conn:
        await check_team(
            conn,
            caller.tenant_id,
            cmd.members or [],
            cmd.schedule_id if "schedule_id" in cmd.fields else None,
        )
        row = (
            await conn.execute(
                update(t)
                .where(t.c.id == team_id, t.c.tenant_id == caller.tenant_id)
                .values(**values)
                .returning(t)
            )
        ).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
        return await answer_team(conn, caller.tenant_id, row)


async def delete_team(oc: Oncall, cmd: DeleteTeam) -> Done:
    """Policies naming the team keep their step (it pages nobody) and say so in `warnings`."""
    require_admin(cmd.caller)
    t = db.teams
    async with oc.service.engine.begin() as conn:
        gone = await conn.execute(
            delete(t)
            .where(t.c.tenant_id == cmd.caller.tenant_id, t.c.id == _id(cmd.team_id, "team"))
            .returning(t.c.id)
        )
        if gone.first() is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
    return Done()
