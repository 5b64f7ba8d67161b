"""How events become read-model rows, a batch at a time.

The fold over a batch is pure (`fold_incidents`); writing is one statement per table per batch
whatever its size, which is what lets the projector (and a rebuild) apply tens of thousands of
events per second. Every write is idempotent: rows keyed by event id or generation are inserted once, and an
incident row is only ever replaced by a newer version of itself."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from pydantic import TypeAdapter
from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import EventEnvelope
from contracts.events import (
    CURRENT_VERSION,
    EventData,
    EvidenceCollected,
    EvidenceItem,
    FollowUpAdded,
    FollowUpUpdated,
    Hypothesis,
    HypothesisFeedbackRecorded,
    HypothesisGenerated,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
    PostmortemDrafted,
    PostmortemEdited,
    PostmortemPublished,
)
from gateway.auth.identity import IDENTITY_TYPES, apply_identity_event
from gateway.projection import tables

log = structlog.get_logger(__name__)

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
        "alert.correlated",
        # On-call: each step, each notification and its result, the acknowledgement, the end.
        "escalation.started",
        "escalation.step_reached",
        "escalation.stopped",
        "page.notified",
        "page.acknowledged",
    }
)
# Fields an incident row takes from a legacy (v1, snapshot-less) `incident.updated`.
UPDATABLE = frozenset({"title", "description", "service_name", "severity", "assignee_id"})
INCIDENT_COLUMNS = tuple(c.name for c in tables.incidents.columns)
IncidentEvent = IncidentCreated | IncidentStateChanged | IncidentUpdated


def fold_incidents(
    current: dict[uuid.UUID, dict[str, Any]], items: Sequence[Item]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The incident rows the batch changes, as they stand after it. `current` holds the stored rows of
    the incidents the batch touches. Each event carries the incident's snapshot after its change; a
    snapshot replaces the row only when its version is newer, so the result is the same whatever
    order one incident's events come in, and replaying a batch, or part of one, changes nothing. An
    event naming another tenant's incident is ignored."""
    rows = {incident_id: dict(row) for incident_id, row in current.items()}
    changed: set[uuid.UUID] = set()
    for _seq, event, data in items:
        if not isinstance(data, IncidentEvent):
            continue
        incident_id = uuid.UUID(data.incident_id)
        row = rows.get(incident_id)
        if row is not None and row["tenant_id"] != event.tenant_id:
            log.warning(
                "incident_event_of_another_tenant", incident_id=str(incident_id), event_id=str(event.id)
            )
            continue
        snapshot = data.incident
        if snapshot is not None:
            if snapshot.id != data.incident_id or (row is not None and row["version"] >= snapshot.version):
                continue
            values = snapshot.row(event.tenant_id)
            rows[incident_id] = {name: values[name] for name in INCIDENT_COLUMNS}
            changed.add(incident_id)
        elif row is not None and row["version"] < event.aggregate_version:
            _apply_legacy_change(row, data)
            row["version"] = event.aggregate_version
            changed.add(incident_id)
    return {incident_id: rows[incident_id] for incident_id in changed}


def _apply_legacy_change(row: dict[str, Any], data: IncidentEvent) -> None:
    """History written before snapshots: its changes apply over the version before them."""
    if isinstance(data, IncidentStateChanged):
        row["state"], row["updated_at"] = data.to_state.value, data.changed_at
        if data.from_state is IncidentState.DETECTED and row["acknowledged_at"] is None:
            row["acknowledged_at"] = data.changed_at
        if data.to_state is IncidentState.RESOLVED:
            row["resolved_at"] = data.changed_at
            row["root_cause"] = data.root_cause or row["root_cause"]
        elif data.from_state is IncidentState.RESOLVED:
            row["resolved_at"] = None
    elif isinstance(data, IncidentUpdated):
        row.update({f: c.new for f, c in data.changes.items() if f in UPDATABLE})
        row["updated_at"] = data.updated_at


def _incident_ids(items: Sequence[Item]) -> set[uuid.UUID]:
    return {uuid.UUID(data.incident_id) for _seq, _event, data in items if isinstance(data, IncidentEvent)}


_HYPOTHESES: TypeAdapter[list[Hypothesis]] = TypeAdapter(list[Hypothesis])
_EVIDENCE: TypeAdapter[list[EvidenceItem]] = TypeAdapter(list[EvidenceItem])


def _json(value: Any) -> str:
    return to_json(value).decode()


def _table_name(conn: AsyncConnection, table: Table) -> str:
    """The table's name as this connection sees it: a rebuild redirects the schema."""
    assert conn.sync_connection is not None
    translate = conn.sync_connection.get_execution_options().get("schema_translate_map") or {}
    return f'"{translate.get(table.schema, table.schema)}"."{table.name}"'


async def _insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], conflict: str) -> None:
    """All rows in one statement: each column travels as one array parameter and PostgreSQL unnests
    them, which costs a fraction of a statement per row (JSONB columns travel as JSON text)."""
    columns = list(table.columns)
    casts = [
        "text[]::jsonb[]" if isinstance(c.type, JSONB) else f"{c.type.compile(conn.dialect)}[]"
        for c in columns
    ]
    names = ", ".join(f'"{c.name}"' for c in columns)
    arrays = ", ".join(f"${n}::{cast}" for n, cast in enumerate(casts, start=1))
    statement = f"INSERT INTO {_table_name(conn, table)} ({names}) SELECT * FROM unnest({arrays}) {conflict}"
    await conn.exec_driver_sql(statement, tuple([row[c.name] for row in rows] for c in columns))


async def _stored_incidents(conn: AsyncConnection, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    result = await conn.exec_driver_sql(
        f"SELECT * FROM {_table_name(conn, tables.incidents)} WHERE id = any($1::uuid[])", (list(ids),)
    )
    names = list(result.keys())
    return {row[0]: dict(zip(names, row, strict=True)) for row in result}


_KEEP = ("id", "tenant_id", "key", "number", "created_by", "created_at")
_INCIDENT_UPSERT = (
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f'"{c.name}" = excluded."{c.name}"' for c in tables.incidents.columns if c.name not in _KEEP)
    + ' WHERE {table}."version" < excluded."version" AND {table}."tenant_id" = excluded."tenant_id"'
)


def _rows(items: Sequence[Item]) -> dict[Table, list[dict[str, Any]]]:
    """The rows a batch adds to the tables that only ever gain rows, in one pass over it."""
    hypotheses: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for seq, event, data in items:
        kind = event.type
        if kind in TIMELINE_TYPES and (incident_id := getattr(data, "incident_id", None)) is not None:
            timeline.append(
                {
                    "event_id": event.id,
                    "tenant_id": event.tenant_id,
                    "incident_id": incident_id,
                    "seq": seq,
                    "kind": kind,
                    "actor": event.actor,
                    "at": event.occurred_at,
                    # An older version is stored as upcast, like everything else read from it.
                    "data": _json(event.data)
                    if event.version == CURRENT_VERSION[kind]
                    else data.model_dump_json(),
                }
            )
        if isinstance(data, HypothesisGenerated):
            hypotheses.append(
                {
                    "incident_id": data.incident_id,
                    "generation": data.generation,
                    "tenant_id": event.tenant_id,
                    "engine": data.engine,
                    "items": _HYPOTHESES.dump_json(data.hypotheses).decode(),
                    "generated_at": data.generated_at,
                    "event_id": event.id,
                    "trigger": data.trigger,
                    "fallback_reason": data.fallback_reason,
                }
            )
        elif isinstance(data, EvidenceCollected):
            evidence.append(
                {
                    "incident_id": data.incident_id,
                    "generation": data.generation,
                    "tenant_id": event.tenant_id,
                    "items": _EVIDENCE.dump_json(data.items).decode(),
                    "collected_at": data.collected_at,
                }
            )
        elif isinstance(data, HypothesisFeedbackRecorded):
            feedback.append(
                {
                    "event_id": event.id,
                    "tenant_id": event.tenant_id,
                    "incident_id": data.incident_id,
                    "generation": data.generation,
                    "rank": data.rank,
                    "claim": data.claim,
                    "engine": data.engine,
                    "verdict": data.verdict.value,
                    "comment": data.comment,
                    "given_by": data.given_by,
                    "given_at": data.given_at,
                }
            )
    return {
        tables.hypotheses: hypotheses,
        tables.evidence: evidence,
        tables.hypothesis_feedback: feedback,
        tables.timeline: timeline,
    }


def _latest_versions(items: Sequence[Item]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Postmortem and follow-up rows of a batch: each its highest version in it (the upsert then keeps
    the stored row when it is newer, so arrival order does not matter)."""
    postmortems: dict[tuple[str, str], dict[str, Any]] = {}
    follow_ups: dict[str, dict[str, Any]] = {}
    for _seq, event, data in items:
        if isinstance(data, PostmortemDrafted | PostmortemEdited | PostmortemPublished):
            p = data.postmortem
            if p.incident_id != data.incident_id:
                continue
            key = (event.tenant_id, p.incident_id)
            if key in postmortems and postmortems[key]["version"] >= p.version:
                continue
            postmortems[key] = {
                "tenant_id": event.tenant_id,
                "incident_id": uuid.UUID(p.incident_id),
                "version": p.version,
                "status": p.status.value,
                "markdown": p.markdown,
                "citations": _json([c.model_dump() for c in p.citations]),
                "engine": p.engine,
                "fallback_reason": p.fallback_reason,
                "updated_by": p.updated_by,
                "updated_at": p.updated_at,
                "published_at": p.published_at,
                "published_version": p.published_version,
            }
        elif isinstance(data, FollowUpAdded | FollowUpUpdated):
            f = data.follow_up
            if f.id in follow_ups and follow_ups[f.id]["version"] >= f.version:
                continue
            follow_ups[f.id] = {
                **f.model_dump(),
                "id": uuid.UUID(f.id),
                "incident_id": uuid.UUID(f.incident_id),
                "tenant_id": event.tenant_id,
            }
    return list(postmortems.values()), list(follow_ups.values())


def _newer(table: Table, key: str) -> str:
    """Replace a row by a newer version of itself, of the same tenant, only."""
    columns = [c.name for c in table.columns if c.name not in {"tenant_id", "incident_id", "id"}]
    return (
        f"ON CONFLICT ({key}) DO UPDATE SET "
        + ", ".join(f'"{c}" = excluded."{c}"' for c in columns)
        + ' WHERE {table}."version" < excluded."version" AND {table}."tenant_id" = excluded."tenant_id"'
    )


_POSTMORTEM_UPSERT = _newer(tables.postmortems, "tenant_id, incident_id")
_FOLLOW_UP_UPSERT = _newer(tables.follow_ups, "id")


async def apply_batch(conn: AsyncConnection, items: Sequence[Item]) -> None:
    """Apply a batch of events, in stream order, inside the caller's transaction."""
    for _seq, event, data in items:
        if event.type in IDENTITY_TYPES:
            await apply_identity_event(conn, event, data)

    touched = _incident_ids(items)
    if touched:
        rows = fold_incidents(await _stored_incidents(conn, touched), items)
        if rows:
            upsert = _INCIDENT_UPSERT.format(table=_table_name(conn, tables.incidents))
            await _insert(conn, tables.incidents, list(rows.values()), upsert)

    postmortems, follow_ups = _latest_versions(items)
    if postmortems:
        upsert = _POSTMORTEM_UPSERT.format(table=_table_name(conn, tables.postmortems))
        await _insert(conn, tables.postmortems, postmortems, upsert)
    if follow_ups:
        upsert = _FOLLOW_UP_UPSERT.format(table=_table_name(conn, tables.follow_ups))
        await _insert(conn, tables.follow_ups, follow_ups, upsert)

    # Rows keyed by event id or generation are written once; a replay of them changes nothing.
    for table, added in _rows(items).items():
        if added:
            await _insert(conn, table, added, "ON CONFLICT DO NOTHING")
