"""incidents' commands on the bus: create and transition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from contracts.commands import (
    Caller,
    CommandFailed,
    CreateIncident,
    ErrorCode,
    IncidentAccepted,
    IncidentSnapshot,
    TransitionIncident,
)
from contracts.envelope import EventEnvelope
from contracts.events import IncidentCreated, IncidentState, IncidentStateChanged, Role, Severity
from incidents import db
from incidents.domain import TransitionRefused, check_transition, incident_key
from runtime.outbox import stage
from runtime.service import Service


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
    )


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found") from exc


def register_handlers(service: Service) -> None:
    @service.command("cmd.incidents.create", CreateIncident)
    async def create(cmd: CreateIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = uuid.uuid4(), datetime.now(UTC)
        async with service.engine.begin() as conn:
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
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return IncidentAccepted(incident=snapshot, seq=await service.relay.publish_now([event]))

    @service.command("cmd.incidents.transition", TransitionIncident)
    async def transition(cmd: TransitionIncident) -> IncidentAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id, now = _parse_id(cmd.incident_id), datetime.now(UTC)
        async with service.engine.begin() as conn:
            current = (
                await conn.execute(
                    select(db.incidents)
                    .where(db.incidents.c.id == incident_id, db.incidents.c.tenant_id == caller.tenant_id)
                    .with_for_update()
                )
            ).first()
            if current is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
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
                    .values(state=cmd.to.value, version=version, updated_at=now)
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
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [event])
        return IncidentAccepted(incident=_snapshot(row), seq=await service.relay.publish_now([event]))
