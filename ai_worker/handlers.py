"""ai_worker on the bus: its durable consumer of the events it learns from and is triggered by, and
the `cmd.ai_worker.regenerate` command.

The consumer reads several event types through one durable with several filter subjects (NATS
2.10+), so the server sends it only what it uses, rather than one `events.>` filter that would
deliver (and make it ack) every event of the platform, its own output included. nats-py does not
change the filter of a durable that already exists, so at start-up `reconcile_consumer` brings an
older installation's durable (filtered on `events.*.incident.>` alone) to the current filters; its
position in the stream is kept.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy import update

from ai_worker import db
from ai_worker.generation import Generator, Trigger
from ai_worker.settings import AiWorkerSettings
from contracts.commands import (
    Caller,
    CommandFailed,
    ErrorCode,
    FeedbackAccepted,
    RecordFeedback,
    RegenerateHypotheses,
    RegenerationAccepted,
)
from contracts.envelope import EventEnvelope
from contracts.events import (
    AlertAttached,
    DeployRecorded,
    HypothesisFeedbackRecorded,
    HypothesisRegenerationRequested,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    IncidentUpdated,
    Role,
    UnknownEventType,
    payload_of,
)
from contracts.subjects import (
    AI_WORKER_CONSUMER,
    EVENTS_STREAM,
    IMPORTED_HEADER,
    command_subject,
    events_of_type,
)
from runtime.bus import connect
from runtime.consumer import MAX_DELIVER, dead_letter, give_up_or_retry, through_outages
from runtime.observe import consuming
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)

FILTER_SUBJECTS = [
    events_of_type("incident.>"),
    events_of_type("alert.attached"),
    events_of_type("deploy.recorded"),
    events_of_type("hypothesis.regeneration_requested"),
]
# Messages worked on at once per replica. Most of them wait (a coalescing window, another worker's
# lease) holding nothing; generations themselves are limited to `generation.MAX_GENERATING`.
MAX_WORKERS = 64
# Fields of incident.updated that the worker's view keeps.
VIEW_FIELDS = ("title", "description", "service_name", "severity")


async def reconcile_consumer(
    js: JetStreamContext, durable: str = AI_WORKER_CONSUMER, filters: list[str] = FILTER_SUBJECTS
) -> bool:
    """Bring an existing durable to `filters` (a missing one is created by the subscriber itself);
    True if it had to change."""
    try:
        info = await js.consumer_info(EVENTS_STREAM, durable)
    except NotFoundError:
        return False
    config = info.config
    if sorted(config.filter_subjects or [config.filter_subject or ""]) == sorted(filters):
        return False
    config.filter_subject = None
    config.filter_subjects = list(filters)
    await js.add_consumer(EVENTS_STREAM, config)
    log.info("consumer_filters_updated", consumer=durable, filters=filters)
    return True


class IncidentNotYetKnown(Exception):
    """A change to an incident whose incident.created this worker has not applied yet (the two can
    be worked on at once): retried with back-off until it has."""


async def remember_incident(service: Service, event: EventEnvelope, data: IncidentCreated) -> None:
    async with service.engine.begin() as conn:
        await db.lock_incident(conn, uuid.UUID(data.incident_id))
        await db.remember_incident(
            conn,
            {
                "id": uuid.UUID(data.incident_id),
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


async def on_state_changed(service: Service, event: EventEnvelope, data: IncidentStateChanged) -> None:
    resolved = data.to_state is IncidentState.RESOLVED
    values: dict[str, Any] = {
        "state": data.to_state.value,
        "resolved_at": data.changed_at if resolved else None,
    }
    if resolved:
        # The root cause recorded when resolving (or else the resolving note) is what later
        # incidents cite.
        values["resolution"] = (data.root_cause or data.note).strip() or None
    await _apply_to_view(service, event, data.incident_id, values)


async def _apply_to_view(
    service: Service, event: EventEnvelope, incident_id: str, values: dict[str, Any]
) -> None:
    """Apply a change of the incident aggregate once, and only over an older version of it."""
    k = db.known_incidents
    key = uuid.UUID(incident_id)
    async with service.engine.begin() as conn:
        await db.lock_incident(conn, key)
        result = await conn.execute(
            update(k)
            .where(k.c.id == key, k.c.tenant_id == event.tenant_id, k.c.version < event.aggregate_version)
            .values(**values, version=event.aggregate_version)
        )
        if result.rowcount == 0 and await db.incident(conn, key) is None:
            raise IncidentNotYetKnown(f"incident {incident_id} not known yet")


async def on_updated(service: Service, event: EventEnvelope, data: IncidentUpdated) -> None:
    values: dict[str, Any] = {
        name: change.new
        for name, change in data.changes.items()
        if name in VIEW_FIELDS and change.new is not None
    }
    await _apply_to_view(service, event, data.incident_id, values)


async def record_alert(service: Service, event: EventEnvelope, data: AlertAttached) -> None:
    async with service.engine.begin() as conn:
        await db.record_alert(
            conn,
            {
                "incident_id": uuid.UUID(data.incident_id),
                "fingerprint": data.fingerprint,
                "tenant_id": event.tenant_id,
                "alertname": data.alertname,
                "status": data.status,
                "labels": data.labels,
                "annotations": data.annotations,
                "starts_at": data.starts_at,
                "ends_at": data.ends_at,
                "generator_url": data.generator_url,
                "event_id": event.id,
                "event_at": event.occurred_at,
            },
        )


async def record_deploy(service: Service, event: EventEnvelope, data: DeployRecorded) -> list[uuid.UUID]:
    """Remember the deploy; the open incidents of its service are the ones it may explain."""
    async with service.engine.begin() as conn:
        await db.record_deploy(
            conn,
            {
                "tenant_id": event.tenant_id,
                "deploy_id": data.deploy_id,
                "service_name": data.service_name,
                "version": data.version,
                "environment": data.environment,
                "commit": data.commit,
                "author": data.author,
                "deployed_at": data.deployed_at,
                "event_id": event.id,
            },
        )
        return await db.open_incidents_of_service(conn, event.tenant_id, data.service_name)


def _trigger(event: EventEnvelope, kind: str, incident_id: str | uuid.UUID, **extra: Any) -> Trigger:
    return Trigger(
        event_id=event.id,
        kind=kind,
        incident_id=incident_id if isinstance(incident_id, uuid.UUID) else uuid.UUID(incident_id),
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        **extra,
    )


async def handle_event(
    generator: Generator, event: EventEnvelope, data: Any, raw: Msg | None = None, imported: bool = False
) -> int:
    """Apply one event to the worker's view and run the generations it triggers; returns how many
    events were published. Imported history updates the view but triggers nothing: its hypotheses
    were generated where it happened, and came along in the import."""
    service = generator.service

    async def heartbeat() -> None:
        if raw is not None:
            await raw.in_progress()

    triggers: list[Trigger] = []
    if isinstance(data, IncidentCreated):
        await remember_incident(service, event, data)
        triggers.append(_trigger(event, "incident.created", data.incident_id))
    elif isinstance(data, IncidentStateChanged):
        await on_state_changed(service, event, data)
    elif isinstance(data, IncidentUpdated):
        await on_updated(service, event, data)
    elif isinstance(data, AlertAttached):
        await record_alert(service, event, data)
        # A firing alert is new evidence; its later "resolved" is kept in the view but is no reason
        # to generate again.
        if data.status == "firing":
            triggers.append(_trigger(event, "alert.attached", data.incident_id, only_if_open=True))
    elif isinstance(data, DeployRecorded):
        for incident_id in await record_deploy(service, event, data):
            triggers.append(_trigger(event, "deploy.recorded", incident_id, only_if_open=True))
    elif isinstance(data, HypothesisRegenerationRequested):
        triggers.append(_trigger(event, "regenerate", data.incident_id, actor=data.requested_by))
    published = 0
    for trigger in [] if imported else triggers:
        events = await generator.handle(trigger, heartbeat)
        if events:
            await service.relay.publish_now(events)
            published += len(events)
    return published


def _parse_incident_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found") from exc


def _require_responder(caller: Caller) -> None:
    if not caller.role.at_least(Role.RESPONDER):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not regenerate hypotheses")


def register_handlers(service: Service, settings: AiWorkerSettings) -> Generator:
    generator = Generator.from_settings(service, settings)

    @service.app.on_startup
    async def update_consumer_filters() -> None:
        # Before the subscriber binds to the durable, with a connection of its own (the broker's
        # is not open yet).
        nc = await connect(settings.nats_url, f"ai_worker:{settings.instance}:setup", reconnect=False)
        try:
            await reconcile_consumer(nc.jetstream())
        finally:
            await nc.close()

    @service.app.on_shutdown
    async def close_generator() -> None:
        await generator.close()

    @service.broker.subscriber(
        "",
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=AI_WORKER_CONSUMER,
        config=ConsumerConfig(
            durable_name=AI_WORKER_CONSUMER,
            filter_subjects=list(FILTER_SUBJECTS),
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=MAX_DELIVER + 1,
            max_ack_pending=256,
        ),
        pull_sub=PullSub(batch_size=MAX_WORKERS, timeout=1.0),
        max_workers=MAX_WORKERS,
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
            with consuming(AI_WORKER_CONSUMER, event, raw.headers):
                imported = (raw.headers or {}).get(IMPORTED_HEADER) is not None
                await through_outages(
                    [raw], lambda: handle_event(generator, event, data, raw, imported), AI_WORKER_CONSUMER
                )
            await raw.ack()
        except asyncio.CancelledError:
            raise
        except IncidentNotYetKnown as exc:
            await give_up_or_retry(service.js, AI_WORKER_CONSUMER, raw, exc)
        except Exception as exc:
            log.exception("event_failed", subject=raw.subject, correlation_id=event.correlation_id)
            await give_up_or_retry(service.js, AI_WORKER_CONSUMER, raw, exc)

    @service.command(command_subject("ai_worker", "regenerate"), RegenerateHypotheses)
    async def regenerate(cmd: RegenerateHypotheses) -> RegenerationAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id = _parse_incident_id(cmd.incident_id)
        async with service.engine.begin() as conn:
            row = await db.incident(conn, incident_id)
            if row is None or row.tenant_id != caller.tenant_id:
                raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
            # Through the log rather than at once: the generation is durable, coalesces with other
            # triggers and runs on whichever replica takes it, like every other trigger.
            requested = EventEnvelope(
                type="hypothesis.regeneration_requested",
                tenant_id=caller.tenant_id,
                aggregate_id=str(incident_id),
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=HypothesisRegenerationRequested(
                    incident_id=str(incident_id), requested_by=caller.user_id, requested_at=datetime.now(UTC)
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [requested])
        seq = await service.relay.publish_now([requested])
        return RegenerationAccepted(incident_id=str(incident_id), request_id=str(requested.id), seq=seq)

    @service.command(command_subject("ai_worker", "feedback"), RecordFeedback)
    async def record_feedback(cmd: RecordFeedback) -> FeedbackAccepted:
        caller = cmd.caller
        _require_responder(caller)
        incident_id = _parse_incident_id(cmd.incident_id)
        async with service.engine.begin() as conn:
            row = await db.incident(conn, incident_id)
            if row is None or row.tenant_id != caller.tenant_id:
                raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
            generation = await db.generation(conn, incident_id, cmd.generation)
            if generation is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "no such generation of hypotheses")
            ranked = {h["rank"]: h for h in generation.hypotheses}
            if cmd.rank not in ranked:
                raise CommandFailed(
                    ErrorCode.NOT_FOUND, f"generation {generation.generation} has no rank {cmd.rank}"
                )
            recorded = EventEnvelope(
                type="hypothesis.feedback_recorded",
                tenant_id=caller.tenant_id,
                aggregate_id=str(incident_id),
                actor=caller.user_id,
                correlation_id=cmd.correlation_id,
                data=HypothesisFeedbackRecorded(
                    incident_id=str(incident_id),
                    generation=generation.generation,
                    rank=cmd.rank,
                    claim=ranked[cmd.rank]["claim"],
                    engine=generation.engine,
                    verdict=cmd.verdict,
                    comment=cmd.comment,
                    given_by=caller.user_id,
                    given_at=datetime.now(UTC),
                ).model_dump(mode="json"),
            )
            await stage(conn, db.outbox, [recorded])
        seq = await service.relay.publish_now([recorded])
        return FeedbackAccepted(
            incident_id=str(incident_id), generation=generation.generation, rank=cmd.rank, seq=seq
        )

    return generator
