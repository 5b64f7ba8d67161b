"""integrations' webhook commands: the tenant's outgoing webhooks and their deliveries."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.integrations import (
    CreateWebhook,
    DeleteWebhook,
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
    GetWebhook,
    ListDeliveries,
    ListWebhooks,
    RetryDelivery,
    UpdateWebhook,
    WebhookIssued,
    WebhookKind,
    WebhookPage,
    WebhookView,
)
from integrations import db
from integrations.alertmanager import new_delivery_id
from integrations.context import Integrations, at_most, found, page, require_admin
from integrations.domain import SECRET_PREFIX, retried_delivery, url_problem
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id

log = structlog.get_logger(__name__)


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


def _check_url(it: Integrations, url: str) -> None:
    problem = url_problem(url, it.settings.webhook_allow_private_targets)
    if problem:
        raise CommandFailed(
            ErrorCode.VALIDATION, problem, [{"loc": ["body", "url"], "msg": problem, "type": "value_error"}]
        )


def _slack_only(kind: str, stored: bool = False) -> CommandFailed:
    """A signing secret for a webhook that is not Slack's: bad input when the body names the kind
    (a creation), a conflict with the webhook as it is when the kind is the stored one (a change)."""
    message = f"a {kind} webhook has no Slack signing secret"
    return CommandFailed(
        ErrorCode.CONFLICT if stored else ErrorCode.VALIDATION,
        message,
        [{"loc": ["body", "slack_signing_secret"], "msg": message, "type": "value_error"}],
    )


async def create_webhook(it: Integrations, cmd: CreateWebhook) -> WebhookIssued:
    caller = cmd.caller
    require_admin(caller)
    _check_url(it, cmd.url)
    secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}" if cmd.kind is WebhookKind.GENERIC else None
    if cmd.slack_signing_secret is not None and cmd.kind is not WebhookKind.SLACK:
        raise _slack_only(cmd.kind.value)
    # Stored where a generic webhook keeps its own: the one secret a webhook of either kind has.
    kept = secret or cmd.slack_signing_secret
    now, webhook_id = datetime.now(UTC), new_delivery_id()
    async with it.service.engine.begin() as conn:
        count = await db.lock_and_count(conn, db.webhooks, caller.tenant_id)
        at_most(count, it.settings.max_webhooks_per_tenant, "webhooks")
        row = await db.insert_webhook(
            conn,
            {
                "id": webhook_id,
                "tenant_id": caller.tenant_id,
                "kind": cmd.kind.value,
                "name": cmd.name,
                "url": cmd.url,
                "event_types": sorted({e.value for e in cmd.event_types}),
                "enabled": cmd.enabled,
                "secret_encrypted": it.box().seal(kept) if kept else None,
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    log.info("webhook_created", webhook_id=str(webhook_id), kind=cmd.kind.value)
    return WebhookIssued(webhook=webhook_view(row), secret=secret)


async def list_webhooks(it: Integrations, cmd: ListWebhooks) -> WebhookPage:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        rows = await db.webhooks_page(conn, cmd.caller.tenant_id, _cursor(cmd.cursor), cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    return WebhookPage(items=[webhook_view(r) for r in rows], next_cursor=next_cursor)


async def get_webhook(it: Integrations, cmd: GetWebhook) -> WebhookView:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        row = await db.webhook(conn, cmd.caller.tenant_id, _id(cmd.webhook_id, "webhook"))
    return webhook_view(found(row, "webhook"))


async def update_webhook(it: Integrations, cmd: UpdateWebhook) -> WebhookView:
    caller = cmd.caller
    require_admin(caller)
    webhook_id = _id(cmd.webhook_id, "webhook")
    values: dict[str, Any] = {}
    if cmd.url is not None:
        _check_url(it, cmd.url)
        values["url"] = cmd.url
    if cmd.name is not None:
        values["name"] = cmd.name
    if cmd.event_types is not None:
        values["event_types"] = sorted({e.value for e in cmd.event_types})
    if cmd.enabled is not None:
        values["enabled"] = cmd.enabled
    async with it.service.engine.begin() as conn:
        if "slack_signing_secret" in cmd.model_fields_set:
            kind = found(await db.webhook_kind(conn, caller.tenant_id, webhook_id), "webhook")
            if kind != WebhookKind.SLACK.value:
                raise _slack_only(kind, stored=True)
            new_secret = cmd.slack_signing_secret
            values["secret_encrypted"] = it.box().seal(new_secret) if new_secret else None
        row = await db.update_webhook(
            conn, caller.tenant_id, webhook_id, {**values, "updated_at": datetime.now(UTC)}
        )
    return webhook_view(found(row, "webhook"))


async def delete_webhook(it: Integrations, cmd: DeleteWebhook) -> Done:
    require_admin(cmd.caller)
    webhook_id = _id(cmd.webhook_id, "webhook")
    async with it.service.engine.begin() as conn:
        if not await db.delete_webhook(conn, cmd.caller.tenant_id, webhook_id):
            raise CommandFailed(ErrorCode.NOT_FOUND, "webhook not found")
    return Done()


async def list_deliveries(it: Integrations, cmd: ListDeliveries) -> DeliveryPage:
    require_admin(cmd.caller)
    webhook_id = _id(cmd.webhook_id, "webhook")
    status = cmd.status.value if cmd.status is not None else None
    after = _cursor(cmd.cursor)
    async with it.service.engine.connect() as conn:
        found(await db.webhook(conn, cmd.caller.tenant_id, webhook_id), "webhook")
        rows = await db.deliveries_page(conn, cmd.caller.tenant_id, webhook_id, status, after, cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    return DeliveryPage(items=[delivery_view(r) for r in rows], next_cursor=next_cursor)


async def retry_delivery(it: Integrations, cmd: RetryDelivery) -> DeliveryView:
    """A failed delivery gets a fresh series of attempts; a pending one is made due now."""
    require_admin(cmd.caller)
    webhook_id, delivery_id = _id(cmd.webhook_id, "webhook"), _id(cmd.delivery_id, "delivery")
    now = datetime.now(UTC)
    async with it.service.engine.begin() as conn:
        row = found(await db.locked_delivery(conn, cmd.caller.tenant_id, webhook_id, delivery_id), "delivery")
        values = retried_delivery(DeliveryStatus(row.status), now)
        if values is None:
            raise CommandFailed(ErrorCode.CONFLICT, "the delivery succeeded already")
        row = await db.update_delivery(conn, delivery_id, values)
    it.kick_deliveries()
    log.info("delivery_retried_by_hand", delivery_id=str(delivery_id), by=cmd.caller.user_id)
    return delivery_view(row)


def register_webhook_handlers(it: Integrations) -> None:
    handles = it.service.handles
    handles(CreateWebhook)(partial(create_webhook, it))
    handles(ListWebhooks)(partial(list_webhooks, it))
    handles(GetWebhook)(partial(get_webhook, it))
    handles(UpdateWebhook)(partial(update_webhook, it))
    handles(DeleteWebhook)(partial(delete_webhook, it))
    handles(ListDeliveries)(partial(list_deliveries, it))
    handles(RetryDelivery)(partial(retry_delivery, it))
