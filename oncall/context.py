"""What oncall's command handlers share: the service, the settings and the paging machinery
(its timer loop, notifier and signing key, started with the service), and the checks most handlers
make first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from contracts.commands import Caller, CommandFailed, ErrorCode
from contracts.events import Role
from contracts.oncall import StepSpec, TargetKind
from oncall import db
from oncall.domain import Referenced
from oncall.paging import Paging
from oncall.settings import OncallSettings
from runtime.service import Service


@dataclass
class Oncall:
    service: Service
    settings: OncallSettings
    paging: Paging


def new_id() -> uuid.UUID:
    from uuid6 import uuid7

    return uuid.UUID(str(uuid7()))


def require_admin(caller: Caller) -> None:
    if not caller.role.at_least(Role.ADMIN):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage on-call")


def field_problem(
    loc: list[str | int], message: str, code: ErrorCode = ErrorCode.VALIDATION
) -> CommandFailed:
    return CommandFailed(code, message, [{"loc": loc, "msg": message, "type": "value_error"}])


async def refuse_deactivated(conn: Any, tenant_id: str, named: list[tuple[list[str | int], str]]) -> None:
    """A 409 naming each person who is deactivated (people not known yet are taken at their word:
    one invited a moment ago may not have reached oncall's view)."""
    ids = {user for _, user in named}
    if not ids:
        return
    p = db.people
    rows = await conn.execute(
        select(p.c.user_id).where(
            p.c.tenant_id == tenant_id, p.c.user_id.in_(ids), p.c.status == "deactivated"
        )
    )
    gone = {r.user_id for r in rows}
    problems = [
        {"loc": loc, "msg": f"{user} is deactivated", "type": "value_error"}
        for loc, user in named
        if user in gone
    ]
    if problems:
        raise CommandFailed(ErrorCode.CONFLICT, "a deactivated person cannot be paged", problems)


async def referenced(
    conn: Any, tenant_id: str, steps: Sequence[StepSpec] = (), teams: Sequence[Any] = ()
) -> Referenced:
    """What warnings are computed from, for these policies' steps and these team rows: the teams and
    schedules they name (as they are now) and which of the people involved are deactivated."""
    team_ids = {t.id for s in steps for t in s.targets if t.kind is TargetKind.TEAM}
    found_teams: dict[str, tuple[list[str], str | None]] = {
        str(r.id): (list(r.members), str(r.schedule_id) if r.schedule_id else None) for r in teams
    }
    wanted = set()
    for raw in team_ids - set(found_teams):
        try:
            wanted.add(uuid.UUID(raw))
        except ValueError:
            continue
    if wanted:
        t = db.teams
        rows = await conn.execute(select(t).where(t.c.tenant_id == tenant_id, t.c.id.in_(wanted)))
        for r in rows:
            found_teams[str(r.id)] = (list(r.members), str(r.schedule_id) if r.schedule_id else None)
    schedule_ids = {t.id for s in steps for t in s.targets if t.kind is TargetKind.SCHEDULE}
    schedule_ids |= {sid for _, sid in found_teams.values() if sid is not None}
    schedules: dict[str, list[str]] = {}
    ids = set()
    for raw in schedule_ids:
        try:
            ids.add(uuid.UUID(raw))
        except ValueError:
            continue
    if ids:
        s = db.schedules
        rows = await conn.execute(
            select(s.c.id, s.c.layers).where(s.c.tenant_id == tenant_id, s.c.id.in_(ids))
        )
        for r in rows:
            schedules[str(r.id)] = [u for layer in r.layers for u in layer.get("participants", [])]
    users = {t.id for s in steps for t in s.targets if t.kind is TargetKind.USER}
    users |= {u for members, _ in found_teams.values() for u in members}
    users |= {u for participants in schedules.values() for u in participants}
    deactivated: set[str] = set()
    if users:
        p = db.people
        rows = await conn.execute(
            select(p.c.user_id).where(
                p.c.tenant_id == tenant_id, p.c.user_id.in_(users), p.c.status == "deactivated"
            )
        )
        deactivated = {r.user_id for r in rows}
    return Referenced(teams=found_teams, schedules=schedules, deactivated=frozenset(deactivated))
