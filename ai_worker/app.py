"""ai_worker's wiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_worker import db
from ai_worker.handlers import register_handlers
from ai_worker.settings import AiWorkerSettings
from runtime.service import Service


def build() -> Service:
    settings = AiWorkerSettings()
    service = Service("ai_worker", settings, outbox=db.outbox)
    register_handlers(service, settings)

    async def prune() -> int:
        older_than = datetime.now(UTC) - timedelta(days=settings.trigger_retention_days)
        return await db.prune_triggers(service.engine, older_than)

    service.every("prune", settings.prune_interval_seconds, prune)
    return service
