"""incidents' commands on the bus (create, transition, update, note) and its directory of users.
Each handler checks the caller, loads and locks the incident through db.py, asks domain.py for the
change and its event, saves both in one transaction, and publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import (
    AddNote,
    Caller,
    CommandFailed,
    CreateIncident,
    ErrorCode,
    IncidentAccepted,
    TransitionIncident,
    UpdateIncident,
)
from contracts.envelope import EventEnvelope
from contracts.events import IncidentSnapshot, IncidentState
from contracts.subjects import INCIDENTS_DIRECTORY, events_of_type
from incidents import db
from incidents.domain import (
    EDITABLE_FIELDS,
    IncidentEvent,
    TransitionRefused,
    edit,
    incident_envelope,
    note_envelope,
    open_incident,
)
from incidents.domain import transition as move
from incidents.guards import locked_incident, require_responder
from incidents.postmortem_handlers import register_postmortem_handlers
from runtime.command_args import chosen_id, object_id, optional_chosen_id
from runtime.consumer import Delivery
from runtime.outbox import stage
from runtime.service import Service

# What each of auth's user events says about whether the user can be assigned incidents.
USER_ACTIVITY = {
    "user.created": True,
    "user.activated": True,
    "user.reactivated": True,
    "user.deactivated": False,
}


def envelope(data: IncidentEvent, caller: Caller, correlation_id: str) -> EventEnvelope:
    return incident_envelope(
        data, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=correlation_id
    )


async def check_assignee(conn: AsyncConnection, tenant_id: str, user_id: str) -> None:
    if not await db.member_is_active(conn, tenant_id, user_id):
        # A conflict with the organisation's people as they are now (the user may have been
        # deactivated since the caller read the list), not a malformed request: the body is valid.
        raise CommandFailed(
            ErrorCode.CONFLICT,
            "the assignee must be an active user of your organisation",
            [{"loc": ["body", "assignee_id"], "msg": "unknown or inactive user", "type": "value_error"}],
        )


async def accepted(service: Service, snapshot: IncidentSnapshot, event: EventEnvelope) -> IncidentAccepted:
    return IncidentAccepted(incident=snapshot, seq=await service.relay.publish_now([event]))


async def create(service: Service, cmd: CreateIncident) -> IncidentAccepted:
    caller = cmd.caller
    require_responder(caller)
    now = datetime.now(UTC)
    related_id = optional_chosen_id(cmd.related_incident_id, "related_incident_id")
    incident_id = chosen_id(cmd.incident_id, "incident_id") if cmd.incident_id is not None else uuid.uuid4()
    async with service.engine.begin() as conn:
        if cmd.incident_id is not None:
            existing = await db.incident_row(conn, incident_id)
            if existing is not None and existing.tenant_id != caller.tenant_id:
                raise CommandFailed(ErrorCode.CONFLICT, "incident_id is taken")
            if existing is not None:
                # The same command again (its first reply was lost): the incident it made.
                return IncidentAccepted(incident=db.snapshot_of(existing), seq=None)
        if related_id is not None and not await db.incident_exists(conn, caller.tenant_id, related_id):
            raise CommandFailed(ErrorCode.VALIDATION, "the related incident does not exist")
        created = open_incident(
            incident_id=str(incident_id),
            number=await db.next_incident_number(conn, caller.tenant_id),
            title=cmd.title,
            description=cmd.description,
            service_name=cmd.service_name,
            severity=cmd.severity,
            created_by=caller.user_id,
            now=now,
            related_incident_id=str(related_id) if related_id else None,
            labels=cmd.labels,
        )
        await db.insert_incident(conn, caller.tenant_id, created.incident)
        event = envelope(created, caller, cmd.correlation_id)
        await stage(conn, db.outbox, [event])
    return await accepted(service, created.incident, event)


async def transition(service: Service, cmd: TransitionIncident) -> IncidentAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    if cmd.root_cause is not None and cmd.to is not IncidentState.RESOLVED:
        raise CommandFailed(
            ErrorCode.VALIDATION,
            "a root cause is recorded when resolving",
            [{"loc": ["body", "root_cause"], "msg": "only with to: resolved", "type": "value_error"}],
        )
    transition_id = optional_chosen_id(cmd.transition_id, "transition_id")
    async with service.engine.begin() as conn:
        current = await locked_incident(conn, caller, incident_id)
        if transition_id is not None and await db.already_done(
            conn, db.transitions, caller.tenant_id, incident_id, transition_id
        ):
            # The same move again (its first answer was lost): made once, answered as it stands.
            return IncidentAccepted(incident=current, seq=None)
        try:
            moved = move(current, cmd.to, note=cmd.note, root_cause=cmd.root_cause, now=now)
        except TransitionRefused as exc:
            raise CommandFailed(
                ErrorCode.CONFLICT,
                str(exc),
                {"state": current.state.value, "allowed": [s.value for s in exc.allowed]},
            ) from exc
        assert moved.incident is not None
        await db.save_incident(conn, caller.tenant_id, moved.incident)
        await db.record_transition(conn, caller.tenant_id, caller.user_id, moved, transition_id)
        event = envelope(moved, caller, cmd.correlation_id)
        await stage(conn, db.outbox, [event])
    return await accepted(service, moved.incident, event)


async def update(service: Service, cmd: UpdateIncident) -> IncidentAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    requested = cmd.model_dump(
        mode="json", include=set(EDITABLE_FIELDS) & cmd.model_fields_set, exclude_none=False
    )
    for name in ("title", "service_name", "severity", "description"):
        if name in requested and requested[name] is None:
            raise CommandFailed(ErrorCode.VALIDATION, f"{name} cannot be null")
    async with service.engine.begin() as conn:
        current = await locked_incident(conn, caller, incident_id)
        if cmd.expected_version is not None and cmd.expected_version != current.version:
            raise CommandFailed(
                ErrorCode.CONFLICT,
                "the incident changed since you read it",
                {"version": current.version, "expected_version": cmd.expected_version},
            )
        updated = edit(current, requested, now)
        if updated is None:
            return IncidentAccepted(incident=current, seq=None)
        assert updated.incident is not None
        new_assignee = updated.changes.get("assignee_id")
        if new_assignee is not None and new_assignee.new is not None:
            await check_assignee(conn, caller.tenant_id, new_assignee.new)
        await db.save_incident(conn, caller.tenant_id, updated.incident)
        event = envelope(updated, caller, cmd.correlation_id)
        await stage(conn, db.outbox, [event])
    return await accepted(service, updated.incident, event)


async def add_note(service: Service, cmd: AddNote) -> IncidentAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    note_id = chosen_id(cmd.note_id, "note_id") if cmd.note_id else uuid.uuid4()
    async with service.engine.begin() as conn:
        current = await locked_incident(conn, caller, incident_id)
        if cmd.note_id and await db.already_done(conn, db.notes, caller.tenant_id, incident_id, note_id):
            return IncidentAccepted(incident=current, seq=None)  # the same note again
        await db.insert_note(
            conn,
            note_id=note_id,
            incident_id=incident_id,
            tenant_id=caller.tenant_id,
            body=cmd.body,
            author=caller.user_id,
            at=now,
        )
        event = note_envelope(
            current,
            str(note_id),
            cmd.body,
            now,
            tenant_id=caller.tenant_id,
            actor=caller.user_id,
            correlation_id=cmd.correlation_id,
        )
        await stage(conn, db.outbox, [event])
    return await accepted(service, current, event)


async def on_user_event(service: Service, delivery: Delivery) -> None:
    """Who may be assigned incidents: each user's latest known activity, by the user aggregate's
    version (a late or repeated event never undoes a newer one)."""
    event = delivery.event
    active = USER_ACTIVITY.get(event.type)
    if active is None:
        return
    user_id = str(getattr(delivery.data, "user_id"))  # noqa: B009 - every user event has one
    async with service.engine.begin() as conn:
        await db.remember_member(conn, event.tenant_id, user_id, active, event.aggregate_version)


def register_handlers(service: Service) -> None:
    service.handles(CreateIncident)(partial(create, service))
    service.handles(TransitionIncident)(partial(transition, service))
    service.handles(UpdateIncident)(partial(update, service))
    service.handles(AddNote)(partial(add_note, service))
    register_postmortem_handlers(service)
    service.consume(INCIDENTS_DIRECTORY, [events_of_type("user.>")], db.consumed, max_in_flight=16)(
        partial(on_user_event, service)
    )
