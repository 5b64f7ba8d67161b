from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import StringConstraints

from contracts.commands import (
    MAX_INT32,
    AddNote,
    CreateIncident,
    ErrorCode,
    FeedbackAccepted,
    IncidentAccepted,
    RecordFeedback,
    RegenerateHypotheses,
    RegenerationAccepted,
    TransitionIncident,
    UpdateIncident,
)
from contracts.events import IncidentState, Severity
from contracts.wire import NO_NUL
from gateway.auth.dependencies import CallerDep
from gateway.errors import ApiError, declare
from gateway.http.fields import DateTimeQuery, one_or_more
from gateway.http.idempotency import idempotent, reservation_of
from gateway.incidents import queries, references
from gateway.incidents.schemas import (
    EvidenceItemRead,
    FeedbackCreate,
    FeedbackRead,
    HypothesesRead,
    HypothesisRead,
    IncidentCreate,
    IncidentPage,
    IncidentRead,
    IncidentUpdate,
    NoteCreate,
    RegenerationRead,
    TimelineEntryRead,
    TimelineRead,
    TransitionCreate,
)
from gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
# The namespace of incident ids derived from an `Idempotency-Key` reservation.
IDEMPOTENT_CREATE = uuid.UUID("6f0c5e2a-4d0b-4a8e-9a52-0d6a1f3b7c11")
IDEMPOTENT_MOVE = uuid.UUID("0b7d1f52-8a3e-4c61-b2f4-5e9a7c3d1e20")
IDEMPOTENT_NOTE = uuid.UUID("d4a6c2e8-1f3b-4e57-9c0a-7b2e5f8d6a31")


def _derived(request: Request, name: str, namespace: uuid.UUID) -> dict[str, str]:
    """With an Idempotency-Key, the id a retry of this request names again (so the service makes
    the change once); nothing without one."""
    held = reservation_of(request)
    return {name: str(held.derived_id(namespace))} if held is not None else {}


# Retried safely with `Idempotency-Key` (see gateway/idempotency.py).
Idempotent = [idempotent(CallerDep)]

NOT_FOUND = ApiError(404, ErrorCode.NOT_FOUND.value, "incident not found")
IncidentId = Annotated[str, Path(pattern=NO_NUL)]


def _read(row: Any) -> IncidentRead:
    return IncidentRead(**{**row._mapping, "id": str(row.id)})


async def _visible_incident(gw: Gateway, tenant_id: str, incident_id: str) -> Any:
    """The incident if it exists in the caller's tenant; another tenant's is as absent as a missing one."""
    parsed = references.parse_uuid(incident_id)
    if parsed is None:
        raise NOT_FOUND
    async with gw.engine.connect() as conn:
        row = await queries.get_incident(conn, tenant_id, parsed)
    if row is None:
        raise NOT_FOUND
    return row


async def _answer_write(gw: Gateway, caller_tenant: str, accepted: IncidentAccepted) -> IncidentRead:
    """Answer once the write is readable, so the caller's next GET sees it."""
    if await gw.projector.wait_for(accepted.seq, gw.settings.read_your_writes_timeout_seconds):
        async with gw.engine.connect() as conn:
            row = await queries.get_incident(conn, caller_tenant, uuid.UUID(accepted.incident.id))
        if row is not None:
            return _read(row)
    return IncidentRead.model_validate(accepted.incident.model_dump())


# Each command can time out; each route naming an incident answers 404 for one not in your organisation.
COMMAND = (504,)


@router.post(
    "", status_code=201, response_model=IncidentRead, dependencies=Idempotent, responses=declare(*COMMAND)
)
async def create_incident(
    gw: GatewayDep, body: IncidentCreate, caller: CallerDep, request: Request
) -> IncidentRead:
    # A retry with the key (after a 504, or an answer lost with a gateway) names the same incident,
    # which incidents then makes once.
    command: dict[str, Any] = {
        "caller": caller.model_dump(),
        **body.model_dump(mode="json"),
        **_derived(request, "incident_id", IDEMPOTENT_CREATE),
    }
    accepted = await gw.commands.call(CreateIncident, command, IncidentAccepted)
    return await _answer_write(gw, caller.tenant_id, accepted)


def _several(values: list[str] | None) -> tuple[str, ...]:
    """`?state=a&state=b` and `?state=a,b` both work (the pattern has checked each value)."""
    return tuple(v for value in values or () for v in value.split(","))


def _values(values: type[StrEnum]) -> str:
    return ", ".join(v.value for v in values)


StatesFilter = Annotated[
    list[Annotated[str, StringConstraints(pattern=one_or_more(IncidentState))]] | None,
    Query(description=f"One or more states: {_values(IncidentState)} (repeat or comma-separate)"),
]
SeveritiesFilter = Annotated[
    list[Annotated[str, StringConstraints(pattern=one_or_more(Severity))]] | None,
    Query(description=f"One or more severities: {_values(Severity)} (repeat or comma-separate)"),
]


@router.get("", response_model=IncidentPage)
async def list_incidents(
    gw: GatewayDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=references.CURSOR_PATTERN,
            description="The previous page's `next_cursor`, as it was given",
        ),
    ] = None,
    state: StatesFilter = None,
    severity: SeveritiesFilter = None,
    service: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    assignee: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="A user id, `me`, or `none`")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Text in the title or description")
    ] = None,
    created_from: Annotated[DateTimeQuery | None, Query(description="Created at or after (RFC 3339)")] = None,
    created_to: Annotated[DateTimeQuery | None, Query(description="Created before (RFC 3339)")] = None,
    order: Annotated[Literal["newest", "oldest"], Query()] = "newest",
) -> IncidentPage:
    """The caller's incidents, newest first unless `order=oldest`, with optional filters. Pass
    `next_cursor` back as `cursor` (with the same filters) for the next page."""
    after = references.decode_cursor(cursor) if cursor else None
    where = queries.IncidentFilter(
        states=_several(state),
        severities=_several(severity),
        service_name=service,
        assignee_id=caller.user_id if assignee == "me" else assignee,
        text=q.strip() if q and q.strip() else None,
        created_from=created_from,
        created_to=created_to,
        oldest_first=order == "oldest",
    )
    async with gw.engine.connect() as conn:
        rows, next_cursor = await queries.list_incidents(conn, caller.tenant_id, limit, after, where)
    return IncidentPage(items=[_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/{incident_id}", response_model=IncidentRead)
async def get_incident(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> IncidentRead:
    return _read(await _visible_incident(gw, caller.tenant_id, incident_id))


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentRead,
    dependencies=Idempotent,
    responses=declare(409, *COMMAND),
)
async def transition_incident(
    gw: GatewayDep,
    incident_id: IncidentId,
    body: Annotated[TransitionCreate, Body(discriminator="to")],
    caller: CallerDep,
    request: Request,
) -> IncidentRead:
    """Move the incident along `detected → acknowledged → investigating → resolved` (skipping forward is
    allowed; `resolved → investigating` reopens). Any other move is a 409 naming the allowed ones."""
    accepted = await gw.commands.call(
        TransitionIncident,
        {
            "caller": caller.model_dump(),
            "incident_id": incident_id,
            **body.model_dump(mode="json"),
            **_derived(request, "transition_id", IDEMPOTENT_MOVE),
        },
        IncidentAccepted,
    )
    return await _answer_write(gw, caller.tenant_id, accepted)


@router.patch("/{incident_id}", response_model=IncidentRead, responses=declare(409, *COMMAND))
async def update_incident(
    gw: GatewayDep, incident_id: IncidentId, body: IncidentUpdate, caller: CallerDep
) -> IncidentRead:
    """Change title, description, severity, service or assignee (a user of your organisation).
    Each change is recorded on the timeline with its old and new value."""
    accepted = await gw.commands.call(
        UpdateIncident,
        {
            "caller": caller.model_dump(),
            "incident_id": incident_id,
            **body.model_dump(mode="json", exclude_unset=True),
        },
        IncidentAccepted,
    )
    return await _answer_write(gw, caller.tenant_id, accepted)


@router.post(
    "/{incident_id}/notes",
    status_code=201,
    response_model=IncidentRead,
    dependencies=Idempotent,
    responses=declare(*COMMAND),
)
async def add_note(
    gw: GatewayDep, incident_id: IncidentId, body: NoteCreate, caller: CallerDep, request: Request
) -> IncidentRead:
    """Add a note to the incident's timeline."""
    accepted = await gw.commands.call(
        AddNote,
        {
            "caller": caller.model_dump(),
            "incident_id": incident_id,
            "body": body.body,
            **_derived(request, "note_id", IDEMPOTENT_NOTE),
        },
        IncidentAccepted,
    )
    return await _answer_write(gw, caller.tenant_id, accepted)


@router.get("/{incident_id}/hypotheses", response_model=HypothesesRead)
async def get_hypotheses(
    gw: GatewayDep,
    incident_id: IncidentId,
    caller: CallerDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INT32, description="A generation; the latest by default")
    ] = None,
) -> HypothesesRead:
    """The AI worker's ranked root-cause hypotheses: `pending` until they exist. Each generation
    (a new one follows new evidence) is numbered; `?version=N` returns an older one."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with gw.engine.connect() as conn:
        row = await queries.get_hypotheses(conn, caller.tenant_id, incident.id, version)
        evidence = (
            await queries.get_evidence(conn, caller.tenant_id, incident.id, row.generation)
            if row is not None
            else None
        )
    if row is None:
        if version is not None:
            raise ApiError(404, ErrorCode.NOT_FOUND.value, f"no generation {version} of hypotheses")
        return HypothesesRead(status="pending", items=[])
    async with gw.engine.connect() as conn:
        verdicts = await queries.feedback_counts(conn, caller.tenant_id, incident.id, row.generation)
    return HypothesesRead(
        status="ready",
        engine=row.engine,
        generation=row.generation,
        trigger=row.trigger,
        fallback_reason=row.fallback_reason,
        generated_at=row.generated_at,
        items=[
            HypothesisRead.model_validate(
                {**h, "feedback": verdicts.get(h["rank"], {"confirmed": 0, "rejected": 0})}
            )
            for h in row.items
        ],
        evidence=[EvidenceItemRead.model_validate(e) for e in evidence.items] if evidence is not None else [],
    )


@router.get("/{incident_id}/timeline", response_model=TimelineRead)
async def get_timeline(gw: GatewayDep, incident_id: IncidentId, caller: CallerDep) -> TimelineRead:
    """Everything that happened to the incident, in stream order, each with its actor and time."""
    incident = await _visible_incident(gw, caller.tenant_id, incident_id)
    async with gw.engine.connect() as conn:
        rows = await queries.get_timeline(conn, caller.tenant_id, incident.id)
    return TimelineRead(
        items=[
            TimelineEntryRead(id=str(r.event_id), seq=r.seq, kind=r.kind, actor=r.actor, at=r.at, data=r.data)
            for r in rows
        ]
    )


@router.post(
    "/{incident_id}/hypotheses/regenerate",
    status_code=202,
    response_model=RegenerationRead,
    responses=declare(*COMMAND),
)
async def regenerate_hypotheses(
    gw: GatewayDep, incident_id: IncidentId, caller: CallerDep
) -> RegenerationRead:
    """Ask the AI worker for a new generation now (responders and above). The request goes on the log;
    the new generation follows on `GET .../hypotheses` and the live feed, with `trigger: regenerate`."""
    await _visible_incident(gw, caller.tenant_id, incident_id)
    accepted = await gw.commands.call(
        RegenerateHypotheses,
        {"caller": caller.model_dump(), "incident_id": incident_id},
        RegenerationAccepted,
    )
    return RegenerationRead(incident_id=accepted.incident_id, request_id=accepted.request_id)


@router.post(
    "/{incident_id}/hypotheses/{rank}/feedback",
    status_code=201,
    response_model=FeedbackRead,
    dependencies=Idempotent,
    responses=declare(*COMMAND),
)
async def hypothesis_feedback(
    gw: GatewayDep,
    incident_id: IncidentId,
    rank: Annotated[int, Path(ge=1, le=10)],
    body: FeedbackCreate,
    caller: CallerDep,
) -> FeedbackRead:
    """Confirm or reject the hypothesis at `rank` (of the latest generation unless `generation` is
    given). Confirmations of resolved incidents are what `GET /api/v1/metrics/hypotheses` measures."""
    await _visible_incident(gw, caller.tenant_id, incident_id)
    accepted = await gw.commands.call(
        RecordFeedback,
        {
            "caller": caller.model_dump(),
            "incident_id": incident_id,
            "rank": rank,
            **body.model_dump(mode="json"),
        },
        FeedbackAccepted,
    )
    state = gw
    await state.projector.wait_for(accepted.seq, state.settings.read_your_writes_timeout_seconds)
    return FeedbackRead(
        incident_id=accepted.incident_id,
        generation=accepted.generation,
        rank=accepted.rank,
        verdict=body.verdict,
    )
