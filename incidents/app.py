"""incidents' wiring."""

from __future__ import annotations

from incidents import db
from incidents.handlers import register_handlers
from incidents.settings import IncidentsSettings
from runtime.service import Service


def build() -> Service:
    service = Service("incidents", IncidentsSettings(), outbox=db.outbox)
    register_handlers(service)
    return service
