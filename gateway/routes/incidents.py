from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from contracts.commands import ErrorCode, IncidentAccepted
from gateway import read_models as rm
from gateway.errors import ApiError
from gateway.schemas import (
    HypothesesRead,
    HypothesisRead,
    IncidentCreate,
    IncidentPage,
    IncidentRead,
    TimelineEntryRead,
    TimelineRead,
    TransitionCreate,
)
from gateway.security import CallerDep

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

NOT_FOUND = ApiError(404, ErrorCode.NOT_FOUND.value, "incident not found")


def _read(row: Any) -> IncidentRead:
    return IncidentRead(**{**row._mapping, "id": str(row.id)})


async def _visible_incident(request: Request, tenant_id: str, incident_id: str) -> Any:
    """The incident if it exists in the caller's tenant; another tenant's is as absent as a missing one."""
    parsed = rm.parse_uuid(incident_id)
    if parsed is None:
        raise NOT_FOUND
    async with request.app.state.engine.connect() as conn:
        row = await rm.get_incident(conn, tenant_id, parsed)
    if row is None:
        raise NOT_FOUND
    return row


async def _answer_write(request: Request, caller_tenant: str, accepted: IncidentAccepted) -> IncidentRead:
    """Answer once the write is readable, so the caller's next GET sees it."""
    state = request.app.state
    if await state.projector.wait_for(accepted.seq, state.settings.read_your_writes_timeout_seconds):
        async with state.engine.connect() as conn:
            row = await rm.get_incident(conn, caller_tenant, uuid.UUID(accepted.incident.id))
        if row is not None:
            return _read(row)
    return IncidentRead.model_validate(accepted.incident.model_dump())


@router.post("", status_code=201, response_model=IncidentRead)
async def create_incident(body: IncidentCreate, caller: CallerDep, request: Request) -> IncidentRead:
    accepted = await request.app.state.commands.call(
        "cmd.incidents.create",
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        IncidentAccepted,
    )
    return await _answer_write(request, caller.tenant_id, accepted)


@router.get("", response_model=IncidentPage)
async def list_incidents(
    caller: CallerDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> IncidentPage:
    """The caller's incidents, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    try:
        after = rm.decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise ApiError(400, "bad_request", "invalid cursor") from exc
    async with request.app.state.engine.connect() as conn:
        rows, next_cursor = await rm.list_incidents(conn, caller.tenant_id, limit, after)
    return IncidentPage(items=[_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/{incident_id}", response_model=IncidentRead)
async def get_incident(incident_id: str, caller: CallerDep, request: Request) -> IncidentRead:
    return _read(await _visible_incident(request, caller.tenant_id, incident_id))


@router.post("/{incident_id}/transitions", response_model=IncidentRead)
async def transition_incident(
    incident_id: str, body: TransitionCreate, caller: CallerDep, request: Request
) -> IncidentRead:
    """Move the incident along `detected → acknowledged → investigating → resolved` (skipping forward is
    allowed; `resolved → investigating` reopens). Any other move is a 409 naming the allowed ones."""
    accepted = await request.app.state.commands.call(
        "cmd.incidents.transition",
        {"caller": caller.model_dump(), "incident_id": incident_id, **body.model_dump(mode="json")},
        IncidentAccepted,
    )
    return await _answer_write(request, caller.tenant_id, accepted)


@router.get("/{incident_id}/hypotheses", response_model=HypothesesRead)
async def get_hypotheses(incident_id: str, caller: CallerDep, request: Request) -> HypothesesRead:
    """The AI worker's ranked root-cause hypotheses: `pending` until they exist."""
    incident = await _visible_incident(request, caller.tenant_id, incident_id)
    async with request.app.state.engine.connect() as conn:
        row = await rm.get_hypotheses(conn, incident.id)
    if row is None:
        return HypothesesRead(status="pending", items=[])
    return HypothesesRead(
        status="ready",
        engine=row.engine,
        generated_at=row.generated_at,
        items=[HypothesisRead.model_validate(h) for h in row.items],
    )


@router.get("/{incident_id}/timeline", response_model=TimelineRead)
async def get_timeline(incident_id: str, caller: CallerDep, request: Request) -> TimelineRead:
    """Everything that happened to the incident, in stream order, each with its actor and time."""
    incident = await _visible_incident(request, caller.tenant_id, incident_id)
    async with request.app.state.engine.connect() as conn:
        rows = await rm.get_timeline(conn, incident.id)
    return TimelineRead(
        items=[
            TimelineEntryRead(id=str(r.event_id), seq=r.seq, kind=r.kind, actor=r.actor, at=r.at, data=r.data)
            for r in rows
        ]
    )
