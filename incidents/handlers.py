"""incidents' commands on the bus (create, transition, update, note) and its directory of users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import (
    AddFollowUp,
    AddNote,
    Caller,
    CommandFailed,
    CreateIncident,
    EditPostmortem,
    ErrorCode,
    FollowUpAccepted,
    IncidentAccepted,
    PostmortemAccepted,
    PublishPostmortem,
    SavePostmortemDraft,
    TransitionIncident,
    UpdateFollowUp,
    UpdateIncident,
)
from contracts.envelope import EventEnvelope
from contracts.events import IncidentNoteAdded, IncidentSnapshot, IncidentState, Role
from contracts.subjects import INCIDENTS_DIRECTORY, events_of_type
from incidents import db
from incidents import postmortems as pm
from incidents.domain import (
    EDITABLE_FIELDS,
    IncidentEvent,
    TransitionRefused,
    edit,
    incident_envelope,
    open_incident,
)
from incidents.domain import transition as move
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


def _require_responder(caller: Caller) -> None:
    if not caller.role.at_least(Role.RESPONDER):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not change incidents")


def _envelope(data: IncidentEvent, caller: Caller, correlation_id: str) -> EventEnvelope:
    return incident_envelope(
        data, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=correlation_id
    )


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found") from exc


async def _locked_incident(conn: AsyncConnection, caller: Caller, incident_id: uuid.UUID) -> IncidentSnapshot:
    """The caller's incident, locked for this transaction; another tenant's is not found."""
    row = await db.locked_incident(conn, caller.tenant_id, incident_id)
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
    return db.snapshot_of(row)


async def _check_assignee(conn: AsyncConnection, tenant_id: str, user_id: str) -> None:
    member = (
        await conn.execute(
            select(db.directory.c.active).where(
                db.directory.c.user_id == user_id, db.directory.c.tenant_id == tenant_id
            )
        )
    ).first()
    if member is None or not member.active:
        # A conflict with the organisation's people as they are now (the user may have been
        # deactivated since the caller read the list), not a malformed request: the body is valid.
        raise CommandFailed(
            ErrorCode.CONFLICT,
            "the assignee must be an active user of your organisation",
            [{"loc": ["body", "assignee_id"], "msg": "unknown or inactive user", "type": "value_error"}],
        )


def _chosen_id(raw: str, name: str = "incident_id") -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, f"{name} must be a UUID") from exc


def _related_id(raw: str | None) -> uuid.UUID | None:
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, "related_incident_id must be a UUID") from exc


async def _existing(conn: AsyncConnection, caller: Caller, incident_id: uuid.UUID) -> Row | None:  # type: ignore[type-arg]
    row = (await conn.execute(select(db.incidents).where(db.incidents.c.id == incident_id))).first()
    if row is not None and row.tenant_id != caller.tenant_id:
        raise CommandFailed(ErrorCode.CONFLICT, "incident_id is taken")
    return row


async def _check_related(conn: AsyncConnection, tenant_id: str, related_id: uuid.UUID) -> None:
    found = (
        await conn.execute(
            select(db.incidents.c.id).where(
                db.incidents.c.id == related_id, db.incidents.c.tenant_id == tenant_id
            )
        )
    ).first()
    if found is None:
        raise CommandFailed(ErrorCode.VALIDATION, "the related incident does not exist")


async def _published(service: Service, snapshot: IncidentSnapshot, event: EventEnvelope) -> IncidentAccepted:
    return IncidentAccepted(incident=snapshot, seq=await service.relay.publish_now([event]))


def register_handlers(service: Service) -> None:
    @service.command("cmd.incidents.create", CreateIncident)
    async def create(cmd: CreateIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = uuid.uuid4(), datetime.now(UTC)
        related_id = _related_id(cmd.related_incident_id)
        async with service.engine.begin() as conn:
            if cmd.incident_id is not None:
                incident_id = _chosen_id(cmd.incident_id)
                existing = await _existing(conn, caller, incident_id)
                if existing is not None:
                    # The same command again (its first reply was lost): the incident it made.
                    return IncidentAccepted(incident=db.snapshot_of(existing), seq=None)
            if related_id is not None:
                await _check_related(conn, caller.tenant_id, related_id)
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
            event = _envelope(created, caller, cmd.correlation_id)
            await stage(conn, db.outbox, [event])
        return await _published(service, created.incident, event)

    @service.command("cmd.incidents.transition", TransitionIncident)
    async def transition(cmd: TransitionIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        if cmd.root_cause is not None and cmd.to is not IncidentState.RESOLVED:
            raise CommandFailed(
                ErrorCode.VALIDATION,
                "a root cause is recorded when resolving",
                [{"loc": ["body", "root_cause"], "msg": "only with to: resolved", "type": "value_error"}],
            )
        transition_id = _chosen_id(cmd.transition_id, "transition_id") if cmd.transition_id else None
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
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
            event = _envelope(moved, caller, cmd.correlation_id)
            await stage(conn, db.outbox, [event])
        return await _published(service, moved.incident, event)

    @service.command("cmd.incidents.update", UpdateIncident)
    async def update_incident(cmd: UpdateIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        requested = cmd.model_dump(
            mode="json", include=set(EDITABLE_FIELDS) & cmd.model_fields_set, exclude_none=False
        )
        for name in ("title", "service_name", "severity", "description"):
            if name in requested and requested[name] is None:
                raise CommandFailed(ErrorCode.VALIDATION, f"{name} cannot be null")
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
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
                await _check_assignee(conn, caller.tenant_id, new_assignee.new)
            await db.save_incident(conn, caller.tenant_id, updated.incident)
            event = _envelope(updated, caller, cmd.correlation_id)
            await stage(conn, db.outbox, [event])
        return await _published(service, updated.incident, event)

    @service.command("cmd.incidents.add_note", AddNote)
    async def add_note(cmd: AddNote) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        note_id = _chosen_id(cmd.note_id, "note_id") if cmd.note_id else uuid.uuid4()
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
            if cmd.note_id and await db.already_done(conn, db.notes, caller.tenant_id, incident_id, note_id):
                return IncidentAccepted(incident=current, seq=None)  # the same note again
            await conn.execute(
                db.notes.insert().values(
                    id=note_id,
                    incident_id=incident_id,
                    tenant_id=caller.tenant_id,
                    body=cmd.body,
                    author=caller.user_id,
                    at=now,
                )
            )
            # A note does not change the incident's fields, so its version stays.
            event = EventEnvelope(
                type="incident.note_added",
                tenant_id=caller.tenant_id,
                aggregate_id=str(incident_id),
                aggregate_version=current.version,
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=IncidentNoteAdded(
                    incident_id=str(incident_id), note_id=str(note_id), body=cmd.body, added_at=now
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return await _published(service, current, event)

    register_postmortem_handlers(service)

    @service.consume(INCIDENTS_DIRECTORY, [events_of_type("user.>")], db.consumed, max_in_flight=16)
    async def on_user_event(delivery: Delivery) -> None:
        """Who may be assigned incidents: each user's latest known activity, by the user aggregate's
        version (a late or repeated event never undoes a newer one)."""
        event = delivery.event
        active = USER_ACTIVITY.get(event.type)
        if active is None:
            return
        user_id = str(getattr(delivery.data, "user_id"))  # noqa: B009 - every user event has one
        async with service.engine.begin() as conn:
            await db.remember_member(conn, event.tenant_id, user_id, active, event.aggregate_version)


def _stale(exc: pm.StaleVersion) -> CommandFailed:
    return CommandFailed(
        ErrorCode.CONFLICT, str(exc), {"version": exc.current, "expected_version": exc.expected}
    )


def _chosen_follow_up_id(raw: str | None) -> uuid.UUID | None:
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, "follow_up_id must be a UUID") from exc


def register_postmortem_handlers(service: Service) -> None:
    """The incident's postmortem (versions of markdown, published) and its follow-up actions: state of
    the incident's, so they live with it, each change committed with its event."""

    async def publish(events: list[EventEnvelope]) -> int | None:
        return await service.relay.publish_now(events)

    @service.command("cmd.incidents.save_postmortem_draft", SavePostmortemDraft)
    async def save_draft(cmd: SavePostmortemDraft) -> PostmortemAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        async with service.engine.begin() as conn:
            await _locked_incident(conn, caller, incident_id)
            current = await db.locked_postmortem(conn, caller.tenant_id, incident_id)
            made = pm.drafted(current, str(incident_id), cmd.draft, caller.user_id, now)
            await db.save_postmortem(conn, caller.tenant_id, made.postmortem)
            event = pm.envelope(
                made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
            )
            await stage(conn, db.outbox, [event])
        return PostmortemAccepted(postmortem=made.postmortem, seq=await publish([event]))

    @service.command("cmd.incidents.edit_postmortem", EditPostmortem)
    async def edit_postmortem(cmd: EditPostmortem) -> PostmortemAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        async with service.engine.begin() as conn:
            await _locked_incident(conn, caller, incident_id)
            current = await db.locked_postmortem(conn, caller.tenant_id, incident_id)
            if current is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "the incident has no postmortem draft yet")
            try:
                made = pm.edited(current, cmd.version, cmd.markdown, caller.user_id, now)
            except pm.StaleVersion as exc:
                raise _stale(exc) from exc
            if made is None:
                return PostmortemAccepted(postmortem=current, seq=None)
            await db.save_postmortem(conn, caller.tenant_id, made.postmortem)
            event = pm.envelope(
                made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
            )
            await stage(conn, db.outbox, [event])
        return PostmortemAccepted(postmortem=made.postmortem, seq=await publish([event]))

    @service.command("cmd.incidents.publish_postmortem", PublishPostmortem)
    async def publish_postmortem(cmd: PublishPostmortem) -> PostmortemAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        async with service.engine.begin() as conn:
            await _locked_incident(conn, caller, incident_id)
            current = await db.locked_postmortem(conn, caller.tenant_id, incident_id)
            if current is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "the incident has no postmortem draft yet")
            try:
                made = pm.published(current, cmd.version, caller.user_id, now)
            except pm.StaleVersion as exc:
                raise _stale(exc) from exc
            if made is None:
                return PostmortemAccepted(postmortem=current, seq=None)
            await db.save_postmortem(conn, caller.tenant_id, made.postmortem)
            event = pm.envelope(
                made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
            )
            await stage(conn, db.outbox, [event])
        return PostmortemAccepted(postmortem=made.postmortem, seq=await publish([event]))

    @service.command("cmd.incidents.add_follow_up", AddFollowUp)
    async def add_follow_up(cmd: AddFollowUp) -> FollowUpAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        chosen = _chosen_follow_up_id(cmd.follow_up_id)
        async with service.engine.begin() as conn:
            await _locked_incident(conn, caller, incident_id)
            if chosen is not None:
                existing = await db.locked_follow_up(conn, caller.tenant_id, incident_id, chosen)
                if existing is not None:
                    # The same command again (its first answer was lost): the follow-up it made.
                    return FollowUpAccepted(follow_up=existing, seq=None)
            made = pm.new_follow_up(
                incident_id=str(incident_id),
                title=cmd.title,
                owner=cmd.owner,
                due_date=cmd.due_date,
                by=caller.user_id,
                now=now,
                follow_up_id=str(chosen) if chosen else None,
            )
            await db.save_follow_up(conn, caller.tenant_id, made.follow_up)
            event = pm.envelope(
                made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
            )
            await stage(conn, db.outbox, [event])
        return FollowUpAccepted(follow_up=made.follow_up, seq=await publish([event]))

    @service.command("cmd.incidents.update_follow_up", UpdateFollowUp)
    async def update_follow_up(cmd: UpdateFollowUp) -> FollowUpAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        try:
            follow_up_id = uuid.UUID(cmd.follow_up_id)
        except ValueError as exc:
            raise CommandFailed(ErrorCode.NOT_FOUND, "follow-up not found") from exc
        requested = cmd.model_dump(include=set(pm.FOLLOW_UP_FIELDS) & cmd.model_fields_set)
        for name in ("title", "done"):
            if name in requested and requested[name] is None:
                raise CommandFailed(ErrorCode.VALIDATION, f"{name} cannot be null")
        async with service.engine.begin() as conn:
            await _locked_incident(conn, caller, incident_id)
            current = await db.locked_follow_up(conn, caller.tenant_id, incident_id, follow_up_id)
            if current is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "follow-up not found")
            made = pm.changed_follow_up(current, requested, now)
            if made is None:
                return FollowUpAccepted(follow_up=current, seq=None)
            await db.save_follow_up(conn, caller.tenant_id, made.follow_up)
            event = pm.envelope(
                made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
            )
            await stage(conn, db.outbox, [event])
        return FollowUpAccepted(follow_up=made.follow_up, seq=await publish([event]))
