"""incidents' commands for an incident's postmortem (versions of markdown, published) and its
follow-up actions: state of the incident's, so they live with it, each change committed with its
event. The rules are in postmortems.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from contracts.commands import (
    AddFollowUp,
    CommandFailed,
    EditPostmortem,
    ErrorCode,
    FollowUpAccepted,
    PostmortemAccepted,
    PublishPostmortem,
    SavePostmortemDraft,
    UpdateFollowUp,
)
from contracts.events import PostmortemEdited, PostmortemPublished, PostmortemSnapshot
from incidents import db
from incidents import postmortems as pm
from incidents.guards import locked_incident, require_responder
from runtime.command_args import object_id, optional_chosen_id
from runtime.outbox import stage
from runtime.service import Service


def _stale(exc: pm.StaleVersion) -> CommandFailed:
    return CommandFailed(
        ErrorCode.CONFLICT, str(exc), {"version": exc.current, "expected_version": exc.expected}
    )


async def save_draft(service: Service, cmd: SavePostmortemDraft) -> PostmortemAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    async with service.engine.begin() as conn:
        await locked_incident(conn, caller, incident_id)
        current = await db.locked_postmortem(conn, caller.tenant_id, incident_id)
        made = pm.drafted(current, str(incident_id), cmd.draft, caller.user_id, now)
        await db.save_postmortem(conn, caller.tenant_id, made.postmortem)
        event = pm.envelope(
            made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
        )
        await stage(conn, db.outbox, [event])
    return PostmortemAccepted(postmortem=made.postmortem, seq=await service.relay.publish_now([event]))


async def changed_draft(
    service: Service,
    cmd: EditPostmortem | PublishPostmortem,
    change: Callable[[PostmortemSnapshot, datetime], PostmortemEdited | PostmortemPublished | None],
) -> PostmortemAccepted:
    """An existing draft changed (edited or published) at the version the caller read, with its event;
    the same change again changes nothing."""
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    async with service.engine.begin() as conn:
        await locked_incident(conn, caller, incident_id)
        current = await db.locked_postmortem(conn, caller.tenant_id, incident_id)
        if current is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "the incident has no postmortem draft yet")
        try:
            made = change(current, now)
        except pm.StaleVersion as exc:
            raise _stale(exc) from exc
        if made is None:
            return PostmortemAccepted(postmortem=current, seq=None)
        await db.save_postmortem(conn, caller.tenant_id, made.postmortem)
        event = pm.envelope(
            made, tenant_id=caller.tenant_id, actor=caller.user_id, correlation_id=cmd.correlation_id
        )
        await stage(conn, db.outbox, [event])
    return PostmortemAccepted(postmortem=made.postmortem, seq=await service.relay.publish_now([event]))


async def edit_postmortem(service: Service, cmd: EditPostmortem) -> PostmortemAccepted:
    def change(current: PostmortemSnapshot, now: datetime) -> PostmortemEdited | None:
        return pm.edited(current, cmd.version, cmd.markdown, cmd.caller.user_id, now)

    return await changed_draft(service, cmd, change)


async def publish_postmortem(service: Service, cmd: PublishPostmortem) -> PostmortemAccepted:
    return await changed_draft(
        service, cmd, lambda current, now: pm.published(current, cmd.version, cmd.caller.user_id, now)
    )


async def add_follow_up(service: Service, cmd: AddFollowUp) -> FollowUpAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    chosen = optional_chosen_id(cmd.follow_up_id, "follow_up_id")
    async with service.engine.begin() as conn:
        await locked_incident(conn, caller, incident_id)
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
    return FollowUpAccepted(follow_up=made.follow_up, seq=await service.relay.publish_now([event]))


async def update_follow_up(service: Service, cmd: UpdateFollowUp) -> FollowUpAccepted:
    caller = cmd.caller
    require_responder(caller)
    incident_id, now = object_id(cmd.incident_id, "incident"), datetime.now(UTC)
    follow_up_id = object_id(cmd.follow_up_id, "follow-up")
    requested = cmd.model_dump(include=set(pm.FOLLOW_UP_FIELDS) & cmd.model_fields_set)
    for name in ("title", "done"):
        if name in requested and requested[name] is None:
            raise CommandFailed(ErrorCode.VALIDATION, f"{name} cannot be null")
    async with service.engine.begin() as conn:
        await locked_incident(conn, caller, incident_id)
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
    return FollowUpAccepted(follow_up=made.follow_up, seq=await service.relay.publish_now([event]))


def register_postmortem_handlers(service: Service) -> None:
    for model, handler in (
        (SavePostmortemDraft, save_draft),
        (EditPostmortem, edit_postmortem),
        (PublishPostmortem, publish_postmortem),
        (AddFollowUp, add_follow_up),
        (UpdateFollowUp, update_follow_up),
    ):
        service.handles(model)(partial(handler, service))
