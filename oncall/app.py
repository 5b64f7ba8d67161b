"""oncall's wiring: schedules, overrides and who is on call."""

from __future__ import annotations

from oncall import db
from oncall.handlers import register_handlers
from oncall.settings import OncallSettings
from runtime.service import Service


def build() -> Service:
    settings = OncallSettings()
    service = Service("oncall", settings, outbox=db.outbox)
    register_handlers(service, settings)
    return service
