"""What integrations' command handlers share: the service, the settings, the secret box, the inbound
processor and the delivery loop (both started with the service), and the checks most handlers
make first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.commands import Caller, CommandFailed, ErrorCode
from contracts.events import KeyScope, Role
from contracts.integrations import IntegrationSource
from integrations.alertmanager import InboundProcessor
from integrations.crypto import SecretBox
from integrations.outbound import DeliveryLoop
from integrations.settings import IntegrationsSettings
from runtime.service import Service


@dataclass
class Integrations:
    service: Service
    settings: IntegrationsSettings
    processor: InboundProcessor
    # The secret box and the delivery loop exist once the service has started (the box's key
    # may come from the database).
    box_value: SecretBox | None = None
    loops: list[DeliveryLoop] = field(default_factory=list)

    def box(self) -> SecretBox:
        if self.box_value is None:
            raise CommandFailed(ErrorCode.UNAVAILABLE, "integrations is starting")
        return self.box_value

    def kick_deliveries(self) -> None:
        for loop in self.loops:
            loop.kick()


def require_scope(source: IntegrationSource, scope: KeyScope) -> None:
    if scope not in source.scopes:
        raise CommandFailed(ErrorCode.FORBIDDEN, f"this key lacks the scope {scope.value}")


def require_admin(caller: Caller) -> None:
    if not caller.role.at_least(Role.ADMIN):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage integrations")


def require_responder(caller: Caller) -> None:
    if not caller.role.at_least(Role.RESPONDER):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not manage silences")


def at_most(count: int, cap: int, what: str) -> None:
    """A per-tenant cap, checked with the tenant's rows locked (db.lock_and_count)."""
    if count >= cap:
        raise CommandFailed(ErrorCode.CONFLICT, f"an organisation has at most {cap} {what}")


def found(row: Any, what: str) -> Any:
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, f"{what} not found")
    return row


def page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Rows are fetched limit + 1, newest first (UUIDv7 ids): the extra one says there is more."""
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1].id)
    return rows, None
