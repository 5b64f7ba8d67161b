"""ai_worker on the bus: its durable consumer of the events it learns from and is triggered by
(through one durable with several filter subjects, so the server sends it only what it uses), and the
`cmd.ai_worker.regenerate` and `cmd.ai_worker.feedback` commands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from ai_worker import db, postmortem, signatures
from ai_worker.engines.claude_postmortem import PostmortemWriter
from ai_worker.generation import Generator, Trigger
from ai_worker.settings import AiWorkerSettings
from contracts.commands import (
    Caller,
    CommandFailed,
    DraftPostmortem,
    ErrorCode,
    FeedbackAccepted,
    HypothesisSignatures,
    HypothesisSignatureView,
    ListHypothesisSignatures,
    PostmortemText,
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
)
from contracts.subjects import AI_WORKER_CONSUMER, events_of_type
from runtime.consumer import Delivery, RetryLater
from runtime.outbox import stage
from runtime.service import Service
from runtime.views import apply_snapshot

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
IncidentEvent = IncidentCreated | IncidentStateChanged | IncidentUpdated


async def apply_incident_event(service: Service, event: EventEnvelope, data: IncidentEvent) -> None:
    """Keep the worker's view of the incident: the snapshot the event carries, if newer; and, for a
    resolution, what it was resolved with (the root cause, or else the resolving note), which later
    incidents cite, kept by the version of the resolution so a late event never replaces a newer one."""
    incident_id = uuid.UUID(data.incident_id)
    resolution = (
        data if isinstance(data, IncidentStateChanged) and data.to_state is IncidentState.RESOLVED else None
    )
    if data.incident is not None and resolution is None:
        # One upsert, atomic and idempotent by itself (a newer version wins): no transaction, and no
        # lock, which only orders it against a generation that might as well have run first.
        async with service.single_statements.connect() as conn:
            await apply_snapshot(conn, db.known_incidents, event.tenant_id, data.incident)
        return
    async with service.engine.begin() as conn:
        await db.lock_incident(conn, incident_id)
        if data.incident is not None:
            await apply_snapshot(conn, db.known_incidents, event.tenant_id, data.incident)
        elif not await _apply_legacy_change(conn, event, data):
            raise RetryLater(f"incident {incident_id} not known yet")
        if resolution is not None:
            resolved_with = (resolution.root_cause or resolution.note).strip() or None
            await db.record_resolution(
                conn, event.tenant_id, incident_id, resolved_with, event.aggregate_version
            )


async def _apply_legacy_change(conn: AsyncConnection, event: EventEnvelope, data: IncidentEvent) -> bool:
    """History written before snapshots: a change applies over an older version of a known incident;
    False when the incident is not in the view yet."""
    values: dict[str, Any]
    if isinstance(data, IncidentStateChanged):
        resolved = data.to_state is IncidentState.RESOLVED
        values = {"state": data.to_state.value, "resolved_at": data.changed_at if resolved else None}
    elif isinstance(data, IncidentUpdated):
        values = {
            name: change.new
            for name, change in data.changes.items()
            if name in VIEW_FIELDS and change.new is not None
        }
    else:
        return True
    k = db.known_incidents
    key = uuid.UUID(data.incident_id)
    result = await conn.execute(
        update(k)
        .where(k.c.id == key, k.c.tenant_id == event.tenant_id, k.c.version < event.aggregate_version)
        .values(**values, version=event.aggregate_version)
    )
    return bool(result.rowcount) or await db.incident(conn, key) is not None


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
    """Remember the deploy; the open incidents of its service, or whose report names it, are the ones
    it may explain."""
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


async def handle_event(generator: Generator, delivery: Delivery) -> int:
    """Apply one event to the worker's view and run the generations it triggers; returns how many
    events were published. Imported history updates the view but triggers nothing: its hypotheses
    were generated where it happened, and came along in the import."""
    service, event, data = generator.service, delivery.event, delivery.data
    triggers: list[Trigger] = []
    if isinstance(data, IncidentCreated | IncidentStateChanged | IncidentUpdated):
        await apply_incident_event(service, event, data)
        if isinstance(data, IncidentCreated):
            triggers.append(_trigger(event, "incident.created", data.incident_id))
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
    # The view is up to date: the incident's next event need not wait for the generations below.
    delivery.release()
    published = 0
    for trigger in [] if delivery.imported else triggers:
        events = await generator.handle(trigger, delivery.heartbeat)
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

    @service.app.on_shutdown
    async def close_generator() -> None:
        await generator.close()

    @service.consume(AI_WORKER_CONSUMER, FILTER_SUBJECTS, db.consumed, max_in_flight=MAX_WORKERS)
    async def consume(delivery: Delivery) -> None:
        await handle_event(generator, delivery)

    @service.handles(RegenerateHypotheses)
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

    @service.handles(RecordFeedback)
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

    writer = PostmortemWriter(generator.claude) if generator.claude is not None else None

    @service.handles(DraftPostmortem)
    async def draft_postmortem(cmd: DraftPostmortem) -> PostmortemText:
        """The text of a postmortem draft from the incident's log as the gateway holds it (nothing is
        stored here: incidents keeps the postmortem); Claude's narrative when it is configured."""
        _require_responder(cmd.caller)
        if writer is not None:
            return await writer.draft(cmd.incident, cmd.entries, cmd.people, cmd.follow_ups)
        return postmortem.draft(cmd.incident, cmd.entries, cmd.people, cmd.follow_ups)

    @service.handles(ListHypothesisSignatures)
    async def list_signatures(cmd: ListHypothesisSignatures) -> HypothesisSignatures:
        # Read-only over the API: a tenant-supplied regular expression would run in this worker,
        # shared by every tenant, with no time limit; extensions stay with the operator's files.
        catalogue = generator.catalogue(cmd.caller.tenant_id)
        return HypothesisSignatures(
            entries=[HypothesisSignatureView.model_validate(row) for row in signatures.describe(catalogue)],
            extensible=settings.ai_signatures_dir is not None,
        )

    return generator
