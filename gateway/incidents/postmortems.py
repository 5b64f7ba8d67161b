"""Postmortems and follow-up actions. The incidents service owns both (versions, edits, publishing,
follow-ups); ai_worker writes a draft's text from the incident's log, which the gateway hands it as its
timeline holds it (every entry with its event id and stream sequence)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import PlainTextResponse

from contracts.commands import (
    AddFollowUp,
    DraftPostmortem,
    EditPostmortem,
    ErrorCode,
    FollowUpAccepted,
    LogEntry,
    PostmortemAccepted,
    PostmortemText,
    PublishPostmortem,
    SavePostmortemDraft,
    UpdateFollowUp,
)
from contracts.events import FollowUpSnapshot, IncidentSnapshot
from contracts.wire import NO_NUL
from gateway.auth.dependencies import CallerDep
from gateway.errors import ApiError, declare
from gateway.http.idempotency import reservation_of
from gateway.incidents import queries, references
from gateway.incidents.routes import COMMAND, Idempotent, IncidentId, _visible_incident
from gateway.incidents.schemas import (
    FollowUpCreate,
    FollowUpList,
    FollowUpPage,
    FollowUpRead,
    FollowUpUpdate,
    PostmortemPublish,
    PostmortemRead,
    PostmortemUpdate,
)
from gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/api/v1", tags=["postmortems"])
# The namespace of follow-up ids derived from an `Idempotency-Key` reservation.
IDEMPOTENT_FOLLOW_UP = uuid.UUID("3c7d1f0e-8a41-4a0b-b7f5-5b2e9d6c4a20")
NO_POSTMORTEM = ApiError(404, ErrorCode.NOT_FOUND.value, "the incident has no postmortem draft yet")
FollowUpId = Annotated[str, Path(pattern=NO_NUL)]
SNAPSHOT_FIELDS = frozenset(IncidentSnapshot.model_fields)


class MarkdownResponse(PlainTextResponse):
    media_type = "text/markdown"


def _snapshot(row: Any) -> IncidentSnapshot:
    values = {k: v for k, v in row._mapping.items() if k in SNAPSHOT_FIELDS}
    values.update(
        id=str(row.id), related_incident_id=str(row.related_incident_id) if row.related_incident_id else None
    )
    return IncidentSnapshot.model_validate(values)


def _postmortem_read(row: Any) -> PostmortemRead:
    return PostmortemRead.model_validate({**row._mapping, "incident_id": str(row.incident_id)})


def _follow_up_read(row: Any) -> FollowUpRead:
    values = dict(row._mapping)
    values.update(id=str(row.id), incident_id=str(row.incident_id))
    return FollowUpRead.model_validate(values)


def _follow_up_snapshot(row: Any) -> FollowUpSnapshot:
    values = {k: v for k, v in row._mapping.items() if k in FollowUpSnapshot.model_fields}
    values.update(id=str(row.id), incident_id=str(row.incident_id))
    return FollowUpSnapshot.model_validate(values)


async def _answer_postmortem(gw: Gateway, tenant_id: str, accepted: PostmortemAccepted) -> PostmortemRead:
    """Answer once the write is readable (read-your-writes), else with what the command answered."""
    if await gw.projector.wait_for(accepted.seq, gw.settings.read_your_writes_timeout_seconds):
        async with gw.engine.connect() as conn:
            row = await queries.get_postmortem(conn, tenant_id, uuid.UUID(accepted.postmortem.incident_id))
        if row is not None and row.version >= accepted.postmortem.version:
            return _postmortem_read(row)
    return PostmortemRead.model_validate(accepted.postmortem.model_dump())


async def _answer_follow_up(gw: Gateway, accepted: FollowUpAccepted) -> FollowUpRead:
    await gw.projector.wait_for(accepted.seq, gw.settings.read_your_writes_timeout_seconds)
    return FollowUpRead.model_validate(accepted.follow_up.model_dump())


@router.post(
    "/incidents/{incident_id}/postmortem",
    status_code=201,
    response_model=PostmortemRead,
    responses=declare(*COMMAND),
)
async def draft_postmortem(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> PostmortemRead:
    """Draft the postmortem from the incident's event log (responders and above): a new version.
    Offline a template fills it in, the same log always giving the same text; with `ANTHROPIC_API_KEY`
    on ai_worker Claude writes the summary and narrative, and a citation of an event the log lacks
    means the template's draft is used (`fallback_reason` says why). Every timeline line cites its
    event as `[#<seq>](#event-<event id>)`."""
    state = gw
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with state.engine.connect() as conn:
        timeline = await queries.get_timeline(conn, caller.tenant_id, incident.id)
        people = await queries.people(conn, caller.tenant_id)
        follow_ups = await queries.incident_follow_ups(conn, caller.tenant_id, incident.id)
    entries = [
        LogEntry(event_id=str(r.event_id), seq=r.seq, kind=r.kind, actor=r.actor, at=r.at, data=r.data)
        for r in timeline
    ]
    text = await state.commands.call(
        DraftPostmortem,
        {
            "caller": caller.model_dump(),
            "incident": _snapshot(incident).model_dump(mode="json"),
            "entries": [e.model_dump(mode="json") for e in entries],
            "people": people,
            "follow_ups": [_follow_up_snapshot(f).model_dump(mode="json") for f in follow_ups],
        },
        PostmortemText,
        timeout=state.settings.postmortem_draft_timeout_seconds,
    )
    accepted = await state.commands.call(
        SavePostmortemDraft,
        {"caller": caller.model_dump(), "incident_id": incident_id, "draft": text.model_dump(mode="json")},
        PostmortemAccepted,
    )
    return await _answer_postmortem(gw, caller.tenant_id, accepted)


@router.get("/incidents/{incident_id}/postmortem", response_model=PostmortemRead)
async def get_postmortem(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> PostmortemRead:
    """The postmortem's current version (404 until a draft exists)."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with gw.engine.connect() as conn:
        row = await queries.get_postmortem(conn, caller.tenant_id, incident.id)
    if row is None:
        raise NO_POSTMORTEM
    return _postmortem_read(row)


@router.get(
    "/incidents/{incident_id}/postmortem.md",
    response_class=MarkdownResponse,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}},
)
async def export_postmortem(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> MarkdownResponse:
    """The postmortem's current version as a markdown file."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with gw.engine.connect() as conn:
        row = await queries.get_postmortem(conn, caller.tenant_id, incident.id)
    if row is None:
        raise NO_POSTMORTEM
    name = f"{incident.key}-postmortem-v{row.version}.md"
    return MarkdownResponse(row.markdown, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.put(
    "/incidents/{incident_id}/postmortem", response_model=PostmortemRead, responses=declare(409, *COMMAND)
)
async def edit_postmortem(
    gw: GatewayDep, incident_id: IncidentId, body: PostmortemUpdate, caller: CallerDep
) -> PostmortemRead:
    """Replace the draft's markdown. `version` is the version the edit started from: a 409 (with
    the current `version` in `details`) when someone saved another since. An edit of a published
    postmortem is a new draft until it is published again."""
    await _visible_incident(gw, caller.tenant_id, incident_id)
    accepted = await gw.commands.call(
        EditPostmortem,
        {"caller": caller.model_dump(), "incident_id": incident_id, **body.model_dump(mode="json")},
        PostmortemAccepted,
    )
    return await _answer_postmortem(gw, caller.tenant_id, accepted)


@router.post(
    "/incidents/{incident_id}/postmortem/publish",
    response_model=PostmortemRead,
    responses=declare(409, *COMMAND),
)
async def publish_postmortem(
    gw: GatewayDep,
    incident_id: IncidentId,
    caller: CallerDep,
    body: Annotated[PostmortemPublish | None, Body()] = None,
) -> PostmortemRead:
    """Publish the current version (`postmortem.published` on the log); with `version`, only if it is
    still the current one (409 otherwise). Publishing a published postmortem changes nothing."""
    await _visible_incident(gw, caller.tenant_id, incident_id)
    version = body.version if body is not None else None
    accepted = await gw.commands.call(
        PublishPostmortem,
        {"caller": caller.model_dump(), "incident_id": incident_id, "version": version},
        PostmortemAccepted,
    )
    return await _answer_postmortem(gw, caller.tenant_id, accepted)


@router.get("/incidents/{incident_id}/follow-ups", response_model=FollowUpList)
async def incident_follow_ups(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> FollowUpList:
    """The incident's follow-up actions, oldest first."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with gw.engine.connect() as conn:
        rows = await queries.incident_follow_ups(conn, caller.tenant_id, incident.id)
    return FollowUpList(
        items=[
            _follow_up_read(r).model_copy(
                update={"incident_key": incident.key, "incident_title": incident.title}
            )
            for r in rows
        ]
    )


@router.post(
    "/incidents/{incident_id}/follow-ups",
    status_code=201,
    response_model=FollowUpRead,
    dependencies=Idempotent,
    responses=declare(*COMMAND),
)
async def add_follow_up(
    gw: GatewayDep, incident_id: IncidentId, body: FollowUpCreate, caller: CallerDep, request: Request
) -> FollowUpRead:
    """Track a follow-up action on the incident: a title, an owner (free text: a person or a team) and
    a due date, both optional."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    command: dict[str, Any] = {
        "caller": caller.model_dump(),
        "incident_id": incident_id,
        **body.model_dump(mode="json"),
    }
    held = reservation_of(request)
    if held is not None:
        # A retry with the key (after a 504, say) names the same follow-up, which is then made once.
        command["follow_up_id"] = str(held.derived_id(IDEMPOTENT_FOLLOW_UP))
    accepted = await gw.commands.call(AddFollowUp, command, FollowUpAccepted)
    read = await _answer_follow_up(gw, accepted)
    return read.model_copy(update={"incident_key": incident.key, "incident_title": incident.title})


@router.patch(
    "/incidents/{incident_id}/follow-ups/{follow_up_id}",
    response_model=FollowUpRead,
    responses=declare(*COMMAND),
)
async def update_follow_up(
    gw: GatewayDep,
    incident_id: IncidentId,
    follow_up_id: FollowUpId,
    body: FollowUpUpdate,
    caller: CallerDep,
) -> FollowUpRead:
    """Change a follow-up: `done: true` completes it (`done_at` set), `false` reopens it."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    accepted = await gw.commands.call(
        UpdateFollowUp,
        {
            "caller": caller.model_dump(),
            "incident_id": incident_id,
            "follow_up_id": follow_up_id,
            **body.model_dump(mode="json", exclude_unset=True),
        },
        FollowUpAccepted,
    )
    read = await _answer_follow_up(gw, accepted)
    return read.model_copy(update={"incident_key": incident.key, "incident_title": incident.title})


@router.get("/follow-ups", response_model=FollowUpPage)
async def list_follow_ups(
    gw: GatewayDep,
    caller: CallerDep,
    state: Annotated[Literal["open", "done", "all"], Query()] = "all",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=references.CURSOR_PATTERN,
            description="The previous page's `next_cursor`, as it was given",
        ),
    ] = None,
) -> FollowUpPage:
    """Every incident's follow-up actions, oldest first, with their incident's key and title:
    `state=open` for what is still to do."""
    after = references.decode_cursor(cursor) if cursor else None
    done = {"open": False, "done": True, "all": None}[state]
    async with gw.engine.connect() as conn:
        rows, next_cursor = await queries.list_follow_ups(conn, caller.tenant_id, done, limit, after)
    return FollowUpPage(items=[_follow_up_read(r) for r in rows], next_cursor=next_cursor)
