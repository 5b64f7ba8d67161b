"""oncall on the bus: the commands the gateway sends (schedules, overrides, who is on call, shifts).

Schedules are configuration that only oncall computes with: they are read through query commands,
as integrations' webhooks are, not projected into the gateway's read models."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import TypeAdapter
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from contracts.commands import Caller, CommandFailed, Done, Email, ErrorCode
from contracts.events import Role
from contracts.oncall import (
    AcknowledgePage,
    CalendarFeedIssued,
    CalendarText,
    ChannelKind,
    ContactMethodIssued,
    ContactMethodPage,
    ContactMethodView,
    CreateContactMethod,
    CreateOverride,
    CreatePolicy,
    CreateSchedule,
    CreateTeam,
    DeleteContactMethod,
    DeleteOverride,
    DeletePolicy,
    DeleteSchedule,
    DeleteTeam,
    GetContactMethod,
    GetOverride,
    GetPolicy,
    GetRouting,
    GetSchedule,
    GetTeam,
    IssueCalendarFeed,
    LayerSpec,
    ListContactMethods,
    ListPolicies,
    ListSchedules,
    ListTeams,
    NextShifts,
    OnCallAt,
    OnCallView,
    OverrideView,
    PageAcknowledgedView,
    PolicyPage,
    PolicyView,
    PutRouting,
    ReadCalendar,
    RoutingView,
    RuleSpec,
    SchedulePage,
    ScheduleView,
    ServiceOnCall,
    ServiceOnCallView,
    ShiftPage,
    ShiftView,
    StepSpec,
    TargetKind,
    TeamPage,
    TeamView,
    UpdatePolicy,
    UpdateSchedule,
    UpdateTeam,
)
from contracts.subjects import ONCALL_ESCALATOR, events_of_type
from oncall import db
from oncall.domain import (
    CalendarShift,
    Referenced,
    StoredOverride,
    calendar,
    policy_warnings,
    schedule_of,
    team_warnings,
    token_problem,
)
from oncall.escalation import people, regex_problem, route
from oncall.paging import PERSON_STATUS, Paging, policy_of, resolver, rules_of
from oncall.schedule import ScheduleError, Shift, final_shifts, next_shifts, on_call_at
from oncall.settings import OncallSettings
from oncall.slack import register_slack
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id
from runtime.consumer import Delivery
from runtime.service import Service

log = structlog.get_logger(__name__)

FILTER_SUBJECTS = [
    events_of_type("incident.created"),
    events_of_type("incident.state_changed"),
    *(events_of_type(t) for t in PERSON_STATUS),
]
EMAIL: TypeAdapter[str] = TypeAdapter(Email)

# An override longer than this is a layer in disguise (and would make shift lists unbounded).
MAX_OVERRIDE = timedelta(days=366)


def new_id() -> uuid.UUID:
    from uuid6 import uuid7

    return uuid.UUID(str(uuid7()))


def _require_admin(caller: Caller) -> None:
    if not caller.role.at_least(Role.ADMIN):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage on-call")


def _invalid(exc: ScheduleError) -> CommandFailed:
    return CommandFailed(
        ErrorCode.VALIDATION,
        exc.message,
        [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "value_error"}],
    )


def _stored(rows: list[Any]) -> list[StoredOverride]:
    return [StoredOverride(str(r.id), r.user_id, r.start_at, r.end_at) for r in rows]


def _layers(row: Any) -> list[LayerSpec]:
    return [LayerSpec.model_validate(layer) for layer in row.layers]


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
        layers=_layers(row),
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


def _participants(layers: list[LayerSpec]) -> list[tuple[list[str | int], str]]:
    return [
        (["body", "layers", n, "participants", m], user)
        for n, layer in enumerate(layers)
        for m, user in enumerate(layer.participants)
    ]


def register_handlers(service: Service, settings: OncallSettings) -> None:
    async def load(caller: Caller, raw_id: str, lock: bool = False) -> tuple[Any, list[Any]]:
        schedule_id = _id(raw_id, "schedule")
        async with service.engine.begin() as conn:
            row = await db.schedule(conn, caller.tenant_id, schedule_id, lock=lock)
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
            overrides = (await db.overrides_of(conn, [schedule_id]))[schedule_id]
        return row, overrides

    @service.handles(CreateSchedule)
    async def create_schedule(cmd: CreateSchedule) -> ScheduleView:
        caller = cmd.caller
        _require_admin(caller)
        _checked(cmd.layers)
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            await refuse_deactivated(conn, caller.tenant_id, _participants(cmd.layers))
            row = (
                await conn.execute(
                    db.schedules.insert()
                    .values(
                        id=new_id(),
                        tenant_id=caller.tenant_id,
                        name=cmd.name,
                        description=cmd.description,
                        layers=[layer.model_dump(mode="json") for layer in cmd.layers],
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(db.schedules)
                )
            ).one()
        log.info("schedule_created", schedule_id=str(row.id), layers=len(cmd.layers))
        return schedule_view(row, [])

    @service.handles(ListSchedules)
    async def list_schedules(cmd: ListSchedules) -> SchedulePage:
        s = db.schedules
        query = select(s).where(s.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(s.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(s.c.id.desc()).limit(cmd.limit + 1))).all())
            rows, more = rows[: cmd.limit], len(rows) > cmd.limit
            overrides = await db.overrides_of(conn, [r.id for r in rows])
        return SchedulePage(
            items=[schedule_view(r, overrides[r.id]) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @service.handles(GetSchedule)
    async def get_schedule(cmd: GetSchedule) -> ScheduleView:
        row, overrides = await load(cmd.caller, cmd.schedule_id)
        return schedule_view(row, overrides)

    @service.handles(UpdateSchedule)
    async def update_schedule(cmd: UpdateSchedule) -> ScheduleView:
        caller = cmd.caller
        _require_admin(caller)
        schedule_id = _id(cmd.schedule_id, "schedule")
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if cmd.name is not None:
            values["name"] = cmd.name
        if cmd.description is not None:
            values["description"] = cmd.description
        if cmd.layers is not None:
            _checked(cmd.layers)
            values["layers"] = [layer.model_dump(mode="json") for layer in cmd.layers]
        s = db.schedules
        async with service.engine.begin() as conn:
            if cmd.layers is not None:
                await refuse_deactivated(conn, caller.tenant_id, _participants(cmd.layers))
            row = (
                await conn.execute(
                    update(s)
                    .where(s.c.id == schedule_id, s.c.tenant_id == caller.tenant_id)
                    .values(**values)
                    .returning(s)
                )
            ).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
            overrides = (await db.overrides_of(conn, [schedule_id]))[schedule_id]
        return schedule_view(row, overrides)

    @service.handles(DeleteSchedule)
    async def delete_schedule(cmd: DeleteSchedule) -> Done:
        _require_admin(cmd.caller)
        schedule_id = _id(cmd.schedule_id, "schedule")
        s = db.schedules
        async with service.engine.begin() as conn:
            deleted = await conn.execute(
                delete(s)
                .where(s.c.id == schedule_id, s.c.tenant_id == cmd.caller.tenant_id)
                .returning(s.c.id)
            )
            if deleted.first() is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
        return Done()

    @service.handles(CreateOverride)
    async def create_override(cmd: CreateOverride) -> OverrideView:
        """Admins put anyone on call; a responder only themselves (covering for someone)."""
        caller = cmd.caller
        if not caller.role.at_least(Role.ADMIN) and not (
            caller.role.at_least(Role.RESPONDER) and cmd.user_id == caller.user_id
        ):
            raise CommandFailed(ErrorCode.FORBIDDEN, "responders may only create overrides for themselves")
        if cmd.end <= cmd.start:
            raise CommandFailed(
                ErrorCode.VALIDATION,
                "an override ends after it starts",
                [{"loc": ["body", "end"], "msg": "must be after start", "type": "value_error"}],
            )
        if cmd.end - cmd.start > MAX_OVERRIDE:
            raise CommandFailed(
                ErrorCode.VALIDATION,
                "an override lasts at most 366 days",
                [{"loc": ["body", "end"], "msg": "at most 366 days after start", "type": "value_error"}],
            )
        schedule_id = _id(cmd.schedule_id, "schedule")
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            row = await db.schedule(conn, caller.tenant_id, schedule_id, lock=True)
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
            created = await conn.execute(
                db.overrides.insert()
                .values(
                    id=new_id(),
                    tenant_id=caller.tenant_id,
                    schedule_id=schedule_id,
                    user_id=cmd.user_id,
                    start_at=cmd.start,
                    end_at=cmd.end,
                    created_by=caller.user_id,
                    created_at=now,
                )
                .returning(db.overrides)
            )
            return override_view(created.one())

    @service.handles(GetOverride)
    async def get_override(cmd: GetOverride) -> OverrideView:
        schedule_id, override_id = _id(cmd.schedule_id, "schedule"), _id(cmd.override_id, "override")
        o = db.overrides
        async with service.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(o).where(
                        o.c.id == override_id,
                        o.c.schedule_id == schedule_id,
                        o.c.tenant_id == cmd.caller.tenant_id,
                    )
                )
            ).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "override not found")
        return override_view(row)

    @service.handles(DeleteOverride)
    async def delete_override(cmd: DeleteOverride) -> Done:
        """Admins delete any; a responder one that involves them (for them, or made by them)."""
        caller = cmd.caller
        schedule_id, override_id = _id(cmd.schedule_id, "schedule"), _id(cmd.override_id, "override")
        o = db.overrides
        async with service.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(o).where(
                        o.c.id == override_id,
                        o.c.schedule_id == schedule_id,
                        o.c.tenant_id == caller.tenant_id,
                    )
                )
            ).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "override not found")
            involved = caller.user_id in (row.user_id, row.created_by)
            if not caller.role.at_least(Role.ADMIN) and not (
                caller.role.at_least(Role.RESPONDER) and involved
            ):
                raise CommandFailed(
                    ErrorCode.FORBIDDEN, "responders may only delete overrides that involve them"
                )
            await conn.execute(delete(o).where(o.c.id == override_id))
        return Done()

    @service.handles(OnCallAt)
    async def on_call(cmd: OnCallAt) -> OnCallView:
        row, rows = await load(cmd.caller, cmd.schedule_id)
        overrides = _stored(rows)
        at = cmd.at or datetime.now(UTC)
        found = on_call_at(schedule_of(_layers(row), overrides), at)
        return OnCallView(
            schedule_id=str(row.id),
            at=at,
            user_id=found.user_id if found else None,
            layer=found.layer if found else None,
            override_id=overrides[found.override].id if found and found.override is not None else None,
        )

    @service.handles(NextShifts)
    async def shifts(cmd: NextShifts) -> ShiftPage:
        row, rows = await load(cmd.caller, cmd.schedule_id)
        overrides = _stored(rows)
        found = next_shifts(
            schedule_of(_layers(row), overrides),
            cmd.after or datetime.now(UTC),
            cmd.count,
            settings.shifts_horizon_days,
        )
        return ShiftPage(schedule_id=str(row.id), items=[shift_view(s, overrides) for s in found])


def policy_view(row: Any, known: Referenced) -> PolicyView:
    steps = [StepSpec.model_validate(s) for s in row.steps]
    return PolicyView(
        id=str(row.id),
        name=row.name,
        steps=steps,
        repeat=row.repeat,
        warnings=policy_warnings(steps, known),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


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


def contact_view(row: Any) -> ContactMethodView:
    return ContactMethodView(
        id=str(row.id),
        user_id=row.user_id,
        kind=ChannelKind(row.kind),
        address=row.address,
        delay_minutes=row.delay_minutes,
        created_at=row.created_at,
    )


def _field_problem(
    loc: list[str | int], message: str, code: ErrorCode = ErrorCode.VALIDATION
) -> CommandFailed:
    return CommandFailed(code, message, [{"loc": loc, "msg": message, "type": "value_error"}])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_paging(service: Service, settings: OncallSettings) -> Paging:
    paging = Paging(service, settings)
    register_slack(service, settings, paging)

    @service.app.after_startup
    async def start_paging() -> None:
        await paging.start()

    @service.app.on_shutdown
    async def stop_paging() -> None:
        await paging.stop()

    @service.consume(ONCALL_ESCALATOR, FILTER_SUBJECTS, db.consumed, max_in_flight=32)
    async def escalate(delivery: Delivery) -> None:
        # Imported history stops what it should but pages nobody: it happened elsewhere, long ago.
        await paging.apply(delivery.event, delivery.data, act=not delivery.imported)

    # ---- policies

    async def check_targets(conn: Any, tenant_id: str, steps: list[StepSpec]) -> Referenced:
        """A 404 for a schedule or a team that does not exist (as for a rule's policy); what the
        targets name, for the policy's warnings."""
        known = await referenced(conn, tenant_id, steps)
        for n, step in enumerate(steps):
            for m, target in enumerate(step.targets):
                loc: list[str | int] = ["body", "steps", n, "targets", m, "id"]
                if target.kind is TargetKind.SCHEDULE and target.id not in known.schedules:
                    raise _field_problem(loc, "schedule not found", ErrorCode.NOT_FOUND)
                if target.kind is TargetKind.TEAM and target.id not in known.teams:
                    raise _field_problem(loc, "team not found", ErrorCode.NOT_FOUND)
        return known

    async def check_steps(conn: Any, tenant_id: str, steps: list[StepSpec]) -> Referenced:
        """Every schedule and team named exists; nobody named is deactivated. What the targets
        name, for the policy's warnings."""
        users: list[tuple[list[str | int], str]] = [
            (["body", "steps", n, "targets", m, "id"], t.id)
            for n, step in enumerate(steps)
            for m, t in enumerate(step.targets)
            if t.kind.value == "user"
        ]
        known = await check_targets(conn, tenant_id, steps)
        await refuse_deactivated(conn, tenant_id, users)
        return known

    @service.handles(CreatePolicy)
    async def create_policy(cmd: CreatePolicy) -> PolicyView:
        caller = cmd.caller
        _require_admin(caller)
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            known = await check_steps(conn, caller.tenant_id, cmd.steps)
            row = (
                await conn.execute(
                    db.policies.insert()
                    .values(
                        id=new_id(),
                        tenant_id=caller.tenant_id,
                        name=cmd.name,
                        steps=[s.model_dump(mode="json") for s in cmd.steps],
                        repeat=cmd.repeat,
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(db.policies)
                )
            ).one()
        return policy_view(row, known)

    @service.handles(ListPolicies)
    async def list_policies(cmd: ListPolicies) -> PolicyPage:
        p = db.policies
        query = select(p).where(p.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(p.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(p.c.id.desc()).limit(cmd.limit + 1))).all())
            more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
            steps = [StepSpec.model_validate(s) for r in rows for s in r.steps]
            known = await referenced(conn, cmd.caller.tenant_id, steps)
        return PolicyPage(
            items=[policy_view(r, known) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @service.handles(GetPolicy)
    async def get_policy(cmd: GetPolicy) -> PolicyView:
        p = db.policies
        async with service.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(p).where(
                        p.c.tenant_id == cmd.caller.tenant_id, p.c.id == _id(cmd.policy_id, "policy")
                    )
                )
            ).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
            steps = [StepSpec.model_validate(s) for s in row.steps]
            return policy_view(row, await referenced(conn, cmd.caller.tenant_id, steps))

    @service.handles(UpdatePolicy)
    async def update_policy(cmd: UpdatePolicy) -> PolicyView:
        caller = cmd.caller
        _require_admin(caller)
        p = db.policies
        async with service.engine.begin() as conn:
            # The policy first: another organisation's id is a 404 whatever the body names.
            found = (
                await conn.execute(
                    select(p.c.id)
                    .where(p.c.tenant_id == caller.tenant_id, p.c.id == _id(cmd.policy_id, "policy"))
                    .with_for_update()
                )
            ).first()
            if found is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
            known = await check_steps(conn, caller.tenant_id, cmd.steps)
            row = (
                await conn.execute(
                    p.update()
                    .where(p.c.tenant_id == caller.tenant_id, p.c.id == found.id)
                    .values(
                        name=cmd.name,
                        steps=[s.model_dump(mode="json") for s in cmd.steps],
                        repeat=cmd.repeat,
                        updated_at=datetime.now(UTC),
                    )
                    .returning(p)
                )
            ).one()
        return policy_view(row, known)

    @service.handles(DeletePolicy)
    async def delete_policy(cmd: DeletePolicy) -> Done:
        _require_admin(cmd.caller)
        p = db.policies
        async with service.engine.begin() as conn:
            gone = await conn.execute(
                delete(p)
                .where(p.c.tenant_id == cmd.caller.tenant_id, p.c.id == _id(cmd.policy_id, "policy"))
                .returning(p.c.id)
            )
            if gone.first() is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
        return Done()

    # ---- teams

    async def check_team(conn: Any, tenant_id: str, members: list[str], schedule_id: str | None) -> None:
        if schedule_id is not None:
            found = await conn.execute(
                select(db.schedules.c.id).where(
                    db.schedules.c.tenant_id == tenant_id, db.schedules.c.id == _id(schedule_id, "schedule")
                )
            )
            if found.first() is None:
                raise _field_problem(["body", "schedule_id"], "schedule not found", ErrorCode.NOT_FOUND)
        await refuse_deactivated(
            conn, tenant_id, [(["body", "members", n], user) for n, user in enumerate(members)]
        )

    async def answer_team(conn: Any, tenant_id: str, row: Any) -> TeamView:
        return team_view(row, await referenced(conn, tenant_id, teams=[row]))

    @service.handles(CreateTeam)
    async def create_team(cmd: CreateTeam) -> TeamView:
        caller = cmd.caller
        _require_admin(caller)
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
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

    @service.handles(ListTeams)
    async def list_teams(cmd: ListTeams) -> TeamPage:
        t = db.teams
        query = select(t).where(t.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(t.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(t.c.id.desc()).limit(cmd.limit + 1))).all())
            more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
            known = await referenced(conn, cmd.caller.tenant_id, teams=rows)
        return TeamPage(
            items=[team_view(r, known) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @service.handles(GetTeam)
    async def get_team(cmd: GetTeam) -> TeamView:
        t = db.teams
        async with service.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t).where(t.c.tenant_id == cmd.caller.tenant_id, t.c.id == _id(cmd.team_id, "team"))
                )
            ).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
            return await answer_team(conn, cmd.caller.tenant_id, row)

    @service.handles(UpdateTeam)
    async def update_team(cmd: UpdateTeam) -> TeamView:
        caller = cmd.caller
        _require_admin(caller)
        team_id = _id(cmd.team_id, "team")
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if cmd.name is not None:
            values["name"] = cmd.name
        if cmd.members is not None:
            values["members"] = list(dict.fromkeys(cmd.members))
        if "schedule_id" in cmd.fields:
            values["schedule_id"] = uuid.UUID(cmd.schedule_id) if cmd.schedule_id else None
        t = db.teams
        async with service.engine.begin() as conn:
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

    @service.handles(DeleteTeam)
    async def delete_team(cmd: DeleteTeam) -> Done:
        """Policies naming the team keep their step (it pages nobody) and say so in `warnings`."""
        _require_admin(cmd.caller)
        t = db.teams
        async with service.engine.begin() as conn:
            gone = await conn.execute(
                delete(t)
                .where(t.c.tenant_id == cmd.caller.tenant_id, t.c.id == _id(cmd.team_id, "team"))
                .returning(t.c.id)
            )
            if gone.first() is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "team not found")
        return Done()

    # ---- routing

    async def routing_view(conn: Any, tenant_id: str) -> RoutingView:
        row = (await conn.execute(select(db.routing).where(db.routing.c.tenant_id == tenant_id))).first()
        if row is None:
            return RoutingView(rules=[], default_policy_id=None)
        return RoutingView(
            rules=[RuleSpec.model_validate(r) for r in row.rules],
            default_policy_id=str(row.default_policy_id) if row.default_policy_id else None,
        )

    @service.handles(GetRouting)
    async def get_routing(cmd: GetRouting) -> RoutingView:
        async with service.engine.connect() as conn:
            return await routing_view(conn, cmd.caller.tenant_id)

    @service.handles(PutRouting)
    async def put_routing(cmd: PutRouting) -> RoutingView:
        caller = cmd.caller
        _require_admin(caller)
        for n, rule in enumerate(cmd.rules):
            for m, matcher in enumerate(rule.matchers):
                problem = regex_problem(matcher.value) if matcher.op in ("=~", "!~") else None
                if problem is not None:
                    raise _field_problem(["body", "rules", n, "matchers", m, "value"], problem)
        named: list[tuple[list[str | int], str]] = [
            (["body", "rules", n, "policy_id"], r.policy_id) for n, r in enumerate(cmd.rules)
        ]
        if cmd.default_policy_id is not None:
            named.append((["body", "default_policy_id"], cmd.default_policy_id))
        p = db.policies
        async with service.engine.begin() as conn:
            for loc, raw in named:
                try:
                    policy_id = uuid.UUID(raw)
                except ValueError:
                    raise _field_problem(loc, "policy not found", ErrorCode.NOT_FOUND) from None
                found = await conn.execute(
                    select(p.c.id).where(p.c.tenant_id == caller.tenant_id, p.c.id == policy_id)
                )
                if found.first() is None:
                    raise _field_problem(loc, "policy not found", ErrorCode.NOT_FOUND)
            values = {
                "rules": [r.model_dump(mode="json") for r in cmd.rules],
                "default_policy_id": uuid.UUID(cmd.default_policy_id) if cmd.default_policy_id else None,
                "updated_by": caller.user_id,
                "updated_at": datetime.now(UTC),
            }
            await conn.execute(
                insert(db.routing)
                .values(tenant_id=caller.tenant_id, **values)
                .on_conflict_do_update(index_elements=[db.routing.c.tenant_id], set_=values)
            )
            return await routing_view(conn, caller.tenant_id)

    @service.handles(ServiceOnCall)
    async def service_on_call(cmd: ServiceOnCall) -> ServiceOnCallView:
        """Who the routed policy's first step pages for an incident of this service, now (the
        severity taken as critical: the rule a page at night would follow)."""
        tenant_id, now = cmd.caller.tenant_id, datetime.now(UTC)
        async with service.engine.connect() as conn:
            row = (await conn.execute(select(db.routing).where(db.routing.c.tenant_id == tenant_id))).first()
            rules, default = rules_of(row)
            chosen = route(rules, default, cmd.service_name, "critical")
            users: list[str] = []
            if chosen is not None:
                p = db.policies
                policy = (
                    await conn.execute(
                        select(p).where(p.c.tenant_id == tenant_id, p.c.id == uuid.UUID(chosen))
                    )
                ).first()
                if policy is not None:
                    first = policy_of({"steps": policy.steps, "repeat": policy.repeat}).steps[0]
                    who, teams = await resolver(conn, tenant_id, list(first.targets), now)
                    users = people(first.targets, who, teams)
        return ServiceOnCallView(service_name=cmd.service_name, policy_id=chosen, user_ids=users)

    # ---- contact methods (each person their own)

    @service.handles(CreateContactMethod)
    async def create_contact_method(cmd: CreateContactMethod) -> ContactMethodIssued:
        caller = cmd.caller
        if not caller.role.at_least(Role.RESPONDER):
            raise CommandFailed(ErrorCode.FORBIDDEN, "viewers are not paged")
        if cmd.kind is ChannelKind.EMAIL:
            try:
                address = EMAIL.validate_python(cmd.address)
            except ValueError:
                raise _field_problem(["body", "address"], "not an email address") from None
        elif cmd.kind is ChannelKind.WEBHOOK:
            address = cmd.address
            if not address.startswith(("https://", "http://")):
                raise _field_problem(["body", "address"], "a webhook is an http(s) URL")
        else:
            address = cmd.address
        secret = f"whsec_{secrets.token_urlsafe(32)}" if cmd.kind is ChannelKind.WEBHOOK else None
        async with service.engine.begin() as conn:
            row = (
                await conn.execute(
                    db.contact_methods.insert()
                    .values(
                        id=new_id(),
                        tenant_id=caller.tenant_id,
                        user_id=caller.user_id,
                        kind=cmd.kind.value,
                        address=address,
                        delay_minutes=cmd.delay_minutes,
                        secret=secret,
                        created_at=datetime.now(UTC),
                    )
                    .returning(db.contact_methods)
                )
            ).one()
        return ContactMethodIssued(**contact_view(row).model_dump(), secret=secret)

    @service.handles(ListContactMethods)
    async def list_contact_methods(cmd: ListContactMethods) -> ContactMethodPage:
        c = db.contact_methods
        async with service.engine.connect() as conn:
            rows = await conn.execute(
                select(c)
                .where(c.c.tenant_id == cmd.caller.tenant_id, c.c.user_id == cmd.caller.user_id)
                .order_by(c.c.id)
            )
            return ContactMethodPage(items=[contact_view(r) for r in rows])

    async def own_method(caller: Caller, raw: str) -> Any:
        c = db.contact_methods
        async with service.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(c).where(
                        c.c.id == _id(raw, "contact method"),
                        c.c.tenant_id == caller.tenant_id,
                        c.c.user_id == caller.user_id,
                    )
                )
            ).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "contact method not found")
        return row

    @service.handles(GetContactMethod)
    async def get_contact_method(cmd: GetContactMethod) -> ContactMethodView:
        return contact_view(await own_method(cmd.caller, cmd.contact_method_id))

    @service.handles(DeleteContactMethod)
    async def delete_contact_method(cmd: DeleteContactMethod) -> Done:
        row = await own_method(cmd.caller, cmd.contact_method_id)
        async with service.engine.begin() as conn:
            await conn.execute(delete(db.contact_methods).where(db.contact_methods.c.id == row.id))
        return Done()

    # ---- acknowledging from a notification's link

    @service.handles(AcknowledgePage)
    async def acknowledge_page(cmd: AcknowledgePage) -> PageAcknowledgedView:
        page_id = _id(cmd.page_id, "page")
        problem = token_problem(paging.key, str(page_id), cmd.token, int(datetime.now(UTC).timestamp()))
        if problem is not None:
            raise CommandFailed(ErrorCode.FORBIDDEN, problem.value)
        page = await paging.acknowledge(page_id, cmd.correlation_id)
        return PageAcknowledgedView(
            page_id=str(page.id),
            incident_id=str(page.incident_id),
            user_id=page.user_id,
            acknowledged_at=page.acknowledged_at,
        )

    # ---- calendar feeds

    @service.handles(IssueCalendarFeed)
    async def issue_calendar_feed(cmd: IssueCalendarFeed) -> CalendarFeedIssued:
        caller = cmd.caller
        token = secrets.token_urlsafe(32)
        values = {"token_hash": _digest(token), "created_at": datetime.now(UTC)}
        f = db.calendar_feeds
        async with service.engine.begin() as conn:
            await conn.execute(
                insert(f)
                .values(tenant_id=caller.tenant_id, user_id=caller.user_id, **values)
                .on_conflict_do_update(index_elements=[f.c.tenant_id, f.c.user_id], set_=values)
            )
        return CalendarFeedIssued(
            token=token,
            my_shifts_path=f"/api/v1/calendars/{token}/me.ics",
            schedule_path_template=f"/api/v1/calendars/{token}/schedules/{{schedule_id}}.ics",
        )

    @service.handles(ReadCalendar)
    async def read_calendar(cmd: ReadCalendar) -> CalendarText:
        now = datetime.now(UTC)
        start, end = now - timedelta(days=7), now + timedelta(days=settings.calendar_days)
        f, s = db.calendar_feeds, db.schedules
        async with service.engine.connect() as conn:
            feed = (await conn.execute(select(f).where(f.c.token_hash == _digest(cmd.token)))).first()
            if feed is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "no such calendar")
            query = select(s).where(s.c.tenant_id == feed.tenant_id)
            if cmd.schedule_id is not None:
                query = query.where(s.c.id == _id(cmd.schedule_id, "schedule"))
            rows = (await conn.execute(query.order_by(s.c.id))).all()
            if cmd.schedule_id is not None and not rows:
                raise CommandFailed(ErrorCode.NOT_FOUND, "schedule not found")
            overrides = await db.overrides_of(conn, [r.id for r in rows])
        shifts: list[CalendarShift] = []
        for row in rows:
            stored = _stored(overrides[row.id])
            for shift in final_shifts(schedule_of(_layers(row), stored), start, end):
                if cmd.schedule_id is None and shift.user_id != feed.user_id:
                    continue
                summary = f"On call: {row.name}" + (f" ({shift.user_id})" if cmd.schedule_id else "")
                uid = f"{row.id}-{shift.user_id}-{int(shift.start.timestamp())}@sre-copilot"
                shifts.append(CalendarShift(uid, summary, shift.start, shift.end))
        name = rows[0].name if cmd.schedule_id is not None else "My on-call shifts"
        return CalendarText(ics=calendar(name, shifts, now))

    return paging
