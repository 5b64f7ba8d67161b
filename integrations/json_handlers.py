"""integrations' generic JSON sources: their management, the preview of a mapping, and the bodies
POSTed to one."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import CommandFailed, Done, ErrorCode
from contracts.events import KeyScope
from contracts.integrations import (
    CreateJsonSource,
    DeleteJsonSource,
    GetJsonSource,
    InboundSource,
    JsonAccepted,
    JsonMapping,
    JsonSourcePage,
    JsonSourceView,
    ListJsonSources,
    MappingPreview,
    PreviewMapping,
    ReceiveJson,
    UpdateJsonSource,
)
from integrations import db
from integrations.alertmanager import new_delivery_id
from integrations.context import (
    Integrations,
    at_most,
    found,
    page,
    require_admin,
    require_scope,
)
from integrations.domain import MappingProblem, Unreadable, apply_mapping, compile_mapping, json_notification
from runtime.command_args import cursor_id as _cursor
from runtime.command_args import object_id as _id


def _compiled(mapping: JsonMapping) -> dict[str, Any]:
    try:
        return compile_mapping(mapping)
    except MappingProblem as exc:
        raise CommandFailed(
            ErrorCode.VALIDATION,
            str(exc),
            [{"loc": ["body", "mapping", exc.field_name], "msg": str(exc), "type": "jmespath_error"}],
        ) from exc


def json_source_view(row: Any) -> JsonSourceView:
    return JsonSourceView(
        id=str(row.id),
        name=row.name,
        mapping=JsonMapping.model_validate(row.mapping),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _json_source(conn: AsyncConnection, tenant_id: str, raw_id: str) -> Any:
    return found(await db.json_source(conn, tenant_id, _id(raw_id, "JSON source")), "JSON source")


async def preview_mapping(it: Integrations, cmd: PreviewMapping) -> MappingPreview:
    require_admin(cmd.caller)
    compiled = _compiled(cmd.mapping)
    try:
        return MappingPreview(alert=apply_mapping(compiled, cmd.mapping, cmd.sample), problem=None)
    except Unreadable as exc:
        return MappingPreview(alert=None, problem=str(exc))


async def create_json_source(it: Integrations, cmd: CreateJsonSource) -> JsonSourceView:
    caller = cmd.caller
    require_admin(caller)
    _compiled(cmd.mapping)
    now, source_id = datetime.now(UTC), new_delivery_id()
    async with it.service.engine.begin() as conn:
        count = await db.lock_and_count(conn, db.json_sources, caller.tenant_id)
        at_most(count, it.settings.max_json_sources_per_tenant, "JSON sources")
        row = await db.insert_json_source(
            conn,
            {
                "id": source_id,
                "tenant_id": caller.tenant_id,
                "name": cmd.name,
                "mapping": cmd.mapping.model_dump(mode="json"),
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
    return json_source_view(row)


async def list_json_sources(it: Integrations, cmd: ListJsonSources) -> JsonSourcePage:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        rows = await db.json_sources_page(conn, cmd.caller.tenant_id, _cursor(cmd.cursor), cmd.limit)
    rows, next_cursor = page(rows, cmd.limit)
    return JsonSourcePage(items=[json_source_view(r) for r in rows], next_cursor=next_cursor)


async def get_json_source(it: Integrations, cmd: GetJsonSource) -> JsonSourceView:
    require_admin(cmd.caller)
    async with it.service.engine.connect() as conn:
        return json_source_view(await _json_source(conn, cmd.caller.tenant_id, cmd.source_id))


async def update_json_source(it: Integrations, cmd: UpdateJsonSource) -> JsonSourceView:
    caller = cmd.caller
    require_admin(caller)
    values: dict[str, Any] = {}
    if cmd.mapping is not None:
        _compiled(cmd.mapping)
        values["mapping"] = cmd.mapping.model_dump(mode="json")
    if cmd.name is not None:
        values["name"] = cmd.name
    async with it.service.engine.begin() as conn:
        row = await _json_source(conn, caller.tenant_id, cmd.source_id)
        values["updated_at"] = datetime.now(UTC)
        row = await db.update_json_source(conn, row.id, values)
    return json_source_view(row)


async def delete_json_source(it: Integrations, cmd: DeleteJsonSource) -> Done:
    require_admin(cmd.caller)
    async with it.service.engine.begin() as conn:
        row = await _json_source(conn, cmd.caller.tenant_id, cmd.source_id)
        await db.delete_json_source(conn, row.id)
    return Done()


async def receive_json(it: Integrations, cmd: ReceiveJson) -> JsonAccepted:
    """Read the body with the source's mapping now (the mapping may change later), and store what
    it read as an alert notification; a body it cannot read is kept with the reason (a 422)."""
    source = cmd.source
    require_scope(source, KeyScope.ALERTS_WRITE)
    async with it.service.engine.connect() as conn:
        row = await _json_source(conn, source.tenant_id, cmd.source_id)
    mapping = JsonMapping.model_validate(row.mapping)
    now = datetime.now(UTC)
    try:
        alert = apply_mapping(compile_mapping(mapping), mapping, cmd.body)
        payload = json_notification(str(row.id), row.name, alert, cmd.body, now)
    except (Unreadable, ValidationError) as exc:
        reason = str(exc) if isinstance(exc, Unreadable) else f"the mapped alert is invalid: {exc}"
        message = f"JSON source {row.name}: {reason}"[:500]
        async with it.service.engine.begin() as conn:
            await db.keep_rejection(
                conn,
                rejection_id=new_delivery_id(),
                tenant_id=source.tenant_id,
                endpoint=InboundSource.JSON.value,
                key_id=source.key_id,
                received_at=now,
                message=message,
                details=[{"loc": ["body"], "msg": reason[:500], "type": "unreadable"}],
                body=cmd.raw,
                keep=it.settings.rejections_kept_per_tenant,
            )
        raise CommandFailed(
            ErrorCode.VALIDATION, message, [{"loc": ["body"], "msg": reason[:500], "type": "unreadable"}]
        ) from exc
    delivery_id = new_delivery_id()
    async with it.service.engine.begin() as conn:
        await db.queue_inbound(
            conn,
            delivery_id=delivery_id,
            tenant_id=source.tenant_id,
            source=InboundSource.JSON.value,
            key_id=source.key_id,
            correlation_id=cmd.correlation_id,
            group_key=payload.groupKey,
            alert_count=1,
            payload=payload.model_dump(mode="json"),
            now=now,
        )
    it.processor.kick()
    return JsonAccepted(delivery_id=str(delivery_id), alert=alert)


def register_json_handlers(it: Integrations) -> None:
    handles = it.service.handles
    handles(PreviewMapping)(partial(preview_mapping, it))
    handles(CreateJsonSource)(partial(create_json_source, it))
    handles(ListJsonSources)(partial(list_json_sources, it))
    handles(GetJsonSource)(partial(get_json_source, it))
    handles(UpdateJsonSource)(partial(update_json_source, it))
    handles(DeleteJsonSource)(partial(delete_json_source, it))
    handles(ReceiveJson)(partial(receive_json, it))
