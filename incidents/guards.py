"""What every incidents handler checks first: that the caller may change incidents, and the
caller's incident, locked for the transaction (another tenant's is not found)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import Caller, CommandFailed, ErrorCode
from contracts.events import IncidentSnapshot, Role
from incidents import db


def require_responder(caller: Caller) -> None:
    if not caller.role.at_least(Role.RESPONDER):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {caller.role.value} may not change incidents")


async def locked_incident(conn: AsyncConnection, caller: Caller, incident_id: uuid.UUID) -> IncidentSnapshot:
    row = await db.locked_incident(conn, caller.tenant_id, incident_id)
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, "incident not found")
    return db.snapshot_of(row)
