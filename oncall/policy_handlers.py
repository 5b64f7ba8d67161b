"""oncall's escalation policies and the routing that picks one for an incident."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.oncall import (
    CreatePolicy,
    DeletePolicy,
    GetPolicy,
    GetRouting,
    ListPolicies,
    PolicyPage,
    PolicyView,
    PutRouting,
    RoutingView,
    RuleSpec,
    ServiceOnCall,
    ServiceOnCallView,
    StepSpec,
    TargetKind,
    UpdatePolicy,
)
from oncall import db
from oncall.context import Oncall, field_problem, new_id, referenced, refuse_deactivated, require_admin
from oncall.domain import Referenced, matcher_problem, policy_of, policy_warnings, rules_of
from oncall.escalation import people, route
from oncall.paging import resolver
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id


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


async def check_targets(conn: Any, tenant_id: str, steps: list[StepSpec]) -> Referenced:
    """A 404 for a schedule or a team that does not exist (as for a rule's policy); what the
    targets name, for the policy's warnings."""
    known = await referenced(conn, tenant_id, steps)
    for n, step in enumerate(steps):
        for m, target in enumerate(step.targets):
            loc: list[str | int] = ["body", "steps", n, "targets", m, "id"]
            if target.kind is TargetKind.SCHEDULE and target.id not in known.schedules:
                raise field_problem(loc, "schedule not found", ErrorCode.NOT_FOUND)
            if target.kind is TargetKind.TEAM and target.id not in known.teams:
                raise field_problem(loc, "team not found", ErrorCode.NOT_FOUND)
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


async def create_policy(oc: Oncall, cmd: CreatePolicy) -> PolicyView:
    caller = cmd.caller
    require_admin(caller)
    now = datetime.now(UTC)
    async with oc.service.engine.begin() as conn:
        known = await check_steps(conn, caller.tenant_id, cmd.steps)
        row = await db.insert_policy(
            conn,
            {
                "id": new_id(),
                "tenant_id": caller.tenant_id,
                "name": cmd.name,
                "steps": [s.model_dump(mode="json") for s in cmd.steps],
                "repeat": cmd.repeat,
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    return policy_view(row, known)


async def list_policies(oc: Oncall, cmd: ListPolicies) -> PolicyPage:
    after = _cursor(cmd.cursor)
    async with oc.service.engine.connect() as conn:
        rows = await db.policies_page(conn, cmd.caller.tenant_id, after, cmd.limit)
        more, rows = len(rows) > cmd.limit, rows[: cmd.limit]
        steps = [StepSpec.model_validate(s) for r in rows for s in r.steps]
        known = await referenced(conn, cmd.caller.tenant_id, steps)
    return PolicyPage(
        items=[policy_view(r, known) for r in rows], next_cursor=str(rows[-1].id) if more else None
    )


async def get_policy(oc: Oncall, cmd: GetPolicy) -> PolicyView:
    async with oc.service.engine.connect() as conn:
        row = await db.policy(conn, cmd.caller.tenant_id, _id(cmd.policy_id, "policy"))
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
        steps = [StepSpec.model_validate(s) for s in row.steps]
        return policy_view(row, await referenced(conn, cmd.caller.tenant_id, steps))


async def update_policy(oc: Oncall, cmd: UpdatePolicy) -> PolicyView:
    caller = cmd.caller
    require_admin(caller)
    async with oc.service.engine.begin() as conn:
        # The policy first: another organisation's id is a 404 whatever the body names.
        found = await db.policy(conn, caller.tenant_id, _id(cmd.policy_id, "policy"), lock=True)
        if found is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
        known = await check_steps(conn, caller.tenant_id, cmd.steps)
        row = await db.update_policy(
            conn,
            caller.tenant_id,
            found.id,
            {
                "name": cmd.name,
                "steps": [s.model_dump(mode="json") for s in cmd.steps],
                "repeat": cmd.repeat,
                "updated_at": datetime.now(UTC),
            },
        )
    return policy_view(row, known)


async def delete_policy(oc: Oncall, cmd: DeletePolicy) -> Done:
    require_admin(cmd.caller)
    async with oc.service.engine.begin() as conn:
        if not await db.delete_policy(conn, cmd.caller.tenant_id, _id(cmd.policy_id, "policy")):
            raise CommandFailed(ErrorCode.NOT_FOUND, "policy not found")
    return Done()


async def routing_view(conn: Any, tenant_id: str) -> RoutingView:
    row = await db.tenant_routing(conn, tenant_id)
    if row is None:
        return RoutingView(rules=[], default_policy_id=None)
    return RoutingView(
        rules=[RuleSpec.model_validate(r) for r in row.rules],
        default_policy_id=str(row.default_policy_id) if row.default_policy_id else None,
    )


async def get_routing(oc: Oncall, cmd: GetRouting) -> RoutingView:
    async with oc.service.engine.connect() as conn:
        return await routing_view(conn, cmd.caller.tenant_id)


async def put_routing(oc: Oncall, cmd: PutRouting) -> RoutingView:
    caller = cmd.caller
    require_admin(caller)
    problem = matcher_problem(cmd.rules)
    if problem is not None:
        raise field_problem(*problem)
    named: list[tuple[list[str | int], str]] = [
        (["body", "rules", n, "policy_id"], r.policy_id) for n, r in enumerate(cmd.rules)
    ]
    if cmd.default_policy_id is not None:
        named.append((["body", "default_policy_id"], cmd.default_policy_id))
    async with oc.service.engine.begin() as conn:
        for loc, raw in named:
            try:
                policy_id = uuid.UUID(raw)
            except ValueError:
                raise field_problem(loc, "policy not found", ErrorCode.NOT_FOUND) from None
            if await db.policy(conn, caller.tenant_id, policy_id) is None:
                raise field_problem(loc, "policy not found", ErrorCode.NOT_FOUND)
        values = {
            "rules": [r.model_dump(mode="json") for r in cmd.rules],
            "default_policy_id": uuid.UUID(cmd.default_policy_id) if cmd.default_policy_id else None,
            "updated_by": caller.user_id,
            "updated_at": datetime.now(UTC),
        }
        await db.save_routing(conn, caller.tenant_id, values)
        return await routing_view(conn, caller.tenant_id)


async def service_on_call(oc: Oncall, cmd: ServiceOnCall) -> ServiceOnCallView:
    """Who the routed policy's first step pages for an incident of this service, now (the
    severity taken as critical: the rule a page at night would follow)."""
    tenant_id, now = cmd.caller.tenant_id, datetime.now(UTC)
    async with oc.service.engine.connect() as conn:
        rules, default = rules_of(await db.tenant_routing(conn, tenant_id))
        chosen = route(rules, default, cmd.service_name, "critical")
        users: list[str] = []
        if chosen is not None:
            policy = await db.policy(conn, tenant_id, uuid.UUID(chosen))
            if policy is not None:
                first = policy_of({"steps": policy.steps, "repeat": policy.repeat}).steps[0]
                who, teams = await resolver(conn, tenant_id, list(first.targets), now)
                users = people(first.targets, who, teams)
    return ServiceOnCallView(service_name=cmd.service_name, policy_id=chosen, user_ids=users)
