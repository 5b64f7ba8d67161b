"""incidents' commands on the bus (create, transition, update, note) and its directory of users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import (
    AddNote,
    Caller,
    CommandFailed,
    CreateIncident,
    ErrorCode,
    IncidentAccepted,
    IncidentSnapshot,
    TransitionIncident,
    UpdateIncident,
)
from contracts.envelope import EventEnvelope
from contracts.events import (
    FieldChange,
    IncidentCreated,
    IncidentNoteAdded,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
    Role,
    Severity,
)
from contracts.subjects import EVENTS_STREAM, INCIDENTS_DIRECTORY, events_of_type
from incidents import db
from incidents.domain import (
    EDITABLE_FIELDS,
    TransitionRefused,
    changed_fields,
    check_transition,
    incident_key,
)
from runtime.consumer import MAX_DELIVER, dead_letter, give_up_or_retry, through_outages
from runtime.observe import consuming
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


def _snapshot(row: Row) -> IncidentSnapshot:  # type: ignore[type-arg]
    return IncidentSnapshot(
        id=str(row.id),
        key=incident_key(row.number),
        number=row.number,
        title=row.title,
        description=row.description,
        service_name=row.service_name,
        severity=Severity(row.severity),
        state=IncidentState(row.state),
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        assignee_id=row.assignee_id,
        root_cause=row.root_cause,
        related_incident_id=str(row.related_incident_id) if row.related_incident_id else None,
    )


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found") from exc


async def _locked_incident(conn: AsyncConnection, caller: Caller, incident_id: uuid.UUID) -> Row:  # type: ignore[type-arg]
    """The caller's incident, locked for this transaction; another tenant's is not found."""
    row = (
        await conn.execute(
            select(db.incidents)
            .where(db.incidents.c.id == incident_id, db.incidents.c.tenant_id == caller.tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
    return row


async def _check_assignee(conn: AsyncConnection, tenant_id: str, user_id: str) -> None:
    member = (
        await conn.execute(
            select(db.directory.c.active).where(
                db.directory.c.user_id == user_id, db.directory.c.tenant_id == tenant_id
            )
        )
    ).first()
    if member is None or not member.active:
        raise CommandFailed(
            ErrorCode.VALIDATION,
            "the assignee must be an active user of your organisation",
            [{"loc": ["body", "assignee_id"], "msg": "unknown or inactive user", "type": "value_error"}],
        )


def _chosen_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, "incident_id must be a UUID") from exc


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
                    return IncidentAccepted(incident=_snapshot(existing), seq=None)
            if related_id is not None:
                await _check_related(conn, caller.tenant_id, related_id)
            number = await db.next_incident_number(conn, caller.tenant_id)
            row = (
                await conn.execute(
                    db.incidents.insert()
                    .values(
                        id=incident_id,
                        tenant_id=caller.tenant_id,
                        number=number,
                        title=cmd.title,
                        description=cmd.description,
                        service_name=cmd.service_name,
                        severity=cmd.severity.value,
                        state=IncidentState.DETECTED.value,
                        version=1,
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                        related_incident_id=related_id,
                    )
                    .returning(db.incidents)
                )
            ).one()
            snapshot = _snapshot(row)
            event = EventEnvelope(
                type="incident.created",
                tenant_id=caller.tenant_id,
                aggregate_id=snapshot.id,
                aggregate_version=1,
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=IncidentCreated(
                    incident_id=snapshot.id,
                    key=snapshot.key,
                    number=number,
                    title=snapshot.title,
                    description=snapshot.description,
                    service_name=snapshot.service_name,
                    severity=snapshot.severity,
                    state=snapshot.state,
                    created_by=caller.user_id,
                    created_at=now,
                    related_incident_id=snapshot.related_incident_id,
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return IncidentAccepted(incident=snapshot, seq=await service.relay.publish_now([event]))

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
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
            from_state = IncidentState(current.state)
            try:
                check_transition(from_state, cmd.to)
            except TransitionRefused as exc:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    str(exc),
                    {"state": from_state.value, "allowed": [s.value for s in exc.allowed]},
                ) from exc
            version = current.version + 1
            row = (
                await conn.execute(
                    update(db.incidents)
                    .where(db.incidents.c.id == incident_id, db.incidents.c.version == current.version)
                    .values(
                        state=cmd.to.value,
                        version=version,
                        updated_at=now,
                        # Reopening keeps the last root cause until a new resolution replaces it.
                        root_cause=cmd.root_cause if cmd.root_cause is not None else current.root_cause,
                    )
                    .returning(db.incidents)
                )
            ).one()
            await conn.execute(
                db.transitions.insert().values(
                    id=uuid.uuid4(),
                    incident_id=incident_id,
                    tenant_id=caller.tenant_id,
                    from_state=from_state.value,
                    to_state=cmd.to.value,
                    note=cmd.note,
                    actor=caller.user_id,
                    at=now,
                )
            )
            event = EventEnvelope(
                type="incident.state_changed",
                tenant_id=caller.tenant_id,
                aggregate_id=str(incident_id),
                aggregate_version=version,
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=IncidentStateChanged(
                    incident_id=str(incident_id),
                    from_state=from_state,
                    to_state=cmd.to,
                    note=cmd.note,
                    changed_at=now,
                    root_cause=cmd.root_cause,
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return IncidentAccepted(incident=_snapshot(row), seq=await service.relay.publish_now([event]))

    @service.command("cmd.incidents.update", UpdateIncident)
    async def update_incident(cmd: UpdateIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        requested = cmd.model_dump(
            mode="json", include=set(EDITABLE_FIELDS) & cmd.model_fields_set, exclude_none=False
        )
        for field in ("title", "service_name", "severity", "description"):
            if field in requested and requested[field] is None:
                raise CommandFailed(ErrorCode.VALIDATION, f"{field} cannot be null")
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
            if cmd.expected_version is not None and cmd.expected_version != current.version:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    "the incident changed since you read it",
                    {"version": current.version, "expected_version": cmd.expected_version},
                )
            changes = changed_fields({f: getattr(current, f) for f in EDITABLE_FIELDS}, requested)
            if not changes:
                return IncidentAccepted(incident=_snapshot(current), seq=None)
            if changes.get("assignee_id", (None, None))[1] is not None:
                await _check_assignee(conn, caller.tenant_id, str(requested["assignee_id"]))
            version = current.version + 1
            row = (
                await conn.execute(
                    update(db.incidents)
                    .where(db.incidents.c.id == incident_id, db.incidents.c.version == current.version)
                    .values(**{f: new for f, (_old, new) in changes.items()}, version=version, updated_at=now)
                    .returning(db.incidents)
                )
            ).one()
            event = EventEnvelope(
                type="incident.updated",
                tenant_id=caller.tenant_id,
                aggregate_id=str(incident_id),
                aggregate_version=version,
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=IncidentUpdated(
                    incident_id=str(incident_id),
                    changes={f: FieldChange(old=old, new=new) for f, (old, new) in changes.items()},
                    updated_at=now,
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return IncidentAccepted(incident=_snapshot(row), seq=await service.relay.publish_now([event]))

    @service.command("cmd.incidents.add_note", AddNote)
    async def add_note(cmd: AddNote) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now, note_id = _parse_id(cmd.incident_id), datetime.now(UTC), uuid.uuid4()
        async with service.engine.begin() as conn:
            current = await _locked_incident(conn, caller, incident_id)
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
        return IncidentAccepted(incident=_snapshot(current), seq=await service.relay.publish_now([event]))

    @service.broker.subscriber(
        events_of_type("user.>"),
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=INCIDENTS_DIRECTORY,
        config=ConsumerConfig(
            durable_name=INCIDENTS_DIRECTORY,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=MAX_DELIVER + 1,
        ),
        pull_sub=PullSub(batch_size=64, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_user_event(body: Any, msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            event = EventEnvelope.from_bytes(raw.data)
            user_id = str(event.data["user_id"])
        except (ValidationError, ValueError, KeyError) as exc:
            await dead_letter(service.js, INCIDENTS_DIRECTORY, raw, exc)
            return
        active = USER_ACTIVITY.get(event.type)

        async def remember() -> None:
            if active is None:
                return
            seq = raw.metadata.sequence.stream
            statement = insert(db.directory).values(
                user_id=user_id, tenant_id=event.tenant_id, active=active, last_seq=seq
            )
            async with service.engine.begin() as conn:
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=[db.directory.c.user_id],
                        set_={"active": statement.excluded.active, "last_seq": statement.excluded.last_seq},
                        where=db.directory.c.last_seq < statement.excluded.last_seq,
                    )
                )

        try:
            with consuming(INCIDENTS_DIRECTORY, event, raw.headers):
                await through_outages([raw], remember, INCIDENTS_DIRECTORY)
            await raw.ack()
        except Exception as exc:
            await give_up_or_retry(service.js, INCIDENTS_DIRECTORY, raw, exc)
