"""ai_worker's durable consumer of incident events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from ai_worker import db
from ai_worker.engines import rules
from ai_worker.evidence import IncidentFacts, PastIncident, gather
from ai_worker.settings import AiWorkerSettings
from contracts.envelope import EventEnvelope
from contracts.events import (
    HypothesisGenerated,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    UnknownEventType,
    payload_of,
)
from contracts.subjects import AI_WORKER_CONSUMER, EVENTS_STREAM, events_of_type
from runtime.consumer import MAX_DELIVER, dead_letter, give_up_or_retry
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)


async def on_incident_created(
    service: Service, settings: AiWorkerSettings, event: EventEnvelope, data: IncidentCreated
) -> EventEnvelope | None:
    """Remember the incident and generate its hypotheses once; a redelivery returns None."""
    incident_id = uuid.UUID(data.incident_id)
    async with service.engine.begin() as conn:
        await db.remember_incident(
            conn,
            {
                "id": incident_id,
                "tenant_id": event.tenant_id,
                "key": data.key,
                "title": data.title,
                "description": data.description,
                "service_name": data.service_name,
                "severity": data.severity.value,
                "state": data.state.value,
                "version": event.aggregate_version,
                "created_at": data.created_at,
            },
        )
        past = await db.history(
            conn,
            event.tenant_id,
            before=data.created_at,
            since=data.created_at - timedelta(days=settings.history_days),
            exclude=incident_id,
        )
        facts = IncidentFacts(
            id=data.incident_id,
            tenant_id=event.tenant_id,
            key=data.key,
            title=data.title,
            description=data.description,
            service_name=data.service_name,
            severity=data.severity.value,
            created_at=data.created_at,
        )
        history = [
            PastIncident(p.key, p.title, p.description, p.service_name, p.state, p.created_at) for p in past
        ]
        hypotheses = rules.generate(gather(facts, history))
        now = datetime.now(UTC)
        generated = EventEnvelope(
            type="hypothesis.generated",
            tenant_id=event.tenant_id,
            aggregate_id=data.incident_id,
            actor="ai_worker",
            correlation_id=event.correlation_id,
            causation_id=str(event.id),
            data=HypothesisGenerated(
                incident_id=data.incident_id, engine=rules.ENGINE, hypotheses=hypotheses, generated_at=now
            ).model_dump(mode="json"),
        )
        claimed = (
            await conn.execute(
                insert(db.generations)
                .values(
                    incident_id=incident_id,
                    tenant_id=event.tenant_id,
                    engine=rules.ENGINE,
                    event_id=generated.id,
                    hypotheses=[h.model_dump(mode="json") for h in hypotheses],
                    generated_at=now,
                )
                .on_conflict_do_nothing()
                .returning(db.generations.c.incident_id)
            )
        ).first()
        if claimed is None:
            return None
        await stage(conn, db.outbox, [generated])
    return generated


async def on_state_changed(service: Service, event: EventEnvelope, data: IncidentStateChanged) -> None:
    k = db.known_incidents
    resolved_at = data.changed_at if data.to_state is IncidentState.RESOLVED else None
    async with service.engine.begin() as conn:
        await conn.execute(
            update(k)
            .where(k.c.id == uuid.UUID(data.incident_id), k.c.version < event.aggregate_version)
            .values(state=data.to_state.value, version=event.aggregate_version, resolved_at=resolved_at)
        )


def register_handlers(service: Service, settings: AiWorkerSettings) -> None:
    @service.broker.subscriber(
        events_of_type("incident.>"),
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=AI_WORKER_CONSUMER,
        config=ConsumerConfig(
            durable_name=AI_WORKER_CONSUMER,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=MAX_DELIVER + 1,
            max_ack_pending=256,
        ),
        pull_sub=PullSub(batch_size=16, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
    )
    async def consume(body: Any, msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            event = EventEnvelope.from_bytes(raw.data)
            data = payload_of(event)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            # Retrying cannot make an unreadable event readable.
            await dead_letter(service.js, AI_WORKER_CONSUMER, raw, exc)
            return
        try:
            with structlog.contextvars.bound_contextvars(
                correlation_id=event.correlation_id, event_id=str(event.id), event_type=event.type
            ):
                if isinstance(data, IncidentCreated):
                    generated = await on_incident_created(service, settings, event, data)
                    if generated is not None:
                        await service.relay.publish_now([generated])
                        log.info("hypotheses_generated", incident_id=data.incident_id)
                elif isinstance(data, IncidentStateChanged):
                    await on_state_changed(service, event, data)
            await raw.ack()
        except Exception as exc:
            log.exception("incident_event_failed", subject=raw.subject)
            await give_up_or_retry(service.js, AI_WORKER_CONSUMER, raw, exc)
