"""integrations on the bus: the inbound commands the gateway sends (alerts, PagerDuty events,
deploys, rejected payloads), the inbound log, what a service went through lately, the settings and
the `integrations_notifier` consumer. register_handlers binds these and the commands of
webhook_handlers, json_handlers, silence_handlers and correlation_handlers (slack.py binds its own).
Each handler checks the caller, asks domain what to do, and reads and writes through db."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import structlog

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.envelope import EventEnvelope
from contracts.events import DeployRecorded, KeyScope
from contracts.integrations import (
    AlertPage,
    AlertsAccepted,
    AlertView,
    DeployAccepted,
    DeployPage,
    DeployReport,
    DeployView,
    GetIntegrationSettings,
    InboundPage,
    InboundSource,
    InboundStatus,
    InboundView,
    IntegrationSettingsView,
    IntegrationSource,
    ListInbound,
    ListRejections,
    ListServiceAlerts,
    ListServiceDeploys,
    PagerDutyAccepted,
    ReceiveAlerts,
    ReceivePagerDuty,
    RecordChange,
    RecordDeploy,
    RecordRejection,
    RejectionPage,
    RejectionView,
    UpdateIntegrationSettings,
)
from contracts.subjects import INTEGRATIONS_NOTIFIER, events_of_type
from integrations import db
from integrations.alertmanager import InboundProcessor, new_delivery_id
from integrations.context import Integrations, page, require_admin, require_scope
from integrations.correlation_handlers import register_correlation_handlers
from integrations.crypto import load_box
from integrations.domain import change_as_deploy, deploy_identity, pagerduty_group_key
from integrations.json_handlers import register_json_handlers
from integrations.outbound import DeliveryLoop, enqueue_for
from integrations.settings import IntegrationsSettings
from integrations.silence_handlers import register_silence_handlers
from integrations.slack import Responder, register_slack_handlers
from integrations.webhook_handlers import register_webhook_handlers
from runtime.command_args import cursor_id as _cursor
from runtime.consumer import Delivery
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)

FILTER_SUBJECTS = [
    events_of_type("incident.created"),
    events_of_type("incident.state_changed"),
    events_of_type("incident.updated"),
    events_of_type("hypothesis.generated"),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def activity_cursor(at: datetime, *rest: str) -> str:
    """Where a page of deploys or alerts ended: the row's time and the rest of its key."""
    return ".".join([str((at - _EPOCH) // timedelta(microseconds=1)), *rest])


def parse_activity_cursor(cursor: str, parts: int) -> tuple[datetime, list[str]]:
    micros, *rest = cursor.split(".", parts)
    if len(rest) != parts:
        raise CommandFailed(
            ErrorCode.VALIDATION,
            "invalid cursor",
            [{"loc": ["cursor"], "msg": "not a cursor from this API", "type": "value_error"}],
        )
    return _EPOCH + timedelta(microseconds=int(micros)), rest


# ---- inbound


async def receive_alerts(it: Integrations, cmd: ReceiveAlerts) -> AlertsAccepted:
    source = cmd.source
    require_scope(source, KeyScope.ALERTS_WRITE)
    delivery_id, now = new_delivery_id(), datetime.now(UTC)
    async with it.service.engine.begin() as conn:
        await db.queue_inbound(
            conn,
            delivery_id=delivery_id,
            tenant_id=source.tenant_id,
            source=InboundSource.ALERTMANAGER.value,
            key_id=source.key_id,
            correlation_id=cmd.correlation_id,
            group_key=cmd.payload.groupKey,
            alert_count=len(cmd.payload.alerts),
            payload=cmd.payload.model_dump(mode="json"),
            now=now,
        )
    it.processor.kick()
    return AlertsAccepted(delivery_id=str(delivery_id), alerts=len(cmd.payload.alerts))


async def receive_pagerduty(it: Integrations, cmd: ReceivePagerDuty) -> PagerDutyAccepted:
    source, event = cmd.source, cmd.event
    require_scope(source, KeyScope.ALERTS_WRITE)
    if event.dedup_key is None:
        raise CommandFailed(ErrorCode.VALIDATION, "the gateway gives every event a dedup_key")
    delivery_id, now = new_delivery_id(), datetime.now(UTC)
    async with it.service.engine.begin() as conn:
        await db.queue_inbound(
            conn,
            delivery_id=delivery_id,
            tenant_id=source.tenant_id,
            source=InboundSource.PAGERDUTY.value,
            key_id=source.key_id,
            correlation_id=cmd.correlation_id,
            # Events of one dedup_key are one group: worked on in arrival order.
            group_key=pagerduty_group_key(event.dedup_key),
            alert_count=1,
            payload=event.model_dump(mode="json", by_alias=True),
            now=now,
        )
    it.processor.kick()
    return PagerDutyAccepted(delivery_id=str(delivery_id), dedup_key=event.dedup_key)


async def record_change(it: Integrations, cmd: RecordChange) -> DeployAccepted:
    require_scope(cmd.source, KeyScope.DEPLOYS_WRITE)
    return await _record_deploy(it, cmd.source, change_as_deploy(cmd.payload), cmd.correlation_id)


async def record_deploy(it: Integrations, cmd: RecordDeploy) -> DeployAccepted:
    require_scope(cmd.source, KeyScope.DEPLOYS_WRITE)
    return await _record_deploy(it, cmd.source, cmd.deploy, cmd.correlation_id)


async def _record_deploy(
    it: Integrations, source: IntegrationSource, report: DeployReport, correlation_id: str
) -> DeployAccepted:
    now = datetime.now(UTC)
    deploy_id = deploy_identity(source.tenant_id, report) or str(new_delivery_id())
    values = {
        "tenant_id": source.tenant_id,
        "id": deploy_id,
        "service_name": report.service_name,
        "version": report.version,
        "environment": report.environment,
        "commit": report.commit or None,
        "author": report.author or None,
        "deployed_at": report.deployed_at or now,
        "key_id": source.key_id,
        "recorded_at": now,
    }
    events: list[EventEnvelope] = []
    async with it.service.engine.begin() as conn:
        inserted = await db.insert_deploy(conn, values)
        row = inserted or await db.deploy(conn, source.tenant_id, deploy_id)
        if inserted is not None:
            events.append(
                EventEnvelope(
                    type="deploy.recorded",
                    tenant_id=source.tenant_id,
                    aggregate_id=deploy_id,
                    actor=source.actor,
                    correlation_id=correlation_id,
                    data=DeployRecorded(
                        deploy_id=deploy_id,
                        service_name=row.service_name,
                        version=row.version,
                        environment=row.environment,
                        commit=row.commit,
                        author=row.author,
                        deployed_at=row.deployed_at,
                    ).model_dump(mode="json"),
                )
            )
            await stage(conn, db.outbox, events)
    seq = await it.service.relay.publish_now(events) if events else None
    view = DeployView.model_validate(row, from_attributes=True)
    return DeployAccepted(deploy=view, created=inserted is not None, seq=seq)


async def record_rejection(it: Integrations, cmd: RecordRejection) -> Done:
    source = cmd.source
    async with it.service.engine.begin() as conn:
        await db.keep_rejection(
            conn,
            rejection_id=new_delivery_id(),
            tenant_id=source.tenant_id,
            endpoint=cmd.endpoint.value,
            key_id=source.key_id,
            received_at=datetime.now(UTC),
            message=cmd.message,
            details=cmd.details,
            body=cmd.body,
            keep=it.settings.rejections_kept_per_tenant,
        )
    log.info("inbound_rejected", tenant_id=source.tenant_id, endpoint=cmd.endpoint.value, reason=cmd.message)
    return Done()


async def list_rejections(it: Integrations, cmd: ListRejections) -> RejectionPage:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        rows = await db.rejections_page(conn, cmd.caller.tenant_id, _cursor(cmd.cursor), cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    items = [
        RejectionView(
            id=str(x.id),
            endpoint=InboundSource(x.endpoint),
            key_id=x.key_id,
            received_at=x.received_at,
            message=x.message,
            details=x.details,
            body=x.body,
            body_truncated=x.body_truncated,
        )
        for x in rows
    ]
    return RejectionPage(items=items, next_cursor=next_cursor)


async def list_inbound(it: Integrations, cmd: ListInbound) -> InboundPage:
    require_admin(cmd.caller)
    status = cmd.status.value if cmd.status is not None else None
    after = _cursor(cmd.cursor)
    async with it.service.engine.connect() as conn:
        rows = await db.inbound_page(conn, cmd.caller.tenant_id, status, after, cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    items = [
        InboundView(
            id=str(x.id),
            source=InboundSource(x.source),
            key_id=x.key_id,
            group_key=x.group_key,
            alerts=x.alert_count,
            status=InboundStatus(x.status),
            attempts=x.attempts,
            last_error=x.last_error,
            received_at=x.received_at,
            processed_at=x.processed_at,
            outcome=x.outcome,
        )
        for x in rows
    ]
    return InboundPage(items=items, next_cursor=next_cursor)


# ---- what a service went through lately (read by the MCP server; any role)


async def list_service_deploys(it: Integrations, cmd: ListServiceDeploys) -> DeployPage:
    before = None
    if cmd.cursor is not None:
        at, (deploy_id,) = parse_activity_cursor(cmd.cursor, 1)
        before = (at, deploy_id)
    async with it.service.engine.connect() as conn:
        rows = await db.service_deploys(
            conn, cmd.caller.tenant_id, cmd.service_name, cmd.since, before, cmd.limit + 1
        )
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    return DeployPage(
        items=[DeployView.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=activity_cursor(rows[-1].deployed_at, rows[-1].id) if more else None,
    )


async def list_service_alerts(it: Integrations, cmd: ListServiceAlerts) -> AlertPage:
    before = None
    if cmd.cursor is not None:
        at, (group_hash, fingerprint) = parse_activity_cursor(cmd.cursor, 2)
        before = (at, group_hash, fingerprint)
    async with it.service.engine.connect() as conn:
        rows = await db.service_alerts(
            conn, cmd.caller.tenant_id, cmd.service_name, cmd.since, before, cmd.limit + 1
        )
    more = len(rows) > cmd.limit
    rows = rows[: cmd.limit]
    last = rows[-1] if rows else None
    return AlertPage(
        items=[
            AlertView(
                fingerprint=r.fingerprint,
                alertname=r.alertname,
                status=r.status,
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                summary=str(r.annotations.get("summary") or r.annotations.get("description") or "")[:300],
                labels={str(name): str(value)[:200] for name, value in list(r.labels.items())[:20]},
                incident_id=str(r.incident_id) if r.incident_id else None,
                generator_url=r.generator_url,
            )
            for r in rows
        ],
        next_cursor=activity_cursor(last.starts_at, last.group_hash, last.fingerprint)
        if more and last is not None
        else None,
    )


# ---- settings


async def get_settings(it: Integrations, cmd: GetIntegrationSettings) -> IntegrationSettingsView:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        return IntegrationSettingsView(auto_resolve=await db.auto_resolve(conn, cmd.caller.tenant_id))


async def update_settings(it: Integrations, cmd: UpdateIntegrationSettings) -> IntegrationSettingsView:
    caller = cmd.caller
    require_admin(caller)
    async with it.service.engine.begin() as conn:
        if cmd.auto_resolve is not None:
            now = datetime.now(UTC)
            await db.save_settings(conn, caller.tenant_id, caller.user_id, now, auto_resolve=cmd.auto_resolve)
        return IntegrationSettingsView(auto_resolve=await db.auto_resolve(conn, caller.tenant_id))


# ---- events to notifications


async def notify(it: Integrations, delivery: Delivery) -> None:
    # Imported history updates the view but notifies nobody: it happened elsewhere, long ago.
    queued = await enqueue_for(
        it.service, it.settings, delivery.event, delivery.data, delivery.raw, notify=not delivery.imported
    )
    if queued:
        it.kick_deliveries()


def register_handlers(service: Service, settings: IntegrationsSettings) -> None:
    it = Integrations(service, settings, InboundProcessor(service, settings))
    responder = Responder(settings)
    register_slack_handlers(service, settings, it.box, responder)

    @service.app.after_startup
    async def start_loops() -> None:
        it.box_value = await load_box(service.engine, settings)
        it.loops.append(DeliveryLoop(service, settings, it.box_value))
        it.loops[0].start()
        it.processor.start()

    @service.app.on_shutdown
    async def stop_loops() -> None:
        await it.processor.stop()
        await responder.stop()
        for loop in it.loops:
            await loop.stop()

    handles = service.handles
    handles(ReceiveAlerts)(partial(receive_alerts, it))
    handles(ReceivePagerDuty)(partial(receive_pagerduty, it))
    handles(RecordChange)(partial(record_change, it))
    handles(RecordDeploy)(partial(record_deploy, it))
    handles(RecordRejection)(partial(record_rejection, it))
    handles(ListRejections)(partial(list_rejections, it))
    handles(ListInbound)(partial(list_inbound, it))
    handles(ListServiceDeploys)(partial(list_service_deploys, it))
    handles(ListServiceAlerts)(partial(list_service_alerts, it))
    handles(GetIntegrationSettings)(partial(get_settings, it))
    handles(UpdateIntegrationSettings)(partial(update_settings, it))
    register_webhook_handlers(it)
    register_json_handlers(it)
    register_silence_handlers(it)
    register_correlation_handlers(it)
    consume = service.consume(INTEGRATIONS_NOTIFIER, FILTER_SUBJECTS, db.consumed, max_in_flight=32)
    consume(partial(notify, it))
