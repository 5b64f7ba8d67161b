"""ai_worker's wiring."""

from __future__ import annotations

from ai_worker import db
from ai_worker.handlers import register_handlers
from ai_worker.settings import AiWorkerSettings
from runtime.service import Service


def build() -> Service:
    settings = AiWorkerSettings()
    service = Service("ai_worker", settings, outbox=db.outbox)
    register_handlers(service, settings)
    return service
