"""How events become read-model rows, a batch at a time.

The fold over a batch is pure (`fold_incidents`); writing is a handful of multi-row statements per
batch whatever its size, which is what lets the projector (and a rebuild) apply thousands of events
per second. Every write is idempotent: rows keyed by event id or generation are inserted once, and an
incident row is only ever replaced by a newer version of itself."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import EventEnvelope
from contracts.events import (
    CURRENT_VERSION,
    EventData,
    EvidenceCollected,
    HypothesisFeedbackRecorded,
    HypothesisGenerated,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
)
from gateway import read_models as rm
from gateway.identity import apply_identity_event

Item = tuple[int, EventEnvelope, EventData]

# What an SRE sees in an incident's timeline (evidence is shown with its hypotheses instead).
TIMELINE_TYPES = frozenset(
    {
        "incident.created",
        "incident.state_changed",
        "incident.updated",
        "incident.note_added",
        "hypothesis.generated",
        "hypothesis.feedback_recorded",
        "alert.attached",
    }
)
# Fields an incident row takes from `incident.updated`.
UPDATABLE = frozenset({"title", "description", "service_name", "severity", "assignee_id"})


def fold_incidents(
    current: dict[uuid.UUID, dict[str, Any]], items: Sequence[Item]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The incident rows the batch changes, as they stand after it. `current` holds the stored rows of
    the incidents the batch touches. A change applies only over an older version of its incident, so
    replaying a batch, or part of one, changes nothing."""
    rows = {incident_id: dict(row) for incident_id, row in current.items()}
    changed: set[uuid.UUID] = set()
    for _seq, event, data in items:
        if isinstance(data, IncidentCreated):
            incident_id = uuid.UUID(data.incident_id)
            if incident_id in rows:
                continue
            rows[incident_id] = {
                "id": incident_id,
                "tenant_id": event.tenant_id,
                "key": data.key,
                "number": data.number,
                "title": data.title,
                "description": data.description,
                "service_name": data.service_name,
                "severity": data.severity.value,
                "state": data.state.value,
                "version": event.aggregate_version,
                "created_by": data.created_by,
                "created_at": data.created_at,
                "updated_at": data.created_at,
                "acknowledged_at": None,
                "resolved_at": None,
                "assignee_id": data.assignee_id,
                "root_cause": None,
                "related_incident_id": (
                    uuid.UUID(data.related_incident_id) if data.related_incident_id else None
                ),
            }
            changed.add(incident_id)
        elif isinstance(data, IncidentStateChanged | IncidentUpdated):
            incident_id = uuid.UUID(data.incident_id)
            row = rows.get(incident_id)
            if row is None or row["version"] >= event.aggregate_version:
                continue
            if isinstance(data, IncidentStateChanged):
                row["state"], row["updated_at"] = data.to_state.value, data.changed_at
                if data.from_state is IncidentState.DETECTED and row["acknowledged_at"] is None:
                    # Time to acknowledge ends with the first move out of `detected`, whichever it is.
                    row["acknowledged_at"] = data.changed_at
                if data.to_state is IncidentState.RESOLVED:
                    row["resolved_at"] = data.changed_at
                    row["root_cause"] = data.root_cause or row["root_cause"]
                elif data.from_state is IncidentState.RESOLVED:
                    row["resolved_at"] = None
            else:
                row.update({f: c.new for f, c in data.changes.items() if f in UPDATABLE})
                row["updated_at"] = data.updated_at
            row["version"] = event.aggregate_version
            changed.add(incident_id)
    return {incident_id: rows[incident_id] for incident_id in changed}


def _incident_ids(items: Sequence[Item]) -> set[uuid.UUID]:
    return {
        uuid.UUID(data.incident_id)
        for _seq, _event, data in items
        if isinstance(data, IncidentCreated | IncidentStateChanged | IncidentUpdated)
    }


async def apply_batch(conn: AsyncConnection, items: Sequence[Item]) -> None:
    """Apply a batch of events, in stream order, inside the caller's transaction."""
    for _seq, event, data in items:
        await apply_identity_event(conn, event, data)

    touched = _incident_ids(items)
    if touched:
        stored = await conn.execute(select(rm.incidents).where(rm.incidents.c.id.in_(touched)))
        current = {row.id: dict(row._mapping) for row in stored}
        rows = fold_incidents(current, items)
        if rows:
            upsert = insert(rm.incidents)
            keep = {"id", "tenant_id", "key", "number", "created_by", "created_at"}
            upsert = upsert.on_conflict_do_update(
                index_elements=[rm.incidents.c.id],
                set_={c.name: upsert.excluded[c.name] for c in rm.incidents.columns if c.name not in keep},
                where=rm.incidents.c.version < upsert.excluded.version,
            )
            await conn.execute(upsert, list(rows.values()))

    hypotheses = [
        {
            "incident_id": uuid.UUID(data.incident_id),
            "generation": data.generation,
            "tenant_id": event.tenant_id,
            "engine": data.engine,
            "items": [h.model_dump(mode="json") for h in data.hypotheses],
            "generated_at": data.generated_at,
            "event_id": event.id,
            "trigger": data.trigger,
            "fallback_reason": data.fallback_reason,
        }
        for _seq, event, data in items
        if isinstance(data, HypothesisGenerated)
    ]
    if hypotheses:
        await conn.execute(insert(rm.hypotheses).on_conflict_do_nothing(), hypotheses)

    evidence = [
        {
            "incident_id": uuid.UUID(data.incident_id),
            "generation": data.generation,
            "tenant_id": event.tenant_id,
            "items": [item.model_dump(mode="json") for item in data.items],
            "collected_at": data.collected_at,
        }
        for _seq, event, data in items
        if isinstance(data, EvidenceCollected)
    ]
    if evidence:
        await conn.execute(insert(rm.evidence).on_conflict_do_nothing(), evidence)

    feedback = [
        {
            "event_id": event.id,
            "tenant_id": event.tenant_id,
            "incident_id": uuid.UUID(data.incident_id),
            "generation": data.generation,
            "rank": data.rank,
            "claim": data.claim,
            "engine": data.engine,
            "verdict": data.verdict.value,
            "comment": data.comment,
            "given_by": data.given_by,
            "given_at": data.given_at,
        }
        for _seq, event, data in items
        if isinstance(data, HypothesisFeedbackRecorded)
    ]
    if feedback:
        await conn.execute(insert(rm.hypothesis_feedback).on_conflict_do_nothing(), feedback)

    timeline = [
        {
            "event_id": event.id,
            "tenant_id": event.tenant_id,
            "incident_id": uuid.UUID(incident_id),
            "seq": seq,
            "kind": event.type,
            "actor": event.actor,
            "at": event.occurred_at,
            # An older version is stored as upcast, like everything else read from it.
            "data": event.data
            if event.version == CURRENT_VERSION[event.type]
            else data.model_dump(mode="json"),
        }
        for seq, event, data in items
        if event.type in TIMELINE_TYPES and (incident_id := getattr(data, "incident_id", None)) is not None
    ]
    if timeline:
        await conn.execute(insert(rm.timeline).on_conflict_do_nothing(), timeline)
