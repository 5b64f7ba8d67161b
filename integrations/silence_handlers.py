"""integrations' maintenance windows and silences: while one is on, matching firing alerts are
recorded as silenced and open no incident."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.integrations import (
    CreateSilence,
    DeleteSilence,
    GetSilence,
    ListSilences,
    SilencePage,
    SilenceSpec,
    SilenceView,
)
from integrations import db
from integrations.alertmanager import new_delivery_id
from integrations.context import Integrations, at_most, found, page, require_responder
from integrations.domain import silence_problem, silence_state
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id

log = structlog.get_logger(__name__)


def silence_view(row: Any, now: datetime) -> SilenceView:
    spec = SilenceSpec.model_validate(row.spec)
    state, change_at = silence_state(spec, now)
    return SilenceView(
        **spec.model_dump(),
        id=str(row.id),
        state=state,
        next_change_at=change_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def _silence_row(conn: AsyncConnection, tenant_id: str, raw_id: str) -> Any:
    return found(await db.silence(conn, tenant_id, _id(raw_id, "silence")), "silence")


async def create_silence(it: Integrations, cmd: CreateSilence) -> SilenceView:
    caller, spec = cmd.caller, cmd.silence
    require_responder(caller)
    problem = silence_problem(spec)
    if problem is not None:
        where, why = problem
        raise CommandFailed(
            ErrorCode.VALIDATION,
            f"{where}: {why}",
            [{"loc": ["body", *where.split(".")], "msg": why, "type": "value_error"}],
        )
    now, silence_id = datetime.now(UTC), new_delivery_id()
    async with it.service.engine.begin() as conn:
        count = await db.lock_and_count(conn, db.silences, caller.tenant_id)
        at_most(count, it.settings.max_silences_per_tenant, "silences")
        row = await db.insert_silence(
            conn,
            {
                "id": silence_id,
                "tenant_id": caller.tenant_id,
                "spec": spec.model_dump(mode="json"),
                "created_by": caller.user_id,
                "created_at": now,
            },
        )
    log.info("silence_created", silence_id=str(silence_id), by=caller.user_id)
    return silence_view(row, now)


async def list_silences(it: Integrations, cmd: ListSilences) -> SilencePage:
    # At most max_silences_per_tenant rows: their states are worked out here, then paged.
    now = datetime.now(UTC)
    async with it.service.engine.connect() as conn:
        rows = await db.tenant_silences(conn, cmd.caller.tenant_id)
    after = _cursor(cmd.cursor)
    views = [silence_view(r, now) for r in rows if after is None or r.id < after]
    if cmd.state is not None:
        views = [v for v in views if v.state is cmd.state]
    items, next_cursor = page(views, cmd.limit)
    return SilencePage(items=items, next_cursor=next_cursor)


async def get_silence(it: Integrations, cmd: GetSilence) -> SilenceView:
    async with it.service.engine.connect() as conn:
        return silence_view(await _silence_row(conn, cmd.caller.tenant_id, cmd.silence_id), datetime.now(UTC))


async def delete_silence(it: Integrations, cmd: DeleteSilence) -> Done:
    """Ends it now: alerts arriving from then on are not silenced (those recorded stay so)."""
    require_responder(cmd.caller)
    async with it.service.engine.begin() as conn:
        row = await _silence_row(conn, cmd.caller.tenant_id, cmd.silence_id)
        await db.delete_silence(conn, row.id)
    return Done()


def register_silence_handlers(it: Integrations) -> None:
    handles = it.service.handles
    handles(CreateSilence)(partial(create_silence, it))
    handles(ListSilences)(partial(list_silences, it))
    handles(GetSilence)(partial(get_silence, it))
    handles(DeleteSilence)(partial(delete_silence, it))
