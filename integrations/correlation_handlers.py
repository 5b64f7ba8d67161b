"""integrations' correlation rules: firing alerts of other groups sharing a rule's labels within its
window join one open incident. Their management, and the preview of what a rule would have done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import Done
from contracts.integrations import (
    CorrelationPreview,
    CorrelationRulePage,
    CorrelationRuleSpec,
    CorrelationRuleView,
    CreateCorrelationRule,
    DeleteCorrelationRule,
    GetCorrelationRule,
    InboundSource,
    ListCorrelationRules,
    PreviewAlert,
    PreviewCluster,
    PreviewCorrelation,
    UpdateCorrelationRule,
)
from integrations import db
from integrations.alertmanager import new_delivery_id, received_alerts
from integrations.context import Integrations, at_most, found, page, require_admin
from integrations.domain import Rule, distinct_instances, incidents_after, preview_clusters, source_of_group
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id

log = structlog.get_logger(__name__)


def correlation_rule_view(row: Any) -> CorrelationRuleView:
    return CorrelationRuleView(
        **CorrelationRuleSpec.model_validate(row.spec).model_dump(),
        id=str(row.id),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _correlation_rule(conn: AsyncConnection, tenant_id: str, raw_id: str, lock: bool = False) -> Any:
    rule_id = _id(raw_id, "correlation rule")
    return found(await db.correlation_rule(conn, tenant_id, rule_id, lock=lock), "correlation rule")


async def create_correlation_rule(it: Integrations, cmd: CreateCorrelationRule) -> CorrelationRuleView:
    caller = cmd.caller
    require_admin(caller)
    now, rule_id = datetime.now(UTC), new_delivery_id()
    async with it.service.engine.begin() as conn:
        count = await db.lock_and_count(conn, db.correlation_rules, caller.tenant_id)
        at_most(count, it.settings.max_correlation_rules_per_tenant, "correlation rules")
        row = await db.insert_correlation_rule(
            conn,
            {
                "id": rule_id,
                "tenant_id": caller.tenant_id,
                "spec": cmd.rule.model_dump(mode="json"),
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    log.info("correlation_rule_created", rule_id=str(rule_id), by=caller.user_id)
    return correlation_rule_view(row)


async def list_correlation_rules(it: Integrations, cmd: ListCorrelationRules) -> CorrelationRulePage:
    """Oldest first: the order they are tried in."""
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        rows = await db.correlation_rules_page(conn, cmd.caller.tenant_id, _cursor(cmd.cursor), cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    return CorrelationRulePage(items=[correlation_rule_view(r) for r in rows], next_cursor=next_cursor)


async def get_correlation_rule(it: Integrations, cmd: GetCorrelationRule) -> CorrelationRuleView:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        return correlation_rule_view(await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id))


async def update_correlation_rule(it: Integrations, cmd: UpdateCorrelationRule) -> CorrelationRuleView:
    """What is given changes; alerts arriving from then on are decided by the rule as it is now."""
    require_admin(cmd.caller)
    changes = cmd.model_dump(
        mode="json", include={"name", "labels", "window_minutes", "sources", "enabled"}, exclude_none=True
    )
    async with it.service.engine.begin() as conn:
        row = await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id, lock=True)
        spec = CorrelationRuleSpec.model_validate({**row.spec, **changes})
        row = await db.update_correlation_rule(
            conn, row.id, {"spec": spec.model_dump(mode="json"), "updated_at": datetime.now(UTC)}
        )
    return correlation_rule_view(row)


async def delete_correlation_rule(it: Integrations, cmd: DeleteCorrelationRule) -> Done:
    """Alerts already correlated stay in their incidents."""
    require_admin(cmd.caller)
    async with it.service.engine.begin() as conn:
        row = await _correlation_rule(conn, cmd.caller.tenant_id, cmd.rule_id)
        await db.delete_correlation_rule(conn, row.id)
    return Done()


async def preview_correlation(it: Integrations, cmd: PreviewCorrelation) -> CorrelationPreview:
    """Which of the last day's firing alerts the rule (enabled or not) would have put together,
    read from the notifications integrations keeps (`GET .../inbound`)."""
    require_admin(cmd.caller)
    until = datetime.now(UTC)
    since = until - timedelta(days=1)
    limit = it.settings.correlation_preview_alerts
    sources = [InboundSource.ALERTMANAGER.value, InboundSource.PAGERDUTY.value, InboundSource.JSON.value]
    async with it.service.engine.connect() as conn:
        rows = await db.recent_inbound_alerts(conn, cmd.caller.tenant_id, since, sources, limit)
    received = distinct_instances([item for row in rows for item in received_alerts(row)])
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


def register_correlation_handlers(it: Integrations) -> None:
    handles = it.service.handles
    handles(CreateCorrelationRule)(partial(create_correlation_rule, it))
    handles(ListCorrelationRules)(partial(list_correlation_rules, it))
    handles(GetCorrelationRule)(partial(get_correlation_rule, it))
    handles(UpdateCorrelationRule)(partial(update_correlation_rule, it))
    handles(DeleteCorrelationRule)(partial(delete_correlation_rule, it))
    handles(PreviewCorrelation)(partial(preview_correlation, it))
