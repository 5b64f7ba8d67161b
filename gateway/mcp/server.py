"""The Model Context Protocol server at `/mcp`: SRE Copilot's incidents for AI assistants.

Built with the official `mcp` SDK (`MCPServer`), served by the gateway over streamable HTTP, stateless
and with JSON answers, so any gateway replica answers any request and no session outlives one. A
caller is an integration key holding `mcp:read` (and `mcp:write` for the tools that act), checked on
every request exactly as the REST routes check keys; its tenant is the key's, never an argument.

The tools are the REST API's own route functions called with the key's identity (`_caller`): the same
reads, the same commands over the bus, the same read-your-writes wait. Only the shapes differ, cut to
what a model needs (small results, clipped text, cursors), and every failure comes back as a tool
error the model can read (`_tool_errors`), never a crash."""

from __future__ import annotations

import functools
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from fastapi import FastAPI
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, Field, StringConstraints
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from contracts.commands import Caller, ErrorCode
from contracts.events import FeedbackVerdict, IncidentState, KeyScope, Role, Severity
from contracts.integrations import AlertPage, DeployPage, ListServiceAlerts, ListServiceDeploys
from contracts.wire import NO_NUL
from gateway.auth.dependencies import KeyCaller, verify_integration_key
from gateway.errors import ApiError, error_response
from gateway.incident_metrics import routes as metric_routes
from gateway.incidents import queries, references
from gateway.incidents import routes as incident_routes
from gateway.incidents.schemas import FeedbackCreate, MoveCreate, NoteCreate, ResolutionCreate
from gateway.state import gateway_of

PATH = "/mcp"
# Where the endpoint leaves the verified key for the tools (the ASGI scope of the HTTP request).
CALLER_SCOPE_KEY = "sre_copilot.mcp_key"
INSTRUCTIONS = """SRE Copilot tracks incidents (keys like INC-42) through detected → acknowledged →
investigating → resolved, with AI root-cause hypotheses backed by evidence. Start with
search_incidents or get_incident; get_hypotheses shows the ranked causes and their evidence;
find_similar_incidents shows how past incidents like it were resolved. Write tools (move_incident,
add_note, record_hypothesis_feedback, regenerate_hypotheses) need a key with mcp:write and are
recorded on the incident's timeline under this key's name."""

DESCRIPTION_CLIP = 2_000
ACTIVITY_DAYS = 7
TIMELINE_DATA_CLIP = 300
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
INCIDENT_KEY = re.compile(r"(?i)inc-([0-9]{1,9})")

P = ParamSpec("P")
T = TypeVar("T")

IncidentRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=NO_NUL),
    Field(description="The incident: its key (`INC-42`) or its id (a UUID)"),
]


# ---- what the tools answer


class IncidentSummary(BaseModel):
    id: str
    key: str = Field(description="What people call it, e.g. INC-42")
    title: str
    service: str
    severity: Severity
    state: IncidentState
    assignee_id: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class IncidentList(BaseModel):
    items: list[IncidentSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` (same filters) for more; null: no more")


class IncidentDetail(IncidentSummary):
    description: str = Field(description=f"Clipped to {DESCRIPTION_CLIP} characters")
    root_cause: str | None = Field(description="Recorded when it was resolved")
    related_incident_id: str | None = Field(description="An earlier incident this one continues")
    version: int
    created_by: str


class TimelineEntry(BaseModel):
    seq: int = Field(description="Position in the event log; timeline cursors are these")
    kind: str
    actor: str
    at: datetime
    details: str = Field(description=f"The event's data as JSON, clipped to {TIMELINE_DATA_CLIP} characters")


class IncidentWithTimeline(BaseModel):
    incident: IncidentDetail
    timeline: list[TimelineEntry] = Field(description="Oldest first")
    next_timeline_cursor: int | None = Field(description="Pass as `timeline_cursor` for more; null: no more")


class Hypothesis(BaseModel):
    rank: int
    claim: str
    description: str
    confidence: float = Field(description="0 to 1")
    evidence: list[str] = Field(description="Checkable facts; the first explains the confidence")
    confirmed: int = Field(description="Responders who confirmed it")
    rejected: int = Field(description="Responders who rejected it")


class EvidenceItem(BaseModel):
    kind: str = Field(description="report, deploy, alert, similar_incident, metric, ...")
    summary: str
    source: str
    time: datetime | None
    link: str | None


class Hypotheses(BaseModel):
    incident_key: str
    status: Literal["pending", "ready"] = Field(description="pending: the AI worker has not answered yet")
    engine: str | None
    generation: int | None = Field(description="Each new generation follows new evidence or a regeneration")
    generated_at: datetime | None
    fallback_reason: str | None = Field(description="Why the offline rules answered instead of Claude")
    items: list[Hypothesis] = Field(description="Best first")
    evidence: list[EvidenceItem]


class SimilarIncident(BaseModel):
    key: str
    id: str
    title: str
    service: str
    state: IncidentState
    created_at: datetime
    resolved_at: datetime | None
    root_cause: str | None = Field(description="What it turned out to be, as recorded at resolution")
    why: str = Field(description="Why it is considered similar")


class SimilarIncidents(BaseModel):
    incident_key: str
    source: Literal["ai_worker", "same_service"] = Field(
        description="ai_worker: the AI worker's ranking for this incident's latest hypotheses; "
        "same_service: none yet, so the service's latest resolved incidents with a recorded cause"
    )
    items: list[SimilarIncident]


class FeedbackRecorded(BaseModel):
    incident_key: str
    generation: int
    rank: int
    verdict: FeedbackVerdict


class RegenerationRequested(BaseModel):
    incident_key: str
    request_id: str
    message: str


# ---- plumbing


def _key_of(ctx: Context) -> KeyCaller:
    request = ctx.request_context.request
    key = request.scope.get(CALLER_SCOPE_KEY) if isinstance(request, Request) else None
    if not isinstance(key, KeyCaller):  # only reachable outside the /mcp endpoint
        raise ToolError("not authenticated: call through /mcp with an integration key")
    return key


def _request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolError("not authenticated: call through /mcp with an integration key")
    return request


def _caller(key: KeyCaller, *, write: bool = False) -> Caller:
    """The identity the routes and services see: the key, as `integration:<key id>` (as alerts are
    recorded), a responder when it may write and a viewer when it may only read."""
    if write and KeyScope.MCP_WRITE not in key.scopes:
        raise ToolError(f"refused: this key is read-only (it lacks the scope {KeyScope.MCP_WRITE.value})")
    role = Role.RESPONDER if KeyScope.MCP_WRITE in key.scopes else Role.VIEWER
    return Caller(tenant_id=key.tenant_id, user_id=f"integration:{key.key_id}", role=role)


def _explain(exc: ApiError) -> str:
    message = f"{exc.code}: {exc.message}"
    if exc.details:
        message += f" ({json.dumps(exc.details, default=str)[:500]})"
    return message


def _tool_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """The API's refusals (not found, a move the lifecycle forbids, a service that is down) as tool
    errors the model reads, with the API's code and message."""

    fn.__doc__ = inspect.cleandoc(fn.__doc__ or "")  # the description a model reads, unindented

    @functools.wraps(fn)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except ApiError as exc:
            raise ToolError(_explain(exc)) from exc

    return wrapped


async def _resolve(request: Request, tenant_id: str, ref: str) -> Any:
    """The incident row `ref` names in the caller's tenant: a key `INC-42` or an id. Another
    tenant's incident is exactly as absent as one that does not exist."""
    ref = ref.strip()
    match = INCIDENT_KEY.fullmatch(ref)
    async with gateway_of(request).engine.connect() as conn:
        if match:
            row = await queries.get_incident_by_number(conn, tenant_id, int(match.group(1)))
        elif (parsed := references.parse_uuid(ref)) is not None:
            row = await queries.get_incident(conn, tenant_id, parsed)
        else:
            raise ToolError(f"{ref!r} is not an incident key (like INC-42) nor an incident id (a UUID)")
    if row is None:
        raise ToolError(f"not_found: incident {ref} not found")
    return row


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(incident: Any) -> IncidentSummary:
    return IncidentSummary(
        id=str(incident.id),
        key=incident.key,
        title=incident.title,
        service=incident.service_name,
        severity=incident.severity,
        state=incident.state,
        assignee_id=incident.assignee_id,
        created_at=incident.created_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
    )


def _detail(incident: Any) -> IncidentDetail:
    return IncidentDetail(
        **_summary(incident).model_dump(),
        description=_clip(incident.description, DESCRIPTION_CLIP),
        root_cause=incident.root_cause,
        related_incident_id=str(incident.related_incident_id) if incident.related_incident_id else None,
        version=incident.version,
        created_by=incident.created_by,
    )


# ---- the reads and writes, shared by tools, the resource and the prompt


async def _incident_with_timeline(
    request: Request, key: KeyCaller, ref: str, timeline_limit: int, timeline_cursor: int | None
) -> IncidentWithTimeline:
    caller = _caller(key)
    row = await _resolve(request, caller.tenant_id, ref)
    incident = await incident_routes.get_incident(gateway_of(request), str(row.id), caller)
    timeline = await incident_routes.get_timeline(gateway_of(request), str(row.id), caller)
    after = [e for e in timeline.items if timeline_cursor is None or e.seq > timeline_cursor]
    page = after[:timeline_limit]
    return IncidentWithTimeline(
        incident=_detail(incident),
        timeline=[
            TimelineEntry(
                seq=e.seq,
                kind=e.kind,
                actor=e.actor,
                at=e.at,
                details=_clip(json.dumps(e.data, default=str, ensure_ascii=False), TIMELINE_DATA_CLIP),
            )
            for e in page
        ],
        next_timeline_cursor=page[-1].seq if len(after) > timeline_limit else None,
    )


async def _hypotheses(request: Request, key: KeyCaller, ref: str, generation: int | None) -> Hypotheses:
    caller = _caller(key)
    row = await _resolve(request, caller.tenant_id, ref)
    found = await incident_routes.get_hypotheses(gateway_of(request), str(row.id), caller, generation)
    return Hypotheses(
        incident_key=row.key,
        status=found.status,
        engine=found.engine,
        generation=found.generation,
        generated_at=found.generated_at,
        fallback_reason=found.fallback_reason,
        items=[
            Hypothesis(
                rank=h.rank,
                claim=h.claim,
                description=h.description,
                confidence=h.confidence,
                evidence=h.evidence,
                confirmed=h.feedback.get("confirmed", 0),
                rejected=h.feedback.get("rejected", 0),
            )
            for h in found.items
        ],
        evidence=[EvidenceItem.model_validate(e.model_dump()) for e in found.evidence],
    )


LINKED_INCIDENT = re.compile(r"/api/v1/incidents/([0-9a-fA-F-]{36})$")


async def _similar(request: Request, key: KeyCaller, ref: str, limit: int) -> SimilarIncidents:
    """The AI worker's own ranking of past incidents like this one (the `similar_incident` evidence
    of its latest generation, which links each), with their recorded root causes from the read model;
    before any generation, the service's latest resolved incidents that have a recorded cause."""
    caller = _caller(key)
    row = await _resolve(request, caller.tenant_id, ref)
    found = await incident_routes.get_hypotheses(gateway_of(request), str(row.id), caller, None)
    ranked: list[tuple[uuid.UUID, str]] = []
    for item in found.evidence:
        match = LINKED_INCIDENT.search(item.link or "") if item.kind == "similar_incident" else None
        if match and (linked := references.parse_uuid(match.group(1))) is not None and linked != row.id:
            ranked.append((linked, item.summary))
    if ranked:
        async with gateway_of(request).engine.connect() as conn:
            rows = {
                r.id: r for r in await queries.get_incidents(conn, caller.tenant_id, [i for i, _ in ranked])
            }
        items = [(rows[i], why) for i, why in ranked if i in rows][:limit]
        source: Literal["ai_worker", "same_service"] = "ai_worker"
    else:
        where = queries.IncidentFilter(states=(IncidentState.RESOLVED.value,), service_name=row.service_name)
        async with gateway_of(request).engine.connect() as conn:
            candidates, _ = await queries.list_incidents(conn, caller.tenant_id, 50, None, where)
        items = [
            (c, f"resolved incident of the same service ({row.service_name})")
            for c in candidates
            if c.id != row.id and c.root_cause
        ][:limit]
        source = "same_service"
    return SimilarIncidents(
        incident_key=row.key,
        source=source,
        items=[
            SimilarIncident(
                key=r.key,
                id=str(r.id),
                title=r.title,
                service=r.service_name,
                state=r.state,
                created_at=r.created_at,
                resolved_at=r.resolved_at,
                root_cause=r.root_cause,
                why=why,
            )
            for r, why in items
        ],
    )


ServiceRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NO_NUL),
    Field(description="The service's name"),
]
Since = Annotated[
    datetime | None, Field(description=f"From this time (RFC 3339); {ACTIVITY_DAYS} days ago by default")
]
ActivityCursorArg = Annotated[
    str | None, Field(max_length=256, description="The previous answer's next_cursor")
]
Page = TypeVar("Page", DeployPage, AlertPage)


async def _activity(
    ctx: Context,
    command: type[ListServiceDeploys] | type[ListServiceAlerts],
    service: str,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    page: type[Page],
) -> Page:
    """A page of what integrations recorded about a service (its deploys, its alerts)."""
    caller = _caller(_key_of(ctx))
    if since is not None and since.tzinfo is None:
        raise ToolError("since needs a UTC offset, e.g. 2026-12-01T10:00:00Z")
    body = {
        "caller": caller.model_dump(),
        "service_name": service,
        "since": since or datetime.now(UTC) - timedelta(days=ACTIVITY_DAYS),
        "limit": limit,
        "cursor": cursor,
    }
    try:
        return await gateway_of(_request(ctx)).commands.call(command, body, page)
    except ApiError as exc:
        if exc.code == ErrorCode.VALIDATION.value:
            raise ToolError("invalid cursor: pass next_cursor as it was given") from exc
        raise


def incident_markdown(found: IncidentWithTimeline, hypotheses: Hypotheses | None = None) -> str:
    """An incident as a person (or a model) reads it: fields, description, timeline, hypotheses."""
    i = found.incident
    lines = [
        f"# {i.key}: {i.title}",
        "",
        f"- **State**: {i.state.value}",
        f"- **Severity**: {i.severity.value}",
        f"- **Service**: {i.service}",
        f"- **Assignee**: {i.assignee_id or 'none'}",
        f"- **Created**: {i.created_at.isoformat()} by {i.created_by}",
    ]
    if i.acknowledged_at:
        lines.append(f"- **Acknowledged**: {i.acknowledged_at.isoformat()}")
    if i.resolved_at:
        lines.append(f"- **Resolved**: {i.resolved_at.isoformat()}")
    if i.root_cause:
        lines.append(f"- **Root cause**: {i.root_cause}")
    lines += ["", "## Description", "", i.description or "_none_", "", "## Timeline", ""]
    for e in found.timeline:
        lines.append(f"- `{e.at.isoformat()}` (seq {e.seq}) **{e.kind}** by {e.actor}: {e.details}")
    if found.next_timeline_cursor is not None:
        lines.append(f"- … more with get_incident(timeline_cursor={found.next_timeline_cursor})")
    if hypotheses is not None:
        lines += ["", "## Hypotheses", ""]
        if hypotheses.status == "pending":
            lines.append("_The AI worker has not answered yet._")
        for h in hypotheses.items:
            lines.append(f"{h.rank}. **{h.claim}** (confidence {h.confidence:.2f}; ")
            lines[-1] += f"{h.confirmed} confirmed, {h.rejected} rejected)"
            lines += [f"   {h.description}"] + [f"   - {e}" for e in h.evidence]
    return "\n".join(lines) + "\n"


# ---- the server


def build_server() -> MCPServer:
    server = MCPServer(
        "sre-copilot",
        title="SRE Copilot",
        description="Incidents, their timelines and AI root-cause hypotheses",
        instructions=INSTRUCTIONS,
        version="0.1.0",
    )

    @server.tool(title="Search incidents", annotations=READ)
    @_tool_errors
    async def search_incidents(
        ctx: Context,
        state: Annotated[
            list[IncidentState] | None, Field(description="Only these states (e.g. the open ones)")
        ] = None,
        severity: Annotated[list[Severity] | None, Field(description="Only these severities")] = None,
        service: Annotated[
            str | None, Field(max_length=100, pattern=NO_NUL, description="Exact name")
        ] = None,
        assignee: Annotated[
            str | None, Field(max_length=64, pattern=NO_NUL, description="A user id, or `none` (unassigned)")
        ] = None,
        text: Annotated[
            str | None, Field(max_length=200, pattern=NO_NUL, description="Words in the title or description")
        ] = None,
        created_from: Annotated[datetime | None, Field(description="Created at or after (RFC 3339)")] = None,
        created_to: Annotated[datetime | None, Field(description="Created before (RFC 3339)")] = None,
        order: Literal["newest", "oldest"] = "newest",
        limit: Annotated[int, Field(ge=1, le=50)] = 20,
        cursor: Annotated[
            str | None,
            Field(pattern=references.CURSOR_PATTERN, description="The previous page's next_cursor"),
        ] = None,
    ) -> IncidentList:
        """Find incidents of this organisation, newest first, by state, severity, service, assignee,
        text and creation time. Returns short summaries; call get_incident for one's details."""
        key = _key_of(ctx)
        for bound in (created_from, created_to):
            if bound is not None and bound.tzinfo is None:
                raise ToolError("created_from and created_to need a UTC offset, e.g. 2026-12-01T10:00:00Z")
        page = await incident_routes.list_incidents(
            gateway_of(_request(ctx)),
            _caller(key),
            limit=limit,
            cursor=cursor,
            state=[s.value for s in state] if state else None,
            severity=[s.value for s in severity] if severity else None,
            service=service,
            assignee=assignee,
            q=text,
            created_from=created_from,
            created_to=created_to,
            order=order,
        )
        return IncidentList(items=[_summary(i) for i in page.items], next_cursor=page.next_cursor)

    @server.tool(title="Get an incident and its timeline", annotations=READ)
    @_tool_errors
    async def get_incident(
        ctx: Context,
        incident: IncidentRef,
        timeline_limit: Annotated[int, Field(ge=1, le=100)] = 30,
        timeline_cursor: Annotated[
            int | None, Field(ge=0, description="The previous answer's next_timeline_cursor")
        ] = None,
    ) -> IncidentWithTimeline:
        """One incident: its fields, description and root cause, and its timeline (creation, every
        move with its note, edits, notes, alerts, hypotheses), oldest first."""
        return await _incident_with_timeline(
            _request(ctx), _key_of(ctx), incident, timeline_limit, timeline_cursor
        )

    @server.tool(title="Get the AI root-cause hypotheses", annotations=READ)
    @_tool_errors
    async def get_hypotheses(
        ctx: Context,
        incident: IncidentRef,
        generation: Annotated[
            int | None,
            Field(ge=1, le=2_147_483_647, description="An older generation; the latest by default"),
        ] = None,
    ) -> Hypotheses:
        """The ranked root-cause hypotheses for an incident, each with its confidence, the evidence
        behind it and responders' verdicts, plus the evidence items gathered (deploys, alerts,
        similar incidents, metrics). `pending` until the AI worker has answered."""
        return await _hypotheses(_request(ctx), _key_of(ctx), incident, generation)

    @server.tool(title="Find similar past incidents", annotations=READ)
    @_tool_errors
    async def find_similar_incidents(
        ctx: Context, incident: IncidentRef, limit: Annotated[int, Field(ge=1, le=10)] = 5
    ) -> SimilarIncidents:
        """Past incidents like this one, best first, with the root cause recorded when each was
        resolved: how this kind of problem was solved before."""
        return await _similar(_request(ctx), _key_of(ctx), incident, limit)

    @server.tool(title="Incident metrics over a window", annotations=READ)
    @_tool_errors
    async def incident_metrics(
        ctx: Context,
        created_from: Annotated[
            datetime | None, Field(description="Window start (RFC 3339); 30 days before its end by default")
        ] = None,
        created_to: Annotated[
            datetime | None, Field(description="Window end (RFC 3339); now by default")
        ] = None,
    ) -> metric_routes.IncidentMetricsRead:
        """For incidents created in the window: counts by state and severity, time to acknowledge and
        to resolve (mean, p50, p90 seconds), incidents per UTC day; and what is open now."""
        for bound in (created_from, created_to):
            if bound is not None and bound.tzinfo is None:
                raise ToolError("created_from and created_to need a UTC offset, e.g. 2026-12-01T10:00:00Z")
        return await metric_routes.incident_metrics(
            gateway_of(_request(ctx)), _caller(_key_of(ctx)), created_from=created_from, created_to=created_to
        )

    @server.tool(title="Recent deploys of a service", annotations=READ)
    @_tool_errors
    async def recent_deploys(
        ctx: Context,
        service: ServiceRef,
        since: Since = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        cursor: ActivityCursorArg = None,
    ) -> DeployPage:
        """Deploys of a service reported by CI, newest first: version, environment, commit, author and
        when. A deploy shortly before an incident started is a prime suspect."""
        return await _activity(ctx, ListServiceDeploys, service, since, limit, cursor, DeployPage)

    @server.tool(title="Recent alerts of a service", annotations=READ)
    @_tool_errors
    async def recent_alerts(
        ctx: Context,
        service: ServiceRef,
        since: Since = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        cursor: ActivityCursorArg = None,
    ) -> AlertPage:
        """Alerts received about a service (Alertmanager, Grafana), newest first by when they
        started: name, firing or resolved, summary, labels, and the incident they joined."""
        return await _activity(ctx, ListServiceAlerts, service, since, limit, cursor, AlertPage)

    @server.tool(title="Acknowledge or move an incident", annotations=WRITE)
    @_tool_errors
    async def move_incident(
        ctx: Context,
        incident: IncidentRef,
        to: Annotated[
            Literal["acknowledged", "investigating", "resolved", "detected"],
            Field(
                description="Where to move it; skipping forward is allowed, resolved → investigating reopens"
            ),
        ],
        note: Annotated[str, Field(max_length=5_000, description="Why, shown on the timeline")] = "",
        root_cause: Annotated[
            str | None,
            Field(max_length=2_000, description="Only when resolving: what the cause turned out to be"),
        ] = None,
    ) -> IncidentSummary:
        """Move an incident along its lifecycle (acknowledge it, start investigating, resolve it with
        its root cause), with a note. Needs a key with mcp:write. A move the lifecycle does not allow
        is refused, naming the allowed ones. Answers the incident as it now stands."""
        key = _key_of(ctx)
        caller, request = _caller(key, write=True), _request(ctx)
        row = await _resolve(request, caller.tenant_id, incident)
        if to == IncidentState.RESOLVED.value:
            body: MoveCreate | ResolutionCreate = ResolutionCreate.model_validate(
                {"to": to, "note": note, "root_cause": root_cause or None}
            )
        elif root_cause:
            raise ToolError("root_cause is recorded only when moving to resolved")
        else:
            body = MoveCreate.model_validate({"to": to, "note": note})
        moved = await incident_routes.transition_incident(
            gateway_of(request), str(row.id), body, caller, request
        )
        return _summary(moved)

    @server.tool(title="Add a note to an incident", annotations=WRITE)
    @_tool_errors
    async def add_note(
        ctx: Context,
        incident: IncidentRef,
        body: Annotated[str, Field(min_length=1, max_length=5_000, description="The note (plain text)")],
    ) -> IncidentSummary:
        """Add a note to an incident's timeline (findings, what was tried). Needs mcp:write."""
        key = _key_of(ctx)
        caller, request = _caller(key, write=True), _request(ctx)
        row = await _resolve(request, caller.tenant_id, incident)
        if not body.strip():
            raise ToolError("the note is blank")
        noted = await incident_routes.add_note(
            gateway_of(request), str(row.id), NoteCreate(body=body), caller, request
        )
        return _summary(noted)

    @server.tool(title="Confirm or reject a hypothesis", annotations=WRITE)
    @_tool_errors
    async def record_hypothesis_feedback(
        ctx: Context,
        incident: IncidentRef,
        rank: Annotated[int, Field(ge=1, le=10, description="The hypothesis's rank, from get_hypotheses")],
        verdict: FeedbackVerdict,
        comment: Annotated[str, Field(max_length=2_000)] = "",
        generation: Annotated[
            int | None, Field(ge=1, le=2_147_483_647, description="The latest generation by default")
        ] = None,
    ) -> FeedbackRecorded:
        """Record that a hypothesis was confirmed (it was the cause) or rejected. These verdicts are
        what the hypotheses' measured accuracy is based on. Needs mcp:write."""
        key = _key_of(ctx)
        caller, request = _caller(key, write=True), _request(ctx)
        row = await _resolve(request, caller.tenant_id, incident)
        body = FeedbackCreate(verdict=verdict, comment=comment, generation=generation)
        given = await incident_routes.hypothesis_feedback(
            gateway_of(request), str(row.id), rank, body, caller
        )
        return FeedbackRecorded(
            incident_key=row.key, generation=given.generation, rank=given.rank, verdict=given.verdict
        )

    @server.tool(title="Regenerate the hypotheses", annotations=WRITE)
    @_tool_errors
    async def regenerate_hypotheses(ctx: Context, incident: IncidentRef) -> RegenerationRequested:
        """Ask the AI worker for a new generation of hypotheses now (after new findings). It arrives
        within seconds: call get_hypotheses again and look for a higher generation. Needs mcp:write."""
        key = _key_of(ctx)
        caller, request = _caller(key, write=True), _request(ctx)
        row = await _resolve(request, caller.tenant_id, incident)
        asked = await incident_routes.regenerate_hypotheses(gateway_of(request), str(row.id), caller)
        return RegenerationRequested(
            incident_key=row.key,
            request_id=asked.request_id,
            message="requested: the new generation follows on get_hypotheses",
        )

    @server.resource(
        "incident://{key}",
        name="incident",
        title="An incident as markdown",
        description="An incident (incident://INC-42) with its timeline and hypotheses, as markdown",
        mime_type="text/markdown",
    )
    async def incident_resource(key: str, ctx: Context) -> str:
        try:
            request, caller = _request(ctx), _key_of(ctx)
            found = await _incident_with_timeline(request, caller, key, 100, None)
            hypotheses = await _hypotheses(request, caller, key, None)
        except ToolError as exc:
            if str(exc).startswith("not_found"):
                raise ResourceNotFoundError(str(exc)) from exc
            raise ResourceError(str(exc)) from exc
        except ApiError as exc:
            raise ResourceError(_explain(exc)) from exc
        return incident_markdown(found, hypotheses)

    @server.prompt(
        title="Investigate an incident",
        description="Everything a model needs to investigate an incident (e.g. INC-42): the incident and "
        "its timeline, the ranked hypotheses with evidence, and similar past incidents with their causes.",
    )
    async def investigate(
        incident: Annotated[str, Field(description="The incident's key (INC-42) or id")], ctx: Context
    ) -> str:
        try:
            request, key = _request(ctx), _key_of(ctx)
            found = await _incident_with_timeline(request, key, incident, 100, None)
            hypotheses = await _hypotheses(request, key, incident, None)
            similar = await _similar(request, key, incident, 5)
        except ToolError as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from exc
        except ApiError as exc:
            raise MCPError(INVALID_PARAMS, _explain(exc)) from exc
        past = [
            f"- {s.key} “{s.title}” ({s.state.value}): root cause: {s.root_cause or 'not recorded'} — {s.why}"
            for s in similar.items
        ] or ["- none found"]
        can_write = KeyScope.MCP_WRITE in key.scopes
        return "\n".join(
            [
                f"Investigate {found.incident.key} with me. Work out the most likely root cause, say how",
                "sure you are and which evidence supports it, and propose the next checks or the fix.",
                "Use the tools for more (get_incident with timeline_cursor, get_hypotheses with an older",
                "generation, search_incidents).",
                (
                    "You may record what you find with add_note, confirm or reject hypotheses with "
                    "record_hypothesis_feedback, and move the incident with move_incident, but ask me first."
                    if can_write
                    else "This key is read-only: suggest notes and moves for me to make."
                ),
                "",
                incident_markdown(found, hypotheses),
                "## Similar past incidents",
                "",
                *past,
            ]
        )

    return server


# ---- HTTP


class McpEndpoint:
    """`/mcp`: the integration key is checked here, before the SDK sees the request, on every request
    (a revoked key stops at once); the SDK's session manager (run by the gateway's lifespan) answers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: FastAPI = scope["app"]
        authorization = Headers(scope=scope).get("authorization", "")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            response = error_response(401, ErrorCode.UNAUTHORIZED.value, "missing integration key")
            await response(scope, receive, send)
            return
        try:
            key = await verify_integration_key(
                gateway_of(HTTPConnection(scope)).engine, presented.strip(), [KeyScope.MCP_READ.value]
            )
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.details)(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless: no server-to-client stream to open with GET (it would stay open with nothing
            # ever sent on it) and no session to end with DELETE; the spec allows a 405 for both.
            refusal = error_response(
                405, "method_not_allowed", "this MCP endpoint takes POST only", headers={"Allow": "POST"}
            )
            await refusal(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = key
        await app.state.mcp_server.session_manager.handle_request(scope, receive, send)


def install(app: FastAPI) -> None:
    """Serve `/mcp` (outside the OpenAPI document: it is JSON-RPC, not REST)."""
    app.state.mcp_server = build_server()
    app.router.routes.append(
        Route(PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The SDK's session manager for this run of the gateway (a manager runs once: each lifespan makes
    its own). Stateless with JSON answers: nothing is kept between requests, so replicas need no
    stickiness. The Host check is off: every request carries a secret key, which a page that rebinds
    DNS does not have, and the gateway's own CORS rules apply."""
    server: MCPServer = app.state.mcp_server
    server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        yield
