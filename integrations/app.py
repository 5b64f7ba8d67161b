"""integrations' wiring: inbound Alertmanager/Grafana notifications and deploys, outbound Slack and
signed webhooks."""

from __future__ import annotations

from integrations import db
from integrations.handlers import register_handlers
from integrations.settings import IntegrationsSettings
from runtime.service import Service


def build() -> Service:
    settings = IntegrationsSettings()
    service = Service("integrations", settings, outbox=db.outbox)
    register_handlers(service, settings)
    return service
