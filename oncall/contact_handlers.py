"""Contact methods: how each person (their own, no one else's) is notified of a page."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from contracts.commands import Caller, CommandFailed, Done, ErrorCode
from contracts.events import Role
from contracts.oncall import (
    ChannelKind,
    ContactMethodIssued,
    ContactMethodPage,
    ContactMethodView,
    CreateContactMethod,
    DeleteContactMethod,
    GetContactMethod,
    ListContactMethods,
)
from oncall import db
from oncall.context import Oncall, field_problem, new_id
from oncall.domain import contact_address
from runtime.command_args import object_id as _id


def contact_view(row: Any) -> ContactMethodView:
    return ContactMethodView(
        id=str(row.id),
        user_id=row.user_id,
        kind=ChannelKind(row.kind),
        address=row.address,
        delay_minutes=row.delay_minutes,
        created_at=row.created_at,
    )


async def create_contact_method(oc: Oncall, cmd: CreateContactMethod) -> ContactMethodIssued:
    caller = cmd.caller
    if not caller.role.at_least(Role.RESPONDER):
        raise CommandFailed(ErrorCode.FORBIDDEN, "viewers are not paged")
    try:
        address = contact_address(cmd.kind, cmd.address)
    except ValueError as exc:
        raise field_problem(["body", "address"], str(exc)) from None
    secret = f"whsec_{secrets.token_urlsafe(32)}" if cmd.kind is ChannelKind.WEBHOOK else None
    async with oc.service.engine.begin() as conn:
        row = await db.insert_contact_method(
            conn,
            {
                "id": new_id(),
                "tenant_id": caller.tenant_id,
                "user_id": caller.user_id,
                "kind": cmd.kind.value,
                "address": address,
                "delay_minutes": cmd.delay_minutes,
                "secret": secret,
                "created_at": datetime.now(UTC),
            },
        )
    return ContactMethodIssued(**contact_view(row).model_dump(), secret=secret)


async def list_contact_methods(oc: Oncall, cmd: ListContactMethods) -> ContactMethodPage:
    async with oc.service.engine.connect() as conn:
        rows = await db.contact_methods_of(conn, cmd.caller.tenant_id, [cmd.caller.user_id])
        return ContactMethodPage(items=[contact_view(r) for r in rows])


async def own_method(oc: Oncall, caller: Caller, raw: str) -> Any:
    async with oc.service.engine.connect() as conn:
        row = await db.contact_method(conn, caller.tenant_id, caller.user_id, _id(raw, "contact method"))
    if row is None:
        raise CommandFailed(ErrorCode.NOT_FOUND, "contact method not found")
    return row


async def get_contact_method(oc: Oncall, cmd: GetContactMethod) -> ContactMethodView:
    return contact_view(await own_method(oc, cmd.caller, cmd.contact_method_id))


async def delete_contact_method(oc: Oncall, cmd: DeleteContactMethod) -> Done:
    row = await own_method(oc, cmd.caller, cmd.contact_method_id)
    async with oc.service.engine.begin() as conn:
        await db.delete_contact_method(conn, row.id)
    return Done()
