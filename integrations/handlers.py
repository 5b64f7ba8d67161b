"""integrations on the bus: the commands the gateway sends (inbound alerts and deploys, rejected
payloads, webhook management, delivery logs, settings) and the `integrations_notifier` consumer."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from contracts.commands import Caller, CommandFailed, Done, ErrorCode
from contracts.envelope import EventEnvelope
from contracts.events import DeployRecorded, KeyScope, Role
from contracts.integrations import (
    REJECTED_BODY_KEPT,
    AlertPage,
    AlertsAccepted,
    AlertView,
    CorrelationPreview,
    CorrelationRulePage,
    CorrelationRuleRef,
    CorrelationRuleSpec,
    CorrelationRuleView,
    CreateCorrelationRule,
    CreateJsonSource,
    CreateSilence,
    CreateWebhook,
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
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
    JsonAccepted,
    JsonMapping,
    JsonSourcePage,
    JsonSourceRef,
    JsonSourceView,
    ListCorrelationRules,
    ListDeliveries,
    ListInbound,
    ListJsonSources,
    ListRejections,
    ListServiceAlerts,
    ListServiceDeploys,
    ListSilences,
    ListWebhooks,
    MappingPreview,
    PagerDutyAccepted,
    PreviewAlert,
    PreviewCluster,
    PreviewCorrelation,
    PreviewMapping,
    ReceiveAlerts,
    ReceiveJson,
    ReceivePagerDuty,
    RecordChange,
    RecordDeploy,
    RecordRejection,
    RejectionPage,
    RejectionView,
    RetryDelivery,
    SilencePage,
    SilenceRef,
    SilenceSpec,
    SilenceView,
    UpdateCorrelationRule,
    UpdateIntegrationSettings,
    UpdateJsonSource,
    UpdateWebhook,
    WebhookIssued,
    WebhookKind,
    WebhookPage,
    WebhookRef,
    WebhookView,
)
from contracts.subjects import (
    INTEGRATIONS_NOTIFIER,
    command_subject,
    events_of_type,
)
from integrations import db
from integrations.alertmanager import InboundProcessor, new_delivery_id, received_alerts
from integrations.crypto import SecretBox, load_box
from integrations.domain import (
    SECRET_PREFIX,
    MappingProblem,
    ReceivedAlert,
    Rule,
    Unreadable,
    apply_mapping,
    change_as_deploy,
    compile_mapping,
    incidents_after,
    json_notification,
    pagerduty_group_key,
    preview_clusters,
    silence_problem,
    silence_state,
    source_of_group,
    url_problem,
)
from integrations.outbound import DeliveryLoop, enqueue_for
from integrations.settings import IntegrationsSettings
from integrations.slack import Responder, register_slack_handlers
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id
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
DEPLOY_NAMESPACE = uuid.UUID("0b6f3f0e-61a4-4a39-9a5e-7d2c84e1f5b3")


def _cmd(name: str) -> str:
    return command_subject("integrations", name)


def _require_scope(source: IntegrationSource, scope: KeyScope) -> None:
    if scope not in source.scopes:
        raise CommandFailed(ErrorCode.FORBIDDEN, f"this key lacks the scope {scope.value}")


def _require_admin(caller: Caller) -> None:
    if not caller.role.at_least(Role.ADMIN):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage integrations")


def _page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Rows are fetched limit + 1, newest first (UUIDv7 ids): the extra one says there is more."""
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1].id)
    return rows, None


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


def webhook_view(row: Any) -> WebhookView:
    return WebhookView(
        id=str(row.id),
        kind=WebhookKind(row.kind),
        name=row.name,
        url=row.url,
        event_types=row.event_types,
        enabled=row.enabled,
        interactive=row.kind == WebhookKind.SLACK.value and row.secret_encrypted is not None,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def delivery_view(row: Any) -> DeliveryView:
    return DeliveryView(
        id=str(row.id),
        webhook_id=str(row.webhook_id),
        event_id=str(row.event_id),
        event_type=row.event_type,
        incident_id=str(row.incident_id) if row.incident_id else None,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.PENDING.value else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _url_refused(problem: str) -> CommandFailed:
    return CommandFailed(
        ErrorCode.VALIDATION, problem, [{"loc": ["body", "url"], "msg": problem, "type": "value_error"}]
    )


class Box:
    """The secret box, once loaded at start-up (its key may come from the database)."""

    value: SecretBox | None = None

    def get(self) -> SecretBox:
        if self.value is None:
            raise CommandFailed(ErrorCode.UNAVAILABLE, "integrations is starting")
        return self.value


def _slack_only(kind: str, stored: bool = False) -> CommandFailed:
    """A signing secret for a webhook that is not Slack's: bad input when the body names the kind
    (a creation), a conflict with the webhook as it is when the kind is the stored one (a change)."""
    message = f"a {kind} webhook has no Slack signing secret"
    return CommandFailed(
        ErrorCode.CONFLICT if stored else ErrorCode.VALIDATION,
        message,
        [{"loc": ["body", "slack_signing_secret"], "msg": message, "type": "value_error"}],
    )


def register_handlers(service: Service, settings: IntegrationsSettings) -> None:
    processor = InboundProcessor(service, settings)
    box = Box()
    loops: list[DeliveryLoop] = []
    responder = Responder(settings)
    register_slack_handlers(service, settings, box.get, responder)

    @service.app.after_startup
    async def start_loops() -> None:
        box.value = await load_box(service.engine, settings)
        loops.append(DeliveryLoop(service, settings, box.value))
        loops[0].start()
        processor.start()

    @service.app.on_shutdown
    async def stop_loops() -> None:
        await processor.stop()
        await responder.stop()
        for loop in loops:
            await loop.stop()

    def kick_deliveries() -> None:
        for loop in loops:
            loop.kick()

    # ---- inbound

    @service.command(_cmd("receive_alerts"), ReceiveAlerts)
    async def receive_alerts(cmd: ReceiveAlerts) -> AlertsAccepted:
        source = cmd.source
        _require_scope(source, KeyScope.ALERTS_WRITE)
        delivery_id, now = new_delivery_id(), datetime.now(UTC)
        async with service.engine.begin() as conn:
            await conn.execute(
                db.inbound.insert().values(
                    id=delivery_id,
                    tenant_id=source.tenant_id,
                    source=InboundSource.ALERTMANAGER.value,
                    key_id=source.key_id,
                    correlation_id=cmd.correlation_id[:64],
                    group_key=cmd.payload.groupKey,
                    alert_count=len(cmd.payload.alerts),
                    payload=cmd.payload.model_dump(mode="json"),
                    status=InboundStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    received_at=now,
                )
            )
        processor.kick()
        return AlertsAccepted(delivery_id=str(delivery_id), alerts=len(cmd.payload.alerts))

    @service.command(_cmd("receive_pagerduty"), ReceivePagerDuty)
    async def receive_pagerduty(cmd: ReceivePagerDuty) -> PagerDutyAccepted:
        source, event = cmd.source, cmd.event
        _require_scope(source, KeyScope.ALERTS_WRITE)
        if event.dedup_key is None:
            raise CommandFailed(ErrorCode.VALIDATION, "the gateway gives every event a dedup_key")
        delivery_id, now = new_delivery_id(), datetime.now(UTC)
        async with service.engine.begin() as conn:
            await conn.execute(
                db.inbound.insert().values(
                    id=delivery_id,
                    tenant_id=source.tenant_id,
                    source=InboundSource.PAGERDUTY.value,
                    key_id=source.key_id,
                    correlation_id=cmd.correlation_id[:64],
                    # Events of one dedup_key are one group: worked on in arrival order.
                    group_key=pagerduty_group_key(event.dedup_key),
                    alert_count=1,
                    payload=event.model_dump(mode="json", by_alias=True),
                    status=InboundStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    received_at=now,
                )
            )
        processor.kick()
        return PagerDutyAccepted(delivery_id=str(delivery_id), dedup_key=event.dedup_key)

    @service.command(_cmd("record_change"), RecordChange)
    async def record_change(cmd: RecordChange) -> DeployAccepted:
        _require_scope(cmd.source, KeyScope.DEPLOYS_WRITE)
        return await _record_deploy(cmd.source, change_as_deploy(cmd.payload), cmd.correlation_id)

    @service.command(_cmd("record_deploy"), RecordDeploy)
    async def record_deploy(cmd: RecordDeploy) -> DeployAccepted:
        _require_scope(cmd.source, KeyScope.DEPLOYS_WRITE)
        return await _record_deploy(cmd.source, cmd.deploy, cmd.correlation_id)

    async def _record_deploy(
        source: IntegrationSource, report: DeployReport, correlation_id: str
    ) -> DeployAccepted:
        now = datetime.now(UTC)
        if report.deployed_at is not None:
            # The same report sent twice (CI retrying a request) is the same deploy.
            parts = (source.tenant_id, report.service_name, report.environment, report.version)
            identity = "\x00".join((*parts, report.commit or "", report.deployed_at.isoformat()))
            deploy_id = str(uuid.uuid5(DEPLOY_NAMESPACE, identity))
        else:
            deploy_id = str(new_delivery_id())
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
        async with service.engine.begin() as conn:
            inserted = (
                await conn.execute(
                    insert(db.deploys).values(**values).on_conflict_do_nothing().returning(db.deploys)
                )
            ).first()
            row = (
                inserted
                or (
                    await conn.execute(
                        select(db.deploys).where(
                            db.deploys.c.tenant_id == source.tenant_id, db.deploys.c.id == deploy_id
                        )
                    )
                ).one()
            )
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
        seq = await service.relay.publish_now(events) if events else None
        view = DeployView.model_validate(row, from_attributes=True)
        return DeployAccepted(deploy=view, created=inserted is not None, seq=seq)

    @service.command(_cmd("record_rejection"), RecordRejection)
    async def record_rejection(cmd: RecordRejection) -> Done:
        source = cmd.source
        async with service.engine.begin() as conn:
            await conn.execute(
                db.rejections.insert().values(
                    id=new_delivery_id(),
                    tenant_id=source.tenant_id,
                    endpoint=cmd.endpoint.value,
                    key_id=source.key_id,
                    received_at=datetime.now(UTC),
                    message=cmd.message,
                    details=cmd.details,
                    body=cmd.body[:REJECTED_BODY_KEPT],
                    body_truncated=len(cmd.body) > REJECTED_BODY_KEPT,
                )
            )
            await db.prune_rejections(conn, source.tenant_id, settings.rejections_kept_per_tenant)
        log.info(
            "inbound_rejected", tenant_id=source.tenant_id, endpoint=cmd.endpoint.value, reason=cmd.message
        )
        return Done()

    @service.command(_cmd("list_rejections"), ListRejections)
    async def list_rejections(cmd: ListRejections) -> RejectionPage:
        _require_admin(cmd.caller)
        r = db.rejections
        query = select(r).where(r.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(r.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(r.c.id.desc()).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
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

    @service.command(_cmd("list_inbound"), ListInbound)
    async def list_inbound(cmd: ListInbound) -> InboundPage:
        _require_admin(cmd.caller)
        i = db.inbound
        query = select(i).where(i.c.tenant_id == cmd.caller.tenant_id)
        if cmd.status is not None:
            query = query.where(i.c.status == cmd.status.value)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(i.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(i.c.id.desc()).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
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
    @service.command(_cmd("list_service_deploys"), ListServiceDeploys)
    async def list_service_deploys(cmd: ListServiceDeploys) -> DeployPage:
        d = db.deploys
        query = select(d).where(d.c.tenant_id == cmd.caller.tenant_id, d.c.service_name == cmd.service_name)
        if cmd.since is not None:
            query = query.where(d.c.deployed_at >= cmd.since)
        if cmd.cursor is not None:
            at, (deploy_id,) = parse_activity_cursor(cmd.cursor, 1)
            query = query.where(tuple_(d.c.deployed_at, d.c.id) < tuple_(at, deploy_id))
        query = query.order_by(d.c.deployed_at.desc(), d.c.id.desc()).limit(cmd.limit + 1)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > cmd.limit
        rows = rows[: cmd.limit]
        return DeployPage(
            items=[DeployView.model_validate(r, from_attributes=True) for r in rows],
            next_cursor=activity_cursor(rows[-1].deployed_at, rows[-1].id) if more else None,
        )

    @service.command(_cmd("list_service_alerts"), ListServiceAlerts)
    async def list_service_alerts(cmd: ListServiceAlerts) -> AlertPage:
        a, k = db.alerts, db.known_incidents
        of_service = select(k.c.id).where(
            k.c.tenant_id == cmd.caller.tenant_id, k.c.service_name == cmd.service_name
        )
        query = select(a).where(
            a.c.tenant_id == cmd.caller.tenant_id,
            or_(a.c.labels["service"].astext == cmd.service_name, a.c.incident_id.in_(of_service)),
        )
        if cmd.since is not None:
            query = query.where(a.c.starts_at >= cmd.since)
        position = tuple_(a.c.starts_at, a.c.group_hash, a.c.fingerprint)
        if cmd.cursor is not None:
            at, (group_hash, fingerprint) = parse_activity_cursor(cmd.cursor, 2)
            query = query.where(position < tuple_(at, group_hash, fingerprint))
        query = query.order_by(a.c.starts_at.desc(), a.c.group_hash.desc(), a.c.fingerprint.desc())
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.limit(cmd.limit + 1))).all())
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

    @service.command(_cmd("get_settings"), GetIntegrationSettings)
    async def get_settings(cmd: GetIntegrationSettings) -> IntegrationSettingsView:
        _require_admin(cmd.caller)
        async with service.engine.connect() as conn:
            return IntegrationSettingsView(auto_resolve=await db.auto_resolve(conn, cmd.caller.tenant_id))

    @service.command(_cmd("update_settings"), UpdateIntegrationSettings)
    async def update_settings(cmd: UpdateIntegrationSettings) -> IntegrationSettingsView:
        caller = cmd.caller
        _require_admin(caller)
        async with service.engine.begin() as conn:
            if cmd.auto_resolve is not None:
                now = datetime.now(UTC)
                await db.save_settings(
                    conn, caller.tenant_id, caller.user_id, now, auto_resolve=cmd.auto_resolve
                )
            return IntegrationSettingsView(auto_resolve=await db.auto_resolve(conn, caller.tenant_id))

    # ---- webhooks

    @service.command(_cmd("create_webhook"), CreateWebhook)
    async def create_webhook(cmd: CreateWebhook) -> WebhookIssued:
        caller = cmd.caller
        _require_admin(caller)
        problem = url_problem(cmd.url, settings.webhook_allow_private_targets)
        if problem:
            raise _url_refused(problem)
        secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}" if cmd.kind is WebhookKind.GENERIC else None
        if cmd.slack_signing_secret is not None and cmd.kind is not WebhookKind.SLACK:
            raise _slack_only(cmd.kind.value)
        # Stored where a generic webhook keeps its own: the one secret a webhook of either kind has.
        kept = secret or cmd.slack_signing_secret
        now, webhook_id = datetime.now(UTC), new_delivery_id()
        async with service.engine.begin() as conn:
            # Serialise creations of one tenant, so the cap holds under concurrent requests.
            await conn.execute(
                select(db.webhooks.c.id).where(db.webhooks.c.tenant_id == caller.tenant_id).with_for_update()
            )
            if await db.count_webhooks(conn, caller.tenant_id) >= settings.max_webhooks_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"an organisation has at most {settings.max_webhooks_per_tenant} webhooks",
                )
            row = (
                await conn.execute(
                    db.webhooks.insert()
                    .values(
                        id=webhook_id,
                        tenant_id=caller.tenant_id,
                        kind=cmd.kind.value,
                        name=cmd.name,
                        url=cmd.url,
                        event_types=sorted({e.value for e in cmd.event_types}),
                        enabled=cmd.enabled,
                        secret_encrypted=box.get().seal(kept) if kept else None,
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(db.webhooks)
                )
            ).one()
        log.info("webhook_created", webhook_id=str(webhook_id), kind=cmd.kind.value)
        return WebhookIssued(webhook=webhook_view(row), secret=secret)

    @service.command(_cmd("list_webhooks"), ListWebhooks)
    async def list_webhooks(cmd: ListWebhooks) -> WebhookPage:
        _require_admin(cmd.caller)
        w = db.webhooks
        query = select(w).where(w.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(w.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(w.c.id.desc()).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
        return WebhookPage(items=[webhook_view(r) for r in rows], next_cursor=next_cursor)

    @service.command(_cmd("get_webhook"), WebhookRef)
    async def get_webhook(cmd: WebhookRef) -> WebhookView:
        _require_admin(cmd.caller)
        async with service.engine.connect() as conn:
            row = await db.webhook(conn, cmd.caller.tenant_id, _id(cmd.webhook_id, "webhook"))
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
        return webhook_view(row)

    @service.command(_cmd("update_webhook"), UpdateWebhook)
    async def update_webhook(cmd: UpdateWebhook) -> WebhookView:
        caller = cmd.caller
        _require_admin(caller)
        webhook_id = _id(cmd.webhook_id, "webhook")
        values: dict[str, Any] = {}
        if cmd.url is not None:
            problem = url_problem(cmd.url, settings.webhook_allow_private_targets)
            if problem:
                raise _url_refused(problem)
            values["url"] = cmd.url
        if cmd.name is not None:
            values["name"] = cmd.name
        if cmd.event_types is not None:
            values["event_types"] = sorted({e.value for e in cmd.event_types})
        if cmd.enabled is not None:
            values["enabled"] = cmd.enabled
        w = db.webhooks
        async with service.engine.begin() as conn:
            if "slack_signing_secret" in cmd.model_fields_set:
                kind = await conn.scalar(
                    select(w.c.kind).where(w.c.id == webhook_id, w.c.tenant_id == caller.tenant_id)
                )
                if kind is None:
                    raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
                if kind != WebhookKind.SLACK.value:
                    raise _slack_only(kind, stored=True)
                new_secret = cmd.slack_signing_secret
                values["secret_encrypted"] = box.get().seal(new_secret) if new_secret else None
            statement = update(w).where(w.c.id == webhook_id, w.c.tenant_id == caller.tenant_id)
            row = (
                await conn.execute(statement.values(**values, updated_at=datetime.now(UTC)).returning(w))
            ).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
        return webhook_view(row)

    @service.command(_cmd("delete_webhook"), WebhookRef)
    async def delete_webhook(cmd: WebhookRef) -> Done:
        _require_admin(cmd.caller)
        webhook_id = _id(cmd.webhook_id, "webhook")
        w = db.webhooks
        async with service.engine.begin() as conn:
            deleted = await conn.execute(
                delete(w).where(w.c.id == webhook_id, w.c.tenant_id == cmd.caller.tenant_id).returning(w.c.id)
            )
            if deleted.first() is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
        return Done()

    @service.command(_cmd("list_deliveries"), ListDeliveries)
    async def list_deliveries(cmd: ListDeliveries) -> DeliveryPage:
        _require_admin(cmd.caller)
        webhook_id = _id(cmd.webhook_id, "webhook")
        d = db.deliveries
        query = select(d).where(d.c.webhook_id == webhook_id, d.c.tenant_id == cmd.caller.tenant_id)
        if cmd.status is not None:
            query = query.where(d.c.status == cmd.status.value)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(d.c.id < after)
        async with service.engine.connect() as conn:
            if await db.webhook(conn, cmd.caller.tenant_id, webhook_id) is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
            rows = list((await conn.execute(query.order_by(d.c.id.desc()).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
        return DeliveryPage(items=[delivery_view(r) for r in rows], next_cursor=next_cursor)

    @service.command(_cmd("retry_delivery"), RetryDelivery)
    async def retry_delivery(cmd: RetryDelivery) -> DeliveryView:
        """A failed delivery gets a fresh series of attempts; a pending one is made due now."""
        _require_admin(cmd.caller)
        webhook_id, delivery_id = _id(cmd.webhook_id, "webhook"), _id(cmd.delivery_id, "delivery")
        d = db.deliveries
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(d)
                    .where(
                        d.c.id == delivery_id,
                        d.c.webhook_id == webhook_id,
                        d.c.tenant_id == cmd.caller.tenant_id,
                    )
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "delivery not found")
            if row.status == DeliveryStatus.SUCCEEDED.value:
                raise CommandFailed(ErrorCode.CONFLICT, "the delivery succeeded already")
            values: dict[str, Any] = {
                "status": DeliveryStatus.PENDING.value,
                "next_attempt_at": now,
                "updated_at": now,
            }
            if row.status == DeliveryStatus.FAILED.value:
                values["attempts"] = 0
            row = (
                await conn.execute(update(d).where(d.c.id == delivery_id).values(**values).returning(d))
            ).one()
        kick_deliveries()
        log.info("delivery_retried_by_hand", delivery_id=str(delivery_id), by=cmd.caller.user_id)
        return delivery_view(row)

    # ---- generic JSON sources

    def _compiled(mapping: JsonMapping) -> dict[str, Any]:
        try:
            return compile_mapping(mapping)
        except MappingProblem as exc:
            raise CommandFailed(
                ErrorCode.VALIDATION,
                str(exc),
                [{"loc": ["body", "mapping", exc.field_name], "msg": str(exc), "type": "jmespath_error"}],
            ) from exc

    def json_source_view(row: Any) -> JsonSourceView:
        return JsonSourceView(
            id=str(row.id),
            name=row.name,
            mapping=JsonMapping.model_validate(row.mapping),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @service.command(_cmd("preview_mapping"), PreviewMapping)
    async def preview_mapping(cmd: PreviewMapping) -> MappingPreview:
        _require_admin(cmd.caller)
        compiled = _compiled(cmd.mapping)
        try:
            return MappingPreview(alert=apply_mapping(compiled, cmd.mapping, cmd.sample), problem=None)
        except Unreadable as exc:
            return MappingPreview(alert=None, problem=str(exc))

    @service.command(_cmd("create_json_source"), CreateJsonSource)
    async def create_json_source(cmd: CreateJsonSource) -> JsonSourceView:
        caller = cmd.caller
        _require_admin(caller)
        _compiled(cmd.mapping)
        now, source_id = datetime.now(UTC), new_delivery_id()
        j = db.json_sources
        async with service.engine.begin() as conn:
            # Serialise creations of one tenant, so the cap holds under concurrent requests.
            await conn.execute(select(j.c.id).where(j.c.tenant_id == caller.tenant_id).with_for_update())
            mine = j.c.tenant_id == caller.tenant_id
            count = await conn.scalar(select(func.count()).select_from(j).where(mine))
            if (count or 0) >= settings.max_json_sources_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"an organisation has at most {settings.max_json_sources_per_tenant} JSON sources",
                )
            row = (
                await conn.execute(
                    j.insert()
                    .values(
                        id=source_id,
                        tenant_id=caller.tenant_id,
                        name=cmd.name,
                        mapping=cmd.mapping.model_dump(mode="json"),
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(j)
                )
            ).one()
        return json_source_view(row)

    @service.command(_cmd("list_json_sources"), ListJsonSources)
    async def list_json_sources(cmd: ListJsonSources) -> JsonSourcePage:
        _require_admin(cmd.caller)
        j = db.json_sources
        query = select(j).where(j.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(j.c.id < after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(j.c.id.desc()).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
        return JsonSourcePage(items=[json_source_view(r) for r in rows], next_cursor=next_cursor)

    async def _json_source(conn: Any, tenant_id: str, raw_id: str) -> Any:
        j = db.json_sources
        source_id = _id(raw_id, "JSON source")
        row = (await conn.execute(select(j).where(j.c.id == source_id, j.c.tenant_id == tenant_id))).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "JSON source not found")
        return row

    @service.command(_cmd("get_json_source"), JsonSourceRef)
    async def get_json_source(cmd: JsonSourceRef) -> JsonSourceView:
        _require_admin(cmd.caller)
        async with service.engine.connect() as conn:
            return json_source_view(await _json_source(conn, cmd.caller.tenant_id, cmd.source_id))

    @service.command(_cmd("update_json_source"), UpdateJsonSource)
    async def update_json_source(cmd: UpdateJsonSource) -> JsonSourceView:
        caller = cmd.caller
        _require_admin(caller)
        values: dict[str, Any] = {}
        if cmd.mapping is not None:
            _compiled(cmd.mapping)
            values["mapping"] = cmd.mapping.model_dump(mode="json")
        if cmd.name is not None:
            values["name"] = cmd.name
        j = db.json_sources
        async with service.engine.begin() as conn:
            row = await _json_source(conn, caller.tenant_id, cmd.source_id)
            values["updated_at"] = datetime.now(UTC)
            row = (await conn.execute(update(j).where(j.c.id == row.id).values(**values).returning(j))).one()
        return json_source_view(row)

    @service.command(_cmd("delete_json_source"), JsonSourceRef)
    async def delete_json_source(cmd: JsonSourceRef) -> Done:
        _require_admin(cmd.caller)
        j = db.json_sources
        async with service.engine.begin() as conn:
            row = await _json_source(conn, cmd.caller.tenant_id, cmd.source_id)
            await conn.execute(delete(j).where(j.c.id == row.id))
        return Done()

    @service.command(_cmd("receive_json"), ReceiveJson)
    async def receive_json(cmd: ReceiveJson) -> JsonAccepted:
        """Read the body with the source's mapping now (the mapping may change later), and store what
        it read as an alert notification; a body it cannot read is kept with the reason (a 422)."""
        source = cmd.source
        _require_scope(source, KeyScope.ALERTS_WRITE)
        async with service.engine.connect() as conn:
            row = await _json_source(conn, source.tenant_id, cmd.source_id)
        mapping = JsonMapping.model_validate(row.mapping)
        now = datetime.now(UTC)
        try:
            alert = apply_mapping(compile_mapping(mapping), mapping, cmd.body)
            payload = json_notification(str(row.id), row.name, alert, cmd.body, now)
        except (Unreadable, ValidationError) as exc:
            reason = str(exc) if isinstance(exc, Unreadable) else f"the mapped alert is invalid: {exc}"
            message = f"JSON source {row.name}: {reason}"[:500]
            async with service.engine.begin() as conn:
                await conn.execute(
                    db.rejections.insert().values(
                        id=new_delivery_id(),
                        tenant_id=source.tenant_id,
                        endpoint=InboundSource.JSON.value,
                        key_id=source.key_id,
                        received_at=now,
                        message=message,
                        details=[{"loc": ["body"], "msg": reason[:500], "type": "unreadable"}],
                        body=cmd.raw[:REJECTED_BODY_KEPT],
                        body_truncated=len(cmd.raw) > REJECTED_BODY_KEPT,
                    )
                )
                await db.prune_rejections(conn, source.tenant_id, settings.rejections_kept_per_tenant)
            raise CommandFailed(
                ErrorCode.VALIDATION, message, [{"loc": ["body"], "msg": reason[:500], "type": "unreadable"}]
            ) from exc
        delivery_id = new_delivery_id()
        async with service.engine.begin() as conn:
            await conn.execute(
                db.inbound.insert().values(
                    id=delivery_id,
                    tenant_id=source.tenant_id,
                    source=InboundSource.JSON.value,
                    key_id=source.key_id,
                    correlation_id=cmd.correlation_id[:64],
                    group_key=payload.groupKey,
                    alert_count=1,
                    payload=payload.model_dump(mode="json"),
                    status=InboundStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    received_at=now,
                )
            )
        processor.kick()
        return JsonAccepted(delivery_id=str(delivery_id), alert=alert)

    # ---- maintenance windows and silences

    def silence_view(row: Any, now: datetime) -> SilenceView:
        spec = SilenceSpec.model_validate(row.spec)
        state, change_at = silence_state(spec, now)
        return SilenceView(
            **spec.model_dump(),
            id=str(row.id),
            state=state,
            next_change_at=change_at,
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def _require_responder(caller: Caller) -> None:
        if not caller.role.at_least(Role.RESPONDER):
            raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage silences")

    @service.command(_cmd("create_silence"), CreateSilence)
    async def create_silence(cmd: CreateSilence) -> SilenceView:
        caller, spec = cmd.caller, cmd.silence
        _require_responder(caller)
        problem = silence_problem(spec)
        if problem is not None:
            where, why = problem
            raise CommandFailed(
                ErrorCode.VALIDATION,
                f"{where}: {why}",
                [{"loc": ["body", *where.split(".")], "msg": why, "type": "value_error"}],
            )
        now, silence_id = datetime.now(UTC), new_delivery_id()
        s = db.silences
        async with service.engine.begin() as conn:
            await conn.execute(select(s.c.id).where(s.c.tenant_id == caller.tenant_id).with_for_update())
            count = await conn.scalar(
                select(func.count()).select_from(s).where(s.c.tenant_id == caller.tenant_id)
            )
            if (count or 0) >= settings.max_silences_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"an organisation has at most {settings.max_silences_per_tenant} silences",
                )
            row = (
                await conn.execute(
                    s.insert()
                    .values(
                        id=silence_id,
                        tenant_id=caller.tenant_id,
                        spec=spec.model_dump(mode="json"),
                        created_by=caller.user_id,
                        created_at=now,
                    )
                    .returning(s)
                )
            ).one()
        log.info("silence_created", silence_id=str(silence_id), by=caller.user_id)
        return silence_view(row, now)

    @service.command(_cmd("list_silences"), ListSilences)
    async def list_silences(cmd: ListSilences) -> SilencePage:
        # At most max_silences_per_tenant rows: their states are worked out here, then paged.
        now = datetime.now(UTC)
        async with service.engine.connect() as conn:
            rows = await db.tenant_silences(conn, cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        views = [silence_view(r, now) for r in rows if after is None or r.id < after]
        if cmd.state is not None:
            views = [v for v in views if v.state is cmd.state]
        page, next_cursor = _page(views, cmd.limit)
        return SilencePage(items=page, next_cursor=next_cursor)

    async def _silence_row(conn: Any, tenant_id: str, raw_id: str) -> Any:
        s = db.silences
        silence_id = _id(raw_id, "silence")
        row = (await conn.execute(select(s).where(s.c.id == silence_id, s.c.tenant_id == tenant_id))).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "silence not found")
        return row

    @service.command(_cmd("get_silence"), SilenceRef)
    async def get_silence(cmd: SilenceRef) -> SilenceView:
        async with service.engine.connect() as conn:
            return silence_view(
                await _silence_row(conn, cmd.caller.tenant_id, cmd.silence_id), datetime.now(UTC)
            )

    @service.command(_cmd("delete_silence"), SilenceRef)
    async def delete_silence(cmd: SilenceRef) -> Done:
        """Ends it now: alerts arriving from then on are not silenced (those recorded stay so)."""
        _require_responder(cmd.caller)
        async with service.engine.begin() as conn:
            row = await _silence_row(conn, cmd.caller.tenant_id, cmd.silence_id)
            await conn.execute(delete(db.silences).where(db.silences.c.id == row.id))
        return Done()

    # ---- correlation rules

    def correlation_rule_view(row: Any) -> CorrelationRuleView:
        return CorrelationRuleView(
            **CorrelationRuleSpec.model_validate(row.spec).model_dump(),
            id=str(row.id),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @service.command(_cmd("create_correlation_rule"), CreateCorrelationRule)
    async def create_correlation_rule(cmd: CreateCorrelationRule) -> CorrelationRuleView:
        caller = cmd.caller
        _require_admin(caller)
        now, rule_id = datetime.now(UTC), new_delivery_id()
        c = db.correlation_rules
        async with service.engine.begin() as conn:
            # Serialise creations of one tenant, so the cap holds under concurrent requests.
            await conn.execute(select(c.c.id).where(c.c.tenant_id == caller.tenant_id).with_for_update())
            count = await conn.scalar(
                select(func.count()).select_from(c).where(c.c.tenant_id == caller.tenant_id)
            )
            if (count or 0) >= settings.max_correlation_rules_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"an organisation has at most {settings.max_correlation_rules_per_tenant} "
                    "correlation rules",
                )
            row = (
                await conn.execute(
                    c.insert()
                    .values(
                        id=rule_id,
                        tenant_id=caller.tenant_id,
                        spec=cmd.rule.model_dump(mode="json"),
                        created_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(c)
                )
            ).one()
        log.info("correlation_rule_created", rule_id=str(rule_id), by=caller.user_id)
        return correlation_rule_view(row)

    @service.command(_cmd("list_correlation_rules"), ListCorrelationRules)
    async def list_correlation_rules(cmd: ListCorrelationRules) -> CorrelationRulePage:
        """Oldest first: the order they are tried in."""
        _require_admin(cmd.caller)
        c = db.correlation_rules
        query = select(c).where(c.c.tenant_id == cmd.caller.tenant_id)
        after = _cursor(cmd.cursor)
        if after is not None:
            query = query.where(c.c.id > after)
        async with service.engine.connect() as conn:
            rows = list((await conn.execute(query.order_by(c.c.id).limit(cmd.limit + 1))).all())
        rows, next_cursor = _page(rows, cmd.limit)
        return CorrelationRulePage(items=[correlation_rule_view(r) for r in rows], next_cursor=next_cursor)

    async def _correlation_rule(conn: Any, tenant_id: str, raw_id: str, lock: bool = False) -> Any:
        c = db.correlation_rules
        rule_id = _id(raw_id, "correlation rule")
        query = select(c).where(c.c.id == rule_id, c.c.tenant_id == tenant_id)
        row = (await conn.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "correlation rule not found")
        return row

    @service.command(_cmd("get_correlation_rule"), CorrelationRuleRef)
    async def get_correlation_rule(cmd: CorrelationRuleRef) -> CorrelationRuleView:
        _require_admin(cmd.caller)
        async with service.engine.connect() as conn:
            return correlation_rule_view(await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id))

    @service.command(_cmd("update_correlation_rule"), UpdateCorrelationRule)
    async def update_correlation_rule(cmd: UpdateCorrelationRule) -> CorrelationRuleView:
        """What is given changes; alerts arriving from then on are decided by the rule as it is now."""
        _require_admin(cmd.caller)
        changes = cmd.model_dump(
            mode="json", include={"name", "labels", "window_minutes", "sources", "enabled"}, exclude_none=True
        )
        c = db.correlation_rules
        async with service.engine.begin() as conn:
            row = await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id, lock=True)
            spec = CorrelationRuleSpec.model_validate({**row.spec, **changes})
            row = (
                await conn.execute(
                    update(c)
                    .where(c.c.id == row.id)
                    .values(spec=spec.model_dump(mode="json"), updated_at=datetime.now(UTC))
                    .returning(c)
                )
            ).one()
        return correlation_rule_view(row)

    @service.command(_cmd("delete_correlation_rule"), CorrelationRuleRef)
    async def delete_correlation_rule(cmd: CorrelationRuleRef) -> Done:
        """Alerts already correlated stay in their incidents."""
        _require_admin(cmd.caller)
        async with service.engine.begin() as conn:
            row = await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id)
            await conn.execute(delete(db.correlation_rules).where(db.correlation_rules.c.id == row.id))
        return Done()

    @service.command(_cmd("preview_correlation"), PreviewCorrelation)
    async def preview_correlation(cmd: PreviewCorrelation) -> CorrelationPreview:
        """Which of the last day's firing alerts the rule (enabled or not) would have put together,
        read from the notifications integrations keeps (`GET .../inbound`)."""
        _require_admin(cmd.caller)
        until = datetime.now(UTC)
        since = until - timedelta(days=1)
        limit = settings.correlation_preview_alerts
        sources = [InboundSource.ALERTMANAGER.value, InboundSource.PAGERDUTY.value, InboundSource.JSON.value]
        async with service.engine.connect() as conn:
            rows = await db.recent_inbound_alerts(conn, cmd.caller.tenant_id, since, sources, limit)
        received: list[ReceivedAlert] = []
        seen: set[tuple[str, str, datetime]] = set()
        for row in rows:
            for item in received_alerts(row):
                # Alertmanager re-sends a firing alert every repeat_interval: one instance, once.
                instance = (item.group_key, item.alert.fingerprint, item.alert.starts_at)
                if instance not in seen:
                    seen.add(instance)
                    received.append(item)
        truncated = len(rows) >= limit or len(received) > limit
        received = received[:limit]
        clusters = preview_clusters(Rule.of("preview", cmd.rule), received)
        before, after = incidents_after(received, clusters)
        return CorrelationPreview(
            since=since,
            until=until,
            alerts_considered=len(received),
            truncated=truncated,
            clusters=[
                PreviewCluster(
                    labels=dict(zip(cmd.rule.labels, cluster.key, strict=True)),
                    groups=cluster.groups,
                    alerts=[
                        PreviewAlert(
                            delivery_id=m.delivery_id,
                            received_at=m.received_at,
                            starts_at=m.alert.starts_at,
                            source=source_of_group(m.group_key),
                            alertname=m.alert.alertname,
                            fingerprint=m.alert.fingerprint,
                            incident_id=m.incident_id,
                        )
                        for m in cluster.members[:100]
                    ],
                    incident_ids=sorted({m.incident_id for m in cluster.members if m.incident_id}),
                )
                for cluster in clusters[:100]
            ],
            incidents_before=before,
            incidents_after=after,
        )

    # ---- events to notifications

    @service.consume(INTEGRATIONS_NOTIFIER, FILTER_SUBJECTS, db.consumed, max_in_flight=32)
    async def notify(delivery: Delivery) -> None:
        # Imported history updates the view but notifies nobody: it happened elsewhere, long ago.
        queued = await enqueue_for(
            service, settings, delivery.event, delivery.data, delivery.raw, notify=not delivery.imported
        )
        if queued:
            kick_deliveries()
