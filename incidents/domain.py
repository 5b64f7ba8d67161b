"""The incident aggregate as pure rules: which moves and edits are allowed, and the events (each
carrying the incident's snapshot after it) that a change produces. No I/O: handlers load the current
snapshot, call these, save the new snapshot and stage the event."""

from __future__ import annotations

from datetime import datetime

from contracts.envelope import EventEnvelope
from contracts.events import (
    CURRENT_VERSION,
    MODEL_TYPE,
    FieldChange,
    IncidentCreated,
    IncidentNoteAdded,
    IncidentSnapshot,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
    Severity,
)

DETECTED, ACKNOWLEDGED, INVESTIGATING, RESOLVED = IncidentState

# A move may skip forward; `resolved -> investigating` reopens. Nothing else.
ALLOWED_MOVES: dict[IncidentState, tuple[IncidentState, ...]] = {
    DETECTED: (ACKNOWLEDGED, INVESTIGATING, RESOLVED),
    ACKNOWLEDGED: (INVESTIGATING, RESOLVED),
    INVESTIGATING: (RESOLVED,),
    RESOLVED: (INVESTIGATING,),
}


class TransitionRefused(ValueError):
    def __init__(self, current: IncidentState, requested: IncidentState) -> None:
        self.current, self.requested = current, requested
        self.allowed = list(ALLOWED_MOVES[current])
        allowed = ", ".join(s.value for s in self.allowed) or "none"
        super().__init__(f"cannot move from {current.value} to {requested.value}; allowed: {allowed}")


def check_transition(current: IncidentState, requested: IncidentState) -> None:
    if requested not in ALLOWED_MOVES[current]:
        raise TransitionRefused(current, requested)


def incident_key(number: int) -> str:
    return f"INC-{number}"


EDITABLE_FIELDS = ("title", "description", "service_name", "severity", "assignee_id")


def changed_fields(
    current: dict[str, str | None], requested: dict[str, str | None]
) -> dict[str, tuple[str | None, str | None]]:
    """The requested fields whose value differs from the current one: field -> (old, new)."""
    return {
        field: (current.get(field), value)
        for field, value in requested.items()
        if field in EDITABLE_FIELDS and current.get(field) != value
    }


IncidentEvent = IncidentCreated | IncidentStateChanged | IncidentUpdated


def open_incident(
    *,
    incident_id: str,
    number: int,
    title: str,
    description: str,
    service_name: str,
    severity: Severity,
    created_by: str,
    now: datetime,
    related_incident_id: str | None = None,
    labels: dict[str, str] | None = None,
) -> IncidentCreated:
    """A new incident: detected, version 1."""
    return IncidentCreated(
        incident_id=incident_id,
        labels=dict(labels or {}),
        incident=IncidentSnapshot(
            id=incident_id,
            key=incident_key(number),
            number=number,
            title=title,
            description=description,
            service_name=service_name,
            severity=severity,
            state=IncidentState.DETECTED,
            version=1,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            related_incident_id=related_incident_id,
        ),
    )


def transition(
    current: IncidentSnapshot,
    to: IncidentState,
    *,
    note: str = "",
    root_cause: str | None = None,
    now: datetime,
) -> IncidentStateChanged:
    """Move the incident (raises TransitionRefused for a move the lifecycle does not allow)."""
    check_transition(current.state, to)
    changes: dict[str, object] = {"state": to, "version": current.version + 1, "updated_at": now}
    if current.state is DETECTED and current.acknowledged_at is None:
        # Time to acknowledge ends with the first move out of `detected`, whichever it is.
        changes["acknowledged_at"] = now
    if to is RESOLVED:
        changes["resolved_at"] = now
        if root_cause is not None:
            changes["root_cause"] = root_cause
    elif current.state is RESOLVED:
        # Reopening keeps the last root cause until a new resolution replaces it.
        changes["resolved_at"] = None
    return IncidentStateChanged(
        incident_id=current.id,
        from_state=current.state,
        to_state=to,
        note=note,
        changed_at=now,
        root_cause=root_cause,
        incident=current.model_copy(update=changes),
    )


def edit(
    current: IncidentSnapshot, requested: dict[str, str | None], now: datetime
) -> IncidentUpdated | None:
    """Change the editable fields; None when nothing would change."""
    stored = {field: _plain(getattr(current, field)) for field in EDITABLE_FIELDS}
    changes = changed_fields(stored, requested)
    if not changes:
        return None
    values: dict[str, object] = {field: new for field, (_old, new) in changes.items()}
    if "severity" in values:
        values["severity"] = Severity(str(values["severity"]))
    updated = IncidentSnapshot.model_validate(
        {**current.model_dump(), **values, "version": current.version + 1, "updated_at": now}
    )
    return IncidentUpdated(
        incident_id=current.id,
        changes={field: FieldChange(old=old, new=new) for field, (old, new) in changes.items()},
        updated_at=now,
        incident=updated,
    )


def _plain(value: object) -> str | None:
    if value is None:
        return None
    return value.value if isinstance(value, Severity) else str(value)


def incident_envelope(
    data: IncidentEvent, *, tenant_id: str, actor: str, correlation_id: str
) -> EventEnvelope:
    """The event of a change, at the version of the snapshot it carries."""
    assert data.incident is not None
    event_type = MODEL_TYPE[type(data)]
    return EventEnvelope(
        type=event_type,
        version=CURRENT_VERSION[event_type],
        tenant_id=tenant_id,
        aggregate_id=data.incident.id,
        aggregate_version=data.incident.version,
        actor=actor,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json"),
    )


def note_envelope(
    current: IncidentSnapshot,
    note_id: str,
    body: str,
    now: datetime,
    *,
    tenant_id: str,
    actor: str,
    correlation_id: str,
) -> EventEnvelope:
    """A note on the incident's timeline. It changes none of the incident's fields, so it carries the
    version the incident has (and no snapshot)."""
    return EventEnvelope(
        type="incident.note_added",
        tenant_id=tenant_id,
        aggregate_id=current.id,
        aggregate_version=current.version,
        actor=actor,
        correlation_id=correlation_id,
        data=IncidentNoteAdded(incident_id=current.id, note_id=note_id, body=body, added_at=now).model_dump(
            mode="json"
        ),
    )
