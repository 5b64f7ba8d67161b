"""integrations' wiring. It joins the bus and answers health pings; the Alertmanager, deploy and
outbound handlers arrive with the integrations issue."""

from __future__ import annotations

from integrations.settings import IntegrationsSettings
from runtime.service import Service


def build() -> Service:
    return Service("integrations", IntegrationsSettings())
