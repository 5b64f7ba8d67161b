"""integrations' wiring: inbound Alertmanager/Grafana notifications and deploys, outbound Slack and
signed webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integrations import db
from integrations.handlers import register_handlers
from integrations.settings import IntegrationsSettings
from runtime.service import Service


def build() -> Service:
    settings = IntegrationsSettings()
    service = Service("integrations", settings, outbox=db.outbox)
    register_handlers(service, settings)

    async def prune() -> int:
        now = datetime.now(UTC)
        inbound = await db.prune_inbound(
            service.engine, now - timedelta(days=settings.inbound_retention_days)
        )
        deliveries = await db.prune_deliveries(
            service.engine, now - timedelta(days=settings.delivery_retention_days)
        )
        return inbound + deliveries

    service.every("prune", settings.prune_interval_seconds, prune)
    return service
