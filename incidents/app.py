"""incidents' wiring."""

from __future__ import annotations

from incidents import db
from incidents.handlers import register_handlers
from incidents.settings import IncidentsSettings
from runtime.service import Service


def build() -> Service:
    settings = IncidentsSettings()
    service = Service(
        "incidents",
        settings,
        outbox=db.outbox,
        command_workers=settings.command_workers,
        ordered_by="incident_id",
    )
    register_handlers(service)
    return service
