"""oncall on the bus: register_handlers binds the command handlers of schedule_handlers,
policy_handlers, team_handlers, contact_handlers, page_handlers, calendar_handlers and slack.py (a
page's Acknowledge button) to their command models, the `oncall_escalator` consumer, and the paging
machinery (oncall/paging.py) started and stopped with the service. Each handler checks the caller,
asks the domain modules (domain.py, escalation.py, schedule.py) what to do, and reads and writes
through db.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from contracts.oncall import (
    AcknowledgePage,
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
    ListContactMethods,
    ListPolicies,
    ListSchedules,
    ListTeams,
    NextShifts,
    OnCallAt,
    PutRouting,
    ReadCalendar,
    ServiceOnCall,
    SlackPageAction,
    UpdatePolicy,
    UpdateSchedule,
    UpdateTeam,
)
from contracts.subjects import ONCALL_ESCALATOR
from oncall import (
    calendar_handlers,
    contact_handlers,
    db,
    page_handlers,
    policy_handlers,
    schedule_handlers,
    slack,
    team_handlers,
)
from oncall.context import Oncall
from oncall.paging import Paging
from oncall.settings import OncallSettings
from runtime.service import Service

HANDLERS: tuple[tuple[type[Any], Callable[..., Awaitable[Any]]], ...] = (
    (CreateSchedule, schedule_handlers.create_schedule),
    (ListSchedules, schedule_handlers.list_schedules),
    (GetSchedule, schedule_handlers.get_schedule),
    (UpdateSchedule, schedule_handlers.update_schedule),
    (DeleteSchedule, schedule_handlers.delete_schedule),
    (CreateOverride, schedule_handlers.create_override),
    (GetOverride, schedule_handlers.get_override),
    (DeleteOverride, schedule_handlers.delete_override),
    (OnCallAt, schedule_handlers.on_call),
    (NextShifts, schedule_handlers.shifts),
    (CreatePolicy, policy_handlers.create_policy),
    (ListPolicies, policy_handlers.list_policies),
    (GetPolicy, policy_handlers.get_policy),
    (UpdatePolicy, policy_handlers.update_policy),
    (DeletePolicy, policy_handlers.delete_policy),
    (CreateTeam, team_handlers.create_team),
    (ListTeams, team_handlers.list_teams),
    (GetTeam, team_handlers.get_team),
    (UpdateTeam, team_handlers.update_team),
    (DeleteTeam, team_handlers.delete_team),
    (GetRouting, policy_handlers.get_routing),
    (PutRouting, policy_handlers.put_routing),
    (ServiceOnCall, policy_handlers.service_on_call),
    (CreateContactMethod, contact_handlers.create_contact_method),
    (ListContactMethods, contact_handlers.list_contact_methods),
    (GetContactMethod, contact_handlers.get_contact_method),
    (DeleteContactMethod, contact_handlers.delete_contact_method),
    (AcknowledgePage, page_handlers.acknowledge_page),
    (IssueCalendarFeed, calendar_handlers.issue_calendar_feed),
    (ReadCalendar, calendar_handlers.read_calendar),
)


def register_handlers(service: Service, settings: OncallSettings) -> Oncall:
    oc = Oncall(service, settings, Paging(service, settings))

    @service.app.after_startup
    async def start_paging() -> None:
        await oc.paging.start()

    @service.app.on_shutdown
    async def stop_paging() -> None:
        await oc.paging.stop()

    for model, handler in HANDLERS:
        service.handles(model)(partial(handler, oc))
    service.handles(SlackPageAction)(partial(slack.slack_action, oc, slack.Responses(settings, oc.paging)))
    consume = service.consume(ONCALL_ESCALATOR, page_handlers.FILTER_SUBJECTS, db.consumed, max_in_flight=32)
    consume(partial(page_handlers.escalate, oc))
    return oc
