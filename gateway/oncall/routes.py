"""`/api/v1/schedules`: on-call schedules (layers, restrictions, overrides), who is on call at a time,
and the next shifts.

Schedules are configuration only the oncall service computes with, so they are read through query
commands to it (as integrations' webhooks are), not from the gateway's read models. Admins manage
schedules; responders put themselves on call with overrides (and delete the ones involving them);
every member reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy import select

from contracts import oncall as co
from contracts.commands import Caller, Done, ErrorCode
from contracts.events import SERVICE_NAME, Role
from contracts.wire import NO_NUL
from gateway.auth.dependencies import AdminDep, SelfDep, require_role
from gateway.errors import ApiError, declare
from gateway.http.fields import UUID_PATTERN
from gateway.oncall.schemas import (
    CalendarFeedRead,
    ContactMethodPage,
    ContactMethodRead,
    ContactMethodSecretRead,
    OnCallRead,
    OverrideCreate,
    OverrideRead,
    PageAcknowledgedRead,
    PolicyCreate,
    PolicyPage,
    PolicyRead,
    RoutingRead,
    RoutingUpdate,
    ScheduleCreate,
    SchedulePage,
    ScheduleRead,
    ScheduleUpdate,
    ServiceOnCallRead,
    ShiftPage,
    TeamCreate,
    TeamPage,
    TeamRead,
    TeamUpdate,
)
from gateway.projection import tables
from gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/api/v1/schedules", tags=["on-call"])

ScheduleId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
OverrideId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
ResponderDep = Annotated[Caller, require_role(Role.RESPONDER)]
Cursor = Annotated[
    str | None, Query(pattern=UUID_PATTERN, description="The previous page's `next_cursor`, as it was given")
]
COMMAND = (504,)
R = TypeVar("R", bound=BaseModel)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@router.post("", status_code=201, response_model=ScheduleRead, responses=declare(409, *COMMAND))
async def create_schedule(gw: GatewayDep, body: ScheduleCreate, caller: AdminDep) -> ScheduleRead:
    """A schedule: layers of participants (user ids) rotating `daily`, `weekly` or every `length`
    `hours`/`days` from `start_date` at `handoff_time` in `time_zone` (IANA), optionally restricted to
    weekly windows. An unknown time zone or an empty layer is a 422; a deactivated participant a 409."""
    return await gw.commands.call(
        co.CreateSchedule, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, ScheduleRead
    )


@router.get("", response_model=SchedulePage, responses=declare(*COMMAND))
async def list_schedules(
    gw: GatewayDep, caller: SelfDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None
) -> SchedulePage:
    return await gw.commands.call(
        co.ListSchedules, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, SchedulePage
    )


@router.get("/{schedule_id}", response_model=ScheduleRead, responses=declare(*COMMAND))
async def get_schedule(gw: GatewayDep, schedule_id: ScheduleId, caller: SelfDep) -> ScheduleRead:
    return await gw.commands.call(
        co.GetSchedule, {"caller": caller.model_dump(), "schedule_id": schedule_id}, ScheduleRead
    )


@router.patch("/{schedule_id}", response_model=ScheduleRead, responses=declare(409, *COMMAND))
async def update_schedule(
    gw: GatewayDep, schedule_id: ScheduleId, body: ScheduleUpdate, caller: AdminDep
) -> ScheduleRead:
    return await gw.commands.call(
        co.UpdateSchedule,
        {
            "caller": caller.model_dump(),
            "schedule_id": schedule_id,
            **body.model_dump(mode="json", exclude_unset=True),
        },
        ScheduleRead,
    )


@router.delete("/{schedule_id}", status_code=204, responses=declare(*COMMAND))
async def delete_schedule(gw: GatewayDep, schedule_id: ScheduleId, caller: AdminDep) -> Response:
    await gw.commands.call(
        co.DeleteSchedule, {"caller": caller.model_dump(), "schedule_id": schedule_id}, Done
    )
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/overrides", status_code=201, response_model=OverrideRead, responses=declare(*COMMAND)
)
async def create_override(
    gw: GatewayDep, schedule_id: ScheduleId, body: OverrideCreate, caller: ResponderDep
) -> OverrideRead:
    """Put someone on call from `start` to `end` (after it, at most 366 days later) whatever the
    layers say (admins: anyone; responders: themselves). Where overrides overlap, the later wins."""
    return await gw.commands.call(
        co.CreateOverride,
        {"caller": caller.model_dump(), "schedule_id": schedule_id, **body.model_dump(mode="json")},
        OverrideRead,
    )


@router.get(
    "/{schedule_id}/overrides/{override_id}", response_model=OverrideRead, responses=declare(*COMMAND)
)
async def get_override(
    gw: GatewayDep, schedule_id: ScheduleId, override_id: OverrideId, caller: SelfDep
) -> OverrideRead:
    return await gw.commands.call(
        co.GetOverride,
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "override_id": override_id},
        OverrideRead,
    )


@router.delete("/{schedule_id}/overrides/{override_id}", status_code=204, responses=declare(*COMMAND))
async def delete_override(
    gw: GatewayDep,
    schedule_id: ScheduleId,
    override_id: OverrideId,
    caller: ResponderDep,
) -> Response:
    await gw.commands.call(
        co.DeleteOverride,
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "override_id": override_id},
        Done,
    )
    return Response(status_code=204)


@router.get("/{schedule_id}/on-call", response_model=OnCallRead, responses=declare(*COMMAND))
async def on_call(
    gw: GatewayDep,
    schedule_id: ScheduleId,
    caller: SelfDep,
    at: Annotated[co.Moment | None, Query(description="RFC 3339 (default: now)")] = None,
) -> OnCallRead:
    """Who is on call at `at`: `user_id` (null: nobody), from which layer or override."""
    return await gw.commands.call(
        co.OnCallAt, {"caller": caller.model_dump(), "schedule_id": schedule_id, "at": _iso(at)}, OnCallRead
    )


@router.get("/{schedule_id}/shifts", response_model=ShiftPage, responses=declare(*COMMAND))
async def next_shifts(
    gw: GatewayDep,
    schedule_id: ScheduleId,
    caller: SelfDep,
    after: Annotated[co.Moment | None, Query(description="RFC 3339 (default: now)")] = None,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ShiftPage:
    """The next `count` shifts of the final schedule (layers, restrictions, overrides), the one under
    way first (from `after`); a time nobody covers is no shift."""
    return await gw.commands.call(
        co.NextShifts,
        {"caller": caller.model_dump(), "schedule_id": schedule_id, "after": _iso(after), "count": count},
        ShiftPage,
    )


# ---- escalation policies, routing, contact methods, acknowledgements

paging_router = APIRouter(prefix="/api/v1", tags=["on-call"])
PolicyId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
ContactMethodId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@paging_router.post(
    "/escalation-policies", status_code=201, response_model=PolicyRead, responses=declare(404, 409, *COMMAND)
)
async def create_policy(gw: GatewayDep, body: PolicyCreate, caller: AdminDep) -> PolicyRead:
    """Targets are users (`{"kind": "user", "id": USER_ID}`), a schedule's on-call at the time the
    step fires (`{"kind": "schedule", "id": SCHEDULE_ID}`: a 404 if there is no such schedule) or a
    team (`{"kind": "team", "id": TEAM_ID}`: a 404 if there is no such team). A deactivated person
    is a 409. `warnings` (on every read) say what became untrue later: a person deactivated, a
    schedule or team deleted."""
    return await gw.commands.call(
        co.CreatePolicy, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, PolicyRead
    )


@paging_router.get("/escalation-policies", response_model=PolicyPage, responses=declare(*COMMAND))
async def list_policies(
    gw: GatewayDep, caller: SelfDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None
) -> PolicyPage:
    return await gw.commands.call(
        co.ListPolicies, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, PolicyPage
    )


@paging_router.get("/escalation-policies/{policy_id}", response_model=PolicyRead, responses=declare(*COMMAND))
async def get_policy(gw: GatewayDep, policy_id: PolicyId, caller: SelfDep) -> PolicyRead:
    return await gw.commands.call(
        co.GetPolicy, {"caller": caller.model_dump(), "policy_id": policy_id}, PolicyRead
    )


@paging_router.put(
    "/escalation-policies/{policy_id}", response_model=PolicyRead, responses=declare(404, 409, *COMMAND)
)
async def update_policy(
    gw: GatewayDep, policy_id: PolicyId, body: PolicyCreate, caller: AdminDep
) -> PolicyRead:
    """Replace a policy's name, steps and repeat (the same checks as creating one). Escalations
    under way go on with the policy as it was when they started; the next ones use the new one."""
    return await gw.commands.call(
        co.UpdatePolicy,
        {"caller": caller.model_dump(), "policy_id": policy_id, **body.model_dump(mode="json")},
        PolicyRead,
    )


@paging_router.delete("/escalation-policies/{policy_id}", status_code=204, responses=declare(*COMMAND))
async def delete_policy(gw: GatewayDep, policy_id: PolicyId, caller: AdminDep) -> Response:
    """Running escalations go on with the policy as it was when they started."""
    await gw.commands.call(co.DeletePolicy, {"caller": caller.model_dump(), "policy_id": policy_id}, Done)
    return Response(status_code=204)


# ---- teams

TeamId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


async def _known_members(gw: Gateway, tenant_id: str, members: list[str]) -> None:
    """A 404 naming each member who is no user of the organisation (the gateway's users view: what
    an admin just invited is in it, read-your-writes), as for any id a body names that does not
    exist (a policy's schedule, a rule's policy). Deactivated members are oncall's 409."""
    async with gw.engine.connect() as conn:
        rows = await conn.execute(
            select(tables.users.c.id, tables.users.c.status).where(
                tables.users.c.tenant_id == tenant_id, tables.users.c.id.in_(set(members))
            )
        )
        known = {r.id: r.status for r in rows}
    gone = [
        {"loc": ["body", "members", n], "msg": f"{user} is deactivated", "type": "value_error"}
        for n, user in enumerate(members)
        if known.get(user) == "deactivated"
    ]
    if gone:
        raise ApiError.of(ErrorCode.CONFLICT, "a deactivated person cannot be paged", gone)
    problems = [
        {
            "loc": ["body", "members", n],
            "msg": f"{user} is no user of this organisation",
            "type": "value_error",
        }
        for n, user in enumerate(members)
        if user not in known
    ]
    if problems:
        raise ApiError.of(ErrorCode.NOT_FOUND, "unknown team members", problems)


@paging_router.post("/teams", status_code=201, response_model=TeamRead, responses=declare(404, 409, *COMMAND))
async def create_team(gw: GatewayDep, body: TeamCreate, caller: AdminDep) -> TeamRead:
    """A team, to name in an escalation step (`{"kind": "team", "id": TEAM_ID}`). A member who is no
    user of the organisation, or a schedule that does not exist, is a 404 (its `details` say which);
    a deactivated member a 409."""
    await _known_members(gw, caller.tenant_id, body.members)
    return await gw.commands.call(
        co.CreateTeam, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, TeamRead
    )


@paging_router.get("/teams", response_model=TeamPage, responses=declare(*COMMAND))
async def list_teams(
    gw: GatewayDep, caller: SelfDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None
) -> TeamPage:
    return await gw.commands.call(
        co.ListTeams, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, TeamPage
    )


@paging_router.get("/teams/{team_id}", response_model=TeamRead, responses=declare(*COMMAND))
async def get_team(gw: GatewayDep, team_id: TeamId, caller: SelfDep) -> TeamRead:
    """`warnings` say what became untrue since it was saved (a member deactivated, its schedule
    deleted)."""
    return await gw.commands.call(co.GetTeam, {"caller": caller.model_dump(), "team_id": team_id}, TeamRead)


@paging_router.patch("/teams/{team_id}", response_model=TeamRead, responses=declare(404, 409, *COMMAND))
async def update_team(gw: GatewayDep, team_id: TeamId, body: TeamUpdate, caller: AdminDep) -> TeamRead:
    given = body.model_dump(mode="json", exclude_unset=True)
    if body.members is not None:
        await _known_members(gw, caller.tenant_id, body.members)
    return await gw.commands.call(
        co.UpdateTeam,
        {"caller": caller.model_dump(), "team_id": team_id, **given, "fields": sorted(given)},
        TeamRead,
    )


@paging_router.delete("/teams/{team_id}", status_code=204, responses=declare(*COMMAND))
async def delete_team(gw: GatewayDep, team_id: TeamId, caller: AdminDep) -> Response:
    """Policies naming the team keep the step (it pages nobody) and say so in their `warnings`."""
    await gw.commands.call(co.DeleteTeam, {"caller": caller.model_dump(), "team_id": team_id}, Done)
    return Response(status_code=204)


@paging_router.get("/routing", response_model=RoutingRead, responses=declare(*COMMAND))
async def get_routing(gw: GatewayDep, caller: SelfDep) -> RoutingRead:
    return await gw.commands.call(co.GetRouting, {"caller": caller.model_dump()}, RoutingRead)


@paging_router.put("/routing", response_model=RoutingRead, responses=declare(404, *COMMAND))
async def put_routing(gw: GatewayDep, body: RoutingUpdate, caller: AdminDep) -> RoutingRead:
    """Replace the routing: a new incident takes the policy of the first rule it matches
    (`service_name`, one of `severities`, every one of `labels` equal and of `matchers` holding, on
    the labels of the alert that opened it), else `default_policy_id` (none: nobody is paged). A
    matcher's regular expression that does not compile is a 422."""
    return await gw.commands.call(
        co.PutRouting, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, RoutingRead
    )


@paging_router.get(
    "/services/{service_name}/on-call", response_model=ServiceOnCallRead, responses=declare(*COMMAND)
)
async def service_on_call(
    gw: GatewayDep,
    service_name: Annotated[str, Path(min_length=1, max_length=100, pattern=SERVICE_NAME)],
    caller: SelfDep,
) -> ServiceOnCallRead:
    """Who would be paged first, now, for a critical incident of this service (routing, then the
    policy's first step, schedules resolved to their on-call)."""
    return await gw.commands.call(
        co.ServiceOnCall, {"caller": caller.model_dump(), "service_name": service_name}, ServiceOnCallRead
    )


@paging_router.post(
    "/contact-methods", status_code=201, response_model=ContactMethodSecretRead, responses=declare(*COMMAND)
)
async def create_contact_method(
    gw: GatewayDep, body: Annotated[co.ContactSpec, Body()], caller: ResponderDep
) -> ContactMethodSecretRead:
    """One of your own ways to be paged: `email` (an address), `webhook` (a URL: a signed POST, for
    SMS or phone gateways; its `secret` is in this answer only) or `slack` (your member id: a DM
    from the bot), `delay_minutes` after the page (e.g. Slack at once, email after 5)."""
    return await gw.commands.call(
        co.CreateContactMethod,
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        ContactMethodSecretRead,
    )


@paging_router.get("/contact-methods", response_model=ContactMethodPage, responses=declare(*COMMAND))
async def list_contact_methods(gw: GatewayDep, caller: SelfDep) -> ContactMethodPage:
    return await gw.commands.call(co.ListContactMethods, {"caller": caller.model_dump()}, ContactMethodPage)


@paging_router.get(
    "/contact-methods/{contact_method_id}", response_model=ContactMethodRead, responses=declare(*COMMAND)
)
async def get_contact_method(
    gw: GatewayDep, contact_method_id: ContactMethodId, caller: SelfDep
) -> ContactMethodRead:
    return await gw.commands.call(
        co.GetContactMethod,
        {"caller": caller.model_dump(), "contact_method_id": contact_method_id},
        ContactMethodRead,
    )


@paging_router.delete("/contact-methods/{contact_method_id}", status_code=204, responses=declare(*COMMAND))
async def delete_contact_method(
    gw: GatewayDep, contact_method_id: ContactMethodId, caller: SelfDep
) -> Response:
    await gw.commands.call(
        co.DeleteContactMethod,
        {"caller": caller.model_dump(), "contact_method_id": contact_method_id},
        Done,
    )
    return Response(status_code=204)


AckToken = Annotated[
    str, Query(min_length=1, max_length=512, pattern=NO_NUL, description="From the notification")
]


async def _acknowledge(gw: Gateway, page_id: str, token: str) -> PageAcknowledgedRead:
    return await gw.commands.call(
        co.AcknowledgePage, {"page_id": page_id, "token": token}, PageAcknowledgedRead
    )


ACK_ERRORS = declare(403, 404, 409, *COMMAND)


@paging_router.post("/pages/{page_id}/ack", response_model=PageAcknowledgedRead, responses=ACK_ERRORS)
async def acknowledge_page(
    gw: GatewayDep, page_id: Annotated[str, Path(max_length=64, pattern=NO_NUL)], token: AckToken
) -> PageAcknowledgedRead:
    """Acknowledge the incident a page is about, as the person paged: the link of every notification
    (signed, single use: a 409 the second time; expiring: a 403 after `ACK_LINK_TTL_SECONDS`). The
    escalation stops. No bearer token: the link's token is the credential."""
    return await _acknowledge(gw, page_id, token)


@paging_router.get("/pages/{page_id}/ack", response_model=PageAcknowledgedRead, responses=ACK_ERRORS)
async def acknowledge_page_by_link(
    gw: GatewayDep, page_id: Annotated[str, Path(max_length=64, pattern=NO_NUL)], token: AckToken
) -> PageAcknowledgedRead:
    """The same as POST, for a link opened in a mail client or a browser."""
    return await _acknowledge(gw, page_id, token)


# ---- calendar feeds

ICS: dict[int | str, dict[str, Any]] = {
    200: {"description": "An iCalendar (RFC 5545) document", "content": {"text/calendar": {}}}
}


@paging_router.post(
    "/calendar-feed", status_code=201, response_model=CalendarFeedRead, responses=declare(*COMMAND)
)
async def issue_calendar_feed(gw: GatewayDep, caller: SelfDep) -> CalendarFeedRead:
    """Your secret calendar addresses (your shifts, and any schedule's): subscribe to them in a
    calendar. Calling it again makes a new secret; the old addresses stop working."""
    return await gw.commands.call(co.IssueCalendarFeed, {"caller": caller.model_dump()}, CalendarFeedRead)


async def _ics(gw: Gateway, token: str, schedule_id: str | None) -> Response:
    text = await gw.commands.call(
        co.ReadCalendar, {"token": token, "schedule_id": schedule_id}, co.CalendarText
    )
    return Response(content=text.ics, media_type="text/calendar")


CalendarTokenPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


@paging_router.get(
    "/calendars/{token}/me.ics", response_class=Response, responses={**ICS, **declare(404, *COMMAND)}
)
async def my_calendar(gw: GatewayDep, token: CalendarTokenPath) -> Response:
    """Your shifts in every schedule, from a week ago to `CALENDAR_DAYS` ahead. No bearer token: the
    address's secret is the credential."""
    return await _ics(gw, token, None)


@paging_router.get(
    "/calendars/{token}/schedules/{schedule_id}.ics",
    response_class=Response,
    responses={**ICS, **declare(404, *COMMAND)},
)
async def schedule_calendar(gw: GatewayDep, token: CalendarTokenPath, schedule_id: ScheduleId) -> Response:
    """A schedule's final shifts (who is on call, in each event's summary)."""
    return await _ics(gw, token, schedule_id)
