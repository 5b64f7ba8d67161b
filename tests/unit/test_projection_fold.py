"""The projector's pure fold: incident rows after a batch. Events are made by the incidents service's
own domain rules, so each carries the incident's snapshot; the fold converges to the same rows
whatever order one incident's events arrive in (checked on generated histories), and history
written before snapshots (v1) still folds as it did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelope import EventEnvelope
from contracts.events import IncidentState, Severity, payload_of
from gateway.projection.apply import Item, fold_incidents
from tests.events import created, edited, incident_history, moved, snapshot_of

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TENANT = "t_1"
D, A, INV, R = IncidentState


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def items(*events: EventEnvelope) -> list[Item]:
    return [(seq, event, payload_of(event)) for seq, event in enumerate(events, start=1)]


def history() -> list[EventEnvelope]:
    first = created(TENANT, title="Checkout errors", service_name="checkout", severity=Severity.HIGH, now=T0)
    investigating = moved(first, INV, now=at(5))
    critical = edited(investigating, severity="critical", now=at(6))
    resolved = moved(critical, R, root_cause="a bad deploy", now=at(30))
    return [first, investigating, critical, resolved]


def test_creation_then_changes_fold_into_one_row() -> None:
    events = history()
    row = fold_incidents({}, items(*events))[uuid.UUID(events[0].aggregate_id)]
    assert row["state"] == "resolved" and row["severity"] == "critical" and row["version"] == 4
    # Skipping `acknowledged` still ends the time to acknowledge.
    assert row["acknowledged_at"] == at(5)
    assert row["resolved_at"] == at(30) == row["updated_at"]
    assert row["root_cause"] == "a bad deploy"
    assert row["tenant_id"] == TENANT and row["key"] == "INC-900"


def test_replaying_a_batch_over_its_result_changes_nothing() -> None:
    batch = items(*history()[:2])
    first = fold_incidents({}, batch)
    assert fold_incidents(first, batch) == {}
    assert fold_incidents(first, batch[1:]) == {}


def test_an_older_version_never_overwrites_a_newer_one() -> None:
    events = history()
    current = fold_incidents({}, items(*events))
    assert fold_incidents(current, items(events[1])) == {}


def test_a_change_that_arrives_before_the_creation_is_not_lost() -> None:
    """The bug this replaces: a late `incident.created` (or an update reaching the gateway before
    it) was dropped; now each event carries the whole incident."""
    events = history()
    early = fold_incidents({}, items(events[2]))
    row = early[uuid.UUID(events[0].aggregate_id)]
    assert row["severity"] == "critical" and row["version"] == 3
    later = fold_incidents(early, items(events[0], events[3], events[1]))
    assert later[uuid.UUID(events[0].aggregate_id)]["state"] == "resolved"


def test_an_older_update_arriving_late_is_not_dropped_by_a_newer_one() -> None:
    """Two edits of different fields: in the old fold the older one, arriving second, was dropped
    (`changes` carried only its own field) and with it the title change."""
    first = created(TENANT, now=T0)
    retitled = edited(first, title="Orders API pool exhausted", now=at(1))
    reassigned = edited(retitled, assignee_id="u_2", now=at(2))
    rows = fold_incidents({}, items(first, reassigned, retitled))
    row = rows[uuid.UUID(first.aggregate_id)]
    assert row["title"] == "Orders API pool exhausted" and row["assignee_id"] == "u_2"


def test_reopening_clears_resolution_but_keeps_first_acknowledgement() -> None:
    first = created(TENANT, now=T0)
    acked = moved(first, A, now=at(2))
    resolved = moved(acked, R, root_cause="disk full", now=at(10))
    reopened = moved(resolved, INV, now=at(20))
    row = fold_incidents({}, items(first, acked, resolved, reopened))[uuid.UUID(first.aggregate_id)]
    assert row["state"] == "investigating"
    assert row["resolved_at"] is None
    assert row["acknowledged_at"] == at(2)
    assert row["root_cause"] == "disk full"  # kept until a new resolution replaces it


def test_an_event_naming_another_tenants_incident_changes_nothing() -> None:
    first = created(TENANT, now=T0)
    current = fold_incidents({}, items(first))
    forged = moved(first, R, now=at(1)).model_copy(update={"tenant_id": "t_intruder"})
    assert fold_incidents(current, items(forged)) == {}


# ---- history written before snapshots (v1): upcast without one, folded as a change


def v1(event_type: str, version: int, data: dict[str, Any], incident_id: str) -> EventEnvelope:
    return EventEnvelope(
        type=event_type,
        version=1,
        tenant_id=TENANT,
        aggregate_id=incident_id,
        aggregate_version=version,
        correlation_id="c",
        data=data,
    )


def test_v1_history_still_folds_in_stream_order() -> None:
    incident_id = str(uuid.uuid4())
    old = [
        v1(
            "incident.created",
            1,
            {
                "incident_id": incident_id,
                "key": "INC-7",
                "number": 7,
                "title": "Checkout errors",
                "description": "5xx on /pay",
                "service_name": "checkout",
                "severity": "high",
                "state": "detected",
                "created_by": "u_1",
                "created_at": T0.isoformat(),
            },
            incident_id,
        ),
        v1(
            "incident.state_changed",
            2,
            {
                "incident_id": incident_id,
                "from_state": "detected",
                "to_state": "resolved",
                "changed_at": at(9).isoformat(),
                "root_cause": "cert expired",
            },
            incident_id,
        ),
        v1(
            "incident.updated",
            3,
            {
                "incident_id": incident_id,
                "changes": {"title": {"old": "Checkout errors", "new": "TLS errors"}},
                "updated_at": at(10).isoformat(),
            },
            incident_id,
        ),
    ]
    row = fold_incidents({}, items(*old))[uuid.UUID(incident_id)]
    assert (row["state"], row["title"], row["version"]) == ("resolved", "TLS errors", 3)
    assert row["acknowledged_at"] == row["resolved_at"] == at(9)
    assert row["root_cause"] == "cert expired"


# ---- every order of one incident's events gives the same rows


def project(batches: list[list[Item]]) -> dict[uuid.UUID, dict[str, Any]]:
    """What the projector stores: each batch folded over the rows it touches, kept when newer."""
    stored: dict[uuid.UUID, dict[str, Any]] = {}
    for batch in batches:
        stored.update(fold_incidents(stored, batch))
    return stored


@settings(max_examples=200, deadline=None)
@given(
    histories=st.lists(incident_history(TENANT), min_size=1, max_size=4),
    shuffle=st.randoms(use_true_random=False),
    batch_size=st.integers(1, 8),
    duplicates=st.integers(0, 3),
)
def test_any_arrival_order_converges_to_the_in_order_rows(
    histories: list[list[EventEnvelope]], shuffle: Any, batch_size: int, duplicates: int
) -> None:
    in_order = [event for events in histories for event in events]
    expected = project([items(*in_order)])
    # The incidents table's state: every incident's last snapshot.
    assert {i: r["version"] for i, r in expected.items()} == {
        uuid.UUID(h[-1].aggregate_id): snapshot_of(h[-1]).version for h in histories
    }
    arrived = list(in_order) + [shuffle.choice(in_order) for _ in range(duplicates)]  # redeliveries
    shuffle.shuffle(arrived)
    feed = items(*arrived)
    batches = [feed[n : n + batch_size] for n in range(0, len(feed), batch_size)]
    assert project(batches) == expected
    for events in histories:
        last = snapshot_of(events[-1])
        row = expected[uuid.UUID(last.id)]
        assert {k: row[k] for k in last.row(TENANT) if k in row} == {
            k: v for k, v in last.row(TENANT).items() if k in row
        }
