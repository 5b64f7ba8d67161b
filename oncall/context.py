"""What oncall's command handlers share: the service, the settings and the paging machinery
(its timer loop, notifier and signing key, started with the service), and the checks most handlers
make first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    gone = await db.deactivated(conn, tenant_id, {user for _, user in named})
    problems = [
        {"loc": loc, "msg": f"{user} is deactivated", "type": "value_error"}
        for loc, user in named
        if user in gone
    ]
    if problems:
        raise CommandFailed(ErrorCode.CONFLICT, "a deactivated person cannot be paged", problems)


def _team(row: Any) -> tuple[list[str], str | None]:
    return list(row.members), str(row.schedule_id) if row.schedule_id else None


async def referenced(
    conn: Any, tenant_id: str, steps: Sequence[StepSpec] = (), teams: Sequence[Any] = ()
) -> Referenced:
    """What warnings are computed from, for these policies' steps and these team rows: the teams and
    schedules they name (as they are now) and which of the people involved are deactivated."""
    team_ids = {t.id for s in steps for t in s.targets if t.kind is TargetKind.TEAM}
    found_teams = {str(r.id): _team(r) for r in teams}
    for r in await db.teams_in(conn, tenant_id, team_ids - set(found_teams)):
        found_teams[str(r.id)] = _team(r)
    schedule_ids = {t.id for s in steps for t in s.targets if t.kind is TargetKind.SCHEDULE}
    schedule_ids |= {sid for _, sid in found_teams.values() if sid is not None}
    schedules = {
        str(r.id): [u for layer in r.layers for u in layer.get("participants", [])]
        for r in await db.schedules_in(conn, tenant_id, schedule_ids)
    }
    users = {t.id for s in steps for t in s.targets if t.kind is TargetKind.USER}
    users |= {u for members, _ in found_teams.values() for u in members}
    users |= {u for participants in schedules.values() for u in participants}
    deactivated = await db.deactivated(conn, tenant_id, users)
    return Referenced(teams=found_teams, schedules=schedules, deactivated=frozenset(deactivated))
