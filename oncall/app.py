"""oncall's wiring: schedules and who is on call; escalation policies, routing, contact methods;
the `oncall_escalator` consumer, the timer loop and the notifier (oncall/paging.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oncall import db
from oncall.handlers import register_handlers
from oncall.settings import OncallSettings
from runtime.service import Service


def build() -> Service:
    settings = OncallSettings()
    service = Service("oncall", settings, outbox=db.outbox)
    register_handlers(service, settings)

    async def prune() -> int:
        older_than = datetime.now(UTC) - timedelta(days=settings.escalation_retention_days)
        return await db.prune_escalations(service.engine, older_than)

    service.every("prune", settings.prune_interval_seconds, prune)
    return service
