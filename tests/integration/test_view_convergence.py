"""Every view of an incident (the gateway's read model, the AI worker's and integrations' views),
through each one's own apply code against the real database, ends with the incident's last snapshot
whatever order (and however often) its events arrive."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_worker.handlers import apply_incident_event
from contracts.envelope import EventEnvelope
from contracts.events import IncidentStateChanged, payload_of
from gateway.projection.apply import apply_batch
from integrations.outbound import apply_to_view
from tests.events import incident_history, snapshot_of

TENANT = "t_convergence"


@dataclass
class EngineOnly:
    """What ai_worker's view code uses of its service."""

    engine: AsyncEngine

    @property
    def single_statements(self) -> AsyncEngine:
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")


async def apply_everywhere(engine: AsyncEngine, seq: int, event: EventEnvelope) -> None:
    data = payload_of(event)
    async with engine.begin() as conn:
        await apply_batch(conn, [(seq, event, data)])
        await apply_to_view(conn, event, data)
    await apply_incident_event(EngineOnly(engine), event, data)  # type: ignore[arg-type]


async def stored(engine: AsyncEngine, table: str, incident_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(text(f"SELECT * FROM {table} WHERE id = :i"), {"i": incident_id})).one()
    return dict(row._mapping)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=incident_history(TENANT), order=st.randoms(use_true_random=False))
async def test_every_view_converges_whatever_the_arrival_order(
    engine: AsyncEngine, events: list[EventEnvelope], order: random.Random
) -> None:
    # A fresh incident id for each example, so examples never meet in the views.
    incident_id = str(uuid.uuid4())
    renamed = [
        e.model_copy(
            update={
                "aggregate_id": incident_id,
                "data": {
                    **e.data,
                    "incident_id": incident_id,
                    "incident": {**e.data["incident"], "id": incident_id},
                },
            }
        )
        for e in events
    ]
    arrived = renamed + [order.choice(renamed) for _ in range(2)]
    order.shuffle(arrived)
    for seq, event in enumerate(arrived, start=1):
        await apply_everywhere(engine, 50_000_000 + seq, event)

    last = snapshot_of(renamed[-1])
    expected = last.row(TENANT)
    for table in ("gateway.incidents", "ai_worker.known_incidents", "integrations.known_incidents"):
        row = await stored(engine, table, incident_id)
        assert {k: row[k] for k in row if k in expected} == {k: expected[k] for k in row if k in expected}, (
            table
        )
    # The AI worker's resolution is the latest resolving move's root cause or note.
    worker = await stored(engine, "ai_worker.known_incidents", incident_id)
    resolutions = [payload_of(e) for e in renamed if e.type == "incident.state_changed"]
    resolved = [
        d for d in resolutions if isinstance(d, IncidentStateChanged) and d.to_state.value == "resolved"
    ]
    if resolved:
        latest = resolved[-1]
        assert worker["resolution"] == ((latest.root_cause or latest.note).strip() or None)
    else:
        assert worker["resolution"] is None
    async with engine.begin() as conn:  # leave no rows that the stream does not explain
        for table in ("gateway.incidents", "gateway.timeline", "ai_worker.known_incidents"):
            column = "incident_id" if table == "gateway.timeline" else "id"
            await conn.execute(text(f"DELETE FROM {table} WHERE {column} = :i"), {"i": incident_id})
        await conn.execute(text("DELETE FROM integrations.known_incidents WHERE id = :i"), {"i": incident_id})
