"""The projector's pure fold: incident rows after a batch, idempotent and version-guarded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.envelope import EventEnvelope
from contracts.events import (
    EventData,
    FieldChange,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
    Severity,
)
from gateway.projection import Item, fold_incidents

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
INCIDENT = str(uuid.uuid4())


TYPES: dict[type[EventData], str] = {
    IncidentCreated: "incident.created",
    IncidentStateChanged: "incident.state_changed",
    IncidentUpdated: "incident.updated",
}


def item(seq: int, data: EventData, version: int) -> Item:
    event = EventEnvelope(
        type=TYPES[type(data)],
        tenant_id="t_1",
        aggregate_id=INCIDENT,
        aggregate_version=version,
        correlation_id="c",
        data=data.model_dump(mode="json"),
    )
    return (seq, event, data)


CREATED = IncidentCreated(
    incident_id=INCIDENT,
    key="INC-7",
    number=7,
    title="Checkout errors",
    description="5xx on /pay",
    service_name="checkout",
    severity=Severity.HIGH,
    state=IncidentState.DETECTED,
    created_by="u_1",
    created_at=T0,
)


def moved(frm: IncidentState, to: IncidentState, minutes: int) -> IncidentStateChanged:
    return IncidentStateChanged(
        incident_id=INCIDENT, from_state=frm, to_state=to, changed_at=T0 + timedelta(minutes=minutes)
    )


D, A, INV, R = IncidentState


def test_creation_then_changes_fold_into_one_row() -> None:
    batch = [
        item(1, CREATED, 1),
        item(2, moved(D, INV, 5), 2),
        item(
            3,
            IncidentUpdated(
                incident_id=INCIDENT,
                changes={"severity": FieldChange(old="high", new="critical")},
                updated_at=T0 + timedelta(minutes=6),
            ),
            3,
        ),
        item(4, moved(INV, R, 30), 4),
    ]
    rows = fold_incidents({}, batch)
    row = rows[uuid.UUID(INCIDENT)]
    assert row["state"] == "resolved" and row["severity"] == "critical" and row["version"] == 4
    # Skipping `acknowledged` still ends the time to acknowledge.
    assert row["acknowledged_at"] == T0 + timedelta(minutes=5)
    assert row["resolved_at"] == T0 + timedelta(minutes=30)
    assert row["updated_at"] == T0 + timedelta(minutes=30)


def test_replaying_a_batch_over_its_result_changes_nothing() -> None:
    batch = [item(1, CREATED, 1), item(2, moved(D, A, 1), 2)]
    first = fold_incidents({}, batch)
    assert fold_incidents(first, batch) == {}
    assert fold_incidents(first, batch[1:]) == {}


def test_an_older_version_never_overwrites_a_newer_one() -> None:
    current = fold_incidents(
        {}, [item(1, CREATED, 1), item(2, moved(D, A, 1), 2), item(3, moved(A, R, 9), 3)]
    )
    late = fold_incidents(current, [item(2, moved(D, A, 1), 2)])
    assert late == {}


def test_reopening_clears_resolution_but_keeps_first_acknowledgement() -> None:
    batch = [
        item(1, CREATED, 1),
        item(2, moved(D, A, 2), 2),
        item(3, moved(A, R, 10), 3),
        item(4, moved(R, INV, 20), 4),
    ]
    row = fold_incidents({}, batch)[uuid.UUID(INCIDENT)]
    assert row["state"] == "investigating"
    assert row["resolved_at"] is None
    assert row["acknowledged_at"] == T0 + timedelta(minutes=2)


def test_changes_to_an_unknown_incident_are_left_alone() -> None:
    assert fold_incidents({}, [item(5, moved(D, A, 1), 2)]) == {}
