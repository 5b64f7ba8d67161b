"""`/api/v1/integrations`: alerts from Alertmanager or Grafana and deploys from CI (with an
integration key), and, for admins, webhooks (Slack and signed generic ones), their delivery logs, the
payloads that were refused and the notifications received.

Inbound payloads are validated here, against the raw body, so that a refused one can be kept (with its
body and the reasons) for admins to read before the sender gets its 422. A valid Alertmanager
notification is handed to integrations, which stores it and answers at once (202): incidents open and
resolve in the background.

The admin lists are read through query commands to integrations rather than from gateway read
models: they are operational state (delivery attempts change every few seconds, webhook secrets must
not leave integrations), admin-only and low-volume, and putting them on the event log would flood it
with bookkeeping nobody else consumes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypeVar

import structlog
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts import integrations as ci
from contracts.commands import Done, ErrorCode
from contracts.events import KeyScope
from contracts.wire import NO_NUL
from gateway.auth.dependencies import AdminDep, CallerDep, KeyCaller, integration_key, verify_integration_key
from gateway.errors import ApiError, declare
from gateway.http.fields import UUID_PATTERN
from gateway.http.idempotency import idempotent
from gateway.integrations.schemas import (
    AlertsAcceptedRead,
    CorrelationPreviewCreate,
    CorrelationPreviewRead,
    CorrelationRuleCreate,
    CorrelationRulePage,
    CorrelationRuleRead,
    CorrelationRuleUpdate,
    DeployRead,
    InboundDeliveryPage,
    IntegrationSettingsRead,
    IntegrationSettingsUpdate,
    JsonAcceptedRead,
    JsonSourceCreate,
    JsonSourcePage,
    JsonSourceRead,
    JsonSourceUpdate,
    MappingPreviewCreate,
    MappingPreviewRead,
    PagerDutyAcceptedRead,
    PagerDutyChangeAcceptedRead,
    PagerDutyErrorRead,
    RejectionPage,
    SilenceCreate,
    SilencePage,
    SilenceRead,
    WebhookCreate,
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookPage,
    WebhookRead,
    WebhookSecretRead,
    WebhookUpdate,
)
from gateway.state import Gateway, GatewayDep, gateway_of

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])

AlertsKey = Annotated[KeyCaller, integration_key(KeyScope.ALERTS_WRITE)]
DeploysKey = Annotated[KeyCaller, integration_key(KeyScope.DEPLOYS_WRITE)]
WebhookId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[
    str | None, Query(pattern=UUID_PATTERN, description="The previous page's `next_cursor`, as it was given")
]
# Every route here is a command to integrations, which may not answer in time.
COMMAND = (504,)

R = TypeVar("R", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)


class _Keyed(Protocol):
    @property
    def routing_key(self) -> str: ...


T = TypeVar("T", bound=_Keyed)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined, to stand alone as an OpenAPI request body."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return dict(walk(schema))


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = _inline_refs(model.model_json_schema())
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _source(key: KeyCaller) -> dict[str, Any]:
    return ci.IntegrationSource(
        tenant_id=key.tenant_id, key_id=key.key_id, scopes=sorted(key.scopes)
    ).model_dump(mode="json")


def _problems(exc: ValidationError) -> tuple[list[dict[str, Any]], str]:
    """Each problem as `{loc, msg, type}`, and the first few in one line."""
    details = [
        {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    reasons = "; ".join(
        f"{'.'.join(str(p) for p in d['loc'][1:]) or 'body'}: {d['msg']}" for d in details[:5]
    )
    return details, reasons


async def _keep_rejected(
    gw: Gateway, key: KeyCaller, endpoint: ci.InboundSource, message: str, details: Any, raw: bytes
) -> None:
    """A refused body, kept for admins with the reasons."""
    try:
        await gw.commands.call(
            ci.RecordRejection.subject(),
            {
                "source": _source(key),
                "endpoint": endpoint.value,
                "message": message,
                "details": details,
                "body": raw[: 4 * (ci.REJECTED_BODY_KEPT + 1)].decode("utf-8", errors="replace")[
                    : ci.REJECTED_BODY_KEPT + 1
                ],
            },
            Done,
        )
    except ApiError as unavailable:
        # The sender still learns it was refused; only the admin's copy is missing.
        log.warning("rejection_not_recorded", error=unavailable.message)


async def _validated(request: Request, model: type[M], key: KeyCaller, endpoint: ci.InboundSource) -> M:
    """The body as `model`, or a 422 naming each problem; a refused body is kept for admins."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        details, reasons = _problems(exc)
        message = f"invalid {endpoint.value} payload: {reasons}"[:500]
        await _keep_rejected(gateway_of(request), key, endpoint, message, details, raw)
        raise ApiError(422, ErrorCode.VALIDATION.value, message, details) from exc


# ---- inbound


@router.post(
    "/alertmanager",
    status_code=202,
    response_model=AlertsAcceptedRead,
    openapi_extra=_json_body(ci.AlertmanagerPayload),
    dependencies=[idempotent(AlertsKey)],
    responses=declare(*COMMAND),
)
async def receive_alerts(gw: GatewayDep, request: Request, key: AlertsKey) -> AlertsAcceptedRead:
    """An Alertmanager webhook notification (payload version 4), or Grafana's Alertmanager-compatible
    one, with an integration key holding `alerts:write` as the bearer token. Answered once stored
    (202); one open incident per group (`groupKey`), alerts deduplicated by fingerprint, incidents
    resolved when all their alerts are (unless turned off in `/settings`)."""
    payload = await _validated(request, ci.AlertmanagerPayload, key, ci.InboundSource.ALERTMANAGER)
    accepted = await gw.commands.call(
        ci.ReceiveAlerts.subject(),
        {"source": _source(key), "payload": payload.model_dump(mode="json")},
        ci.AlertsAccepted,
    )
    return AlertsAcceptedRead(delivery_id=accepted.delivery_id, alerts=accepted.alerts)


@router.post(
    "/deploys",
    status_code=201,
    response_model=DeployRead,
    openapi_extra=_json_body(ci.DeployReport),
    responses={
        200: {"description": "The same deploy was reported before; nothing new was recorded"},
        **declare(*COMMAND),
    },
    dependencies=[idempotent(DeploysKey)],
)
async def record_deploy(gw: GatewayDep, request: Request, response: Response, key: DeploysKey) -> DeployRead:
    """A deploy from CI (`service_name`, `version`, `environment`, and optionally `commit`, `author`,
    `deployed_at`), with a key holding `deploys:write`. Published as `deploy.recorded`: the AI worker
    weighs it against the service's open incidents. Sending the same report again is harmless (200)."""
    report = await _validated(request, ci.DeployReport, key, ci.InboundSource.DEPLOYS)
    accepted = await gw.commands.call(
        ci.RecordDeploy.subject(),
        {"source": _source(key), "deploy": report.model_dump(mode="json")},
        ci.DeployAccepted,
    )
    if not accepted.created:
        response.status_code = 200
    return DeployRead.model_validate(accepted.deploy.model_dump())


# ---- PagerDuty Events API v2

PAGERDUTY_EVENT: TypeAdapter[ci.PagerDutyTriggerEvent | ci.PagerDutyUpdateEvent] = TypeAdapter(
    ci.PagerDutyEvent
)


def _adapter_body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    schema = _inline_refs(adapter.json_schema())
    # The mapping names `$defs` that are inlined now; the `event_action` constants tell the
    # alternatives apart on their own.
    schema.pop("discriminator", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _pd_error(status: int, title: str, message: str, errors: list[str]) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = PagerDutyErrorRead(status=title, message=message, errors=errors)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


PD_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": PagerDutyErrorRead,
        "description": "Not JSON, or not an event PagerDuty would accept: `errors` names each problem "
        "(PagerDuty's shape). Kept in `GET .../rejections` when the routing key is valid",
    },
    401: {
        "model": PagerDutyErrorRead,
        "description": "`routing_key` is not a live SRE Copilot integration key (PagerDuty's shape)",
    },
    403: {
        "model": PagerDutyErrorRead,
        "description": "The key lacks the scope this endpoint needs (PagerDuty's shape)",
    },
    **declare(*COMMAND),
}


async def _pd_read(
    request: Request, read: Callable[[bytes], T], scope: KeyScope, endpoint: ci.InboundSource
) -> tuple[T, KeyCaller] | JSONResponse:
    """The event and the key its `routing_key` names, or PagerDuty's 400, 401 or 403. The body is
    checked first (as PagerDuty does); a refused body is kept when its key is valid."""
    raw = await request.body()
    try:
        event = read(raw)
    except ValidationError as exc:
        details, reasons = _problems(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return _pd_error(
                400, "Unrecognized object", "Event object format is unrecognized", ["JSON parse error"]
            )
        try:
            sent = json.loads(raw)
        except ValueError:
            sent = None
        routing_key = sent.get("routing_key") if isinstance(sent, dict) else None
        if isinstance(routing_key, str):
            try:
                key = await verify_integration_key(gateway_of(request).engine, routing_key, [scope.value])
            except ApiError:
                pass
            else:
                message = f"invalid {endpoint.value} event: {reasons}"[:500]
                await _keep_rejected(gateway_of(request), key, endpoint, message, details, raw)
        errors = [f"{'.'.join(str(p) for p in d['loc'][1:]) or 'body'}: {d['msg']}" for d in details[:20]]
        return _pd_error(400, "invalid event", "Event object is invalid", errors)
    try:
        key = await verify_integration_key(gateway_of(request).engine, event.routing_key, [scope.value])
    except ApiError as refused:
        if refused.status == 401:
            return _pd_error(401, "invalid routing key", refused.message, ["routing_key: " + refused.message])
        if refused.status == 403:
            return _pd_error(403, "forbidden", refused.message, ["routing_key: " + refused.message])
        raise
    return event, key


@router.post(
    "/pagerduty/v2/enqueue",
    status_code=202,
    response_model=PagerDutyAcceptedRead,
    openapi_extra=_adapter_body(PAGERDUTY_EVENT),
    responses=PD_RESPONSES,
)
async def pagerduty_enqueue(gw: GatewayDep, request: Request) -> Any:
    """PagerDuty Events API v2, for anything that speaks it (Alertmanager's `pagerduty_configs`,
    Grafana's PagerDuty contact point, Argo CD, ...): `routing_key` is an integration key holding
    `alerts:write`. `trigger` opens an incident, or attaches to the open one of its `dedup_key`
    (made and answered when absent); `acknowledge` acknowledges it; `resolve` resolves it (unless
    auto-resolution is off in `/settings`). Answered once stored (202), as PagerDuty answers."""
    read = await _pd_read(
        request, PAGERDUTY_EVENT.validate_json, KeyScope.ALERTS_WRITE, ci.InboundSource.PAGERDUTY
    )
    if isinstance(read, JSONResponse):
        return read
    event, key = read
    alert = event.model_dump(mode="json", by_alias=True, exclude={"routing_key"})
    alert["dedup_key"] = event.dedup_key or uuid.uuid4().hex
    accepted = await gw.commands.call(
        ci.ReceivePagerDuty.subject(), {"source": _source(key), "event": alert}, ci.PagerDutyAccepted
    )
    return PagerDutyAcceptedRead(dedup_key=accepted.dedup_key)


@router.post(
    "/pagerduty/v2/change/enqueue",
    status_code=202,
    response_model=PagerDutyChangeAcceptedRead,
    openapi_extra=_json_body(ci.PagerDutyChange),
    responses=PD_RESPONSES,
)
async def pagerduty_change(gw: GatewayDep, request: Request) -> Any:
    """A PagerDuty change event, with an integration key holding `deploys:write` as `routing_key`:
    recorded as a deploy (`deploy.recorded`). The service is `custom_details.service` (else
    `payload.source`), the version `custom_details.version` (else the summary), the environment
    `custom_details.environment` (else `unknown`); the same change sent twice with its timestamp is
    recorded once."""
    read = await _pd_read(
        request,
        ci.PagerDutyChange.model_validate_json,
        KeyScope.DEPLOYS_WRITE,
        ci.InboundSource.PAGERDUTY_CHANGE,
    )
    if isinstance(read, JSONResponse):
        return read
    change, key = read
    await gw.commands.call(
        ci.RecordChange.subject(),
        {
            "source": _source(key),
            "payload": change.payload.model_dump(mode="json"),
            "links": [link.model_dump(mode="json") for link in change.links],
        },
        ci.DeployAccepted,
    )
    return PagerDutyChangeAcceptedRead()


# ---- generic JSON sources

SourceId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@router.post(
    "/json/{source_id}",
    status_code=202,
    response_model=JsonAcceptedRead,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"description": "Any JSON the source's mapping reads"}}
            },
        }
    },
    responses=declare(*COMMAND),
)
async def receive_json(
    gw: GatewayDep, source_id: SourceId, request: Request, key: AlertsKey
) -> JsonAcceptedRead:
    """Any JSON body, read with the JMESPath mapping of the JSON source `source_id` (see
    `/json-sources`), with a key holding `alerts:write`. Answered once stored (202) with what the
    mapping read; one open incident per dedup key, resolved when a body reads as resolved. A body
    that is not JSON, or that the mapping cannot read (no title, a status that is neither firing nor
    resolved, ...), is a 422 with the reason, and kept in `GET .../rejections`."""
    raw = await request.body()
    text = raw[: 4 * (ci.REJECTED_BODY_KEPT + 1)].decode("utf-8", errors="replace").replace("\x00", "")
    try:
        # An integer too long for Python's int-from-text limit is kept as its digits.
        body = json.loads(raw, parse_int=lambda digits: int(digits) if len(digits) <= 4_000 else digits)
    except ValueError as exc:
        message = f"invalid {ci.InboundSource.JSON.value} payload: not JSON ({exc})"[:500]
        details = [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]
        await _keep_rejected(gw, key, ci.InboundSource.JSON, message, details, raw.replace(b"\x00", b""))
        raise ApiError(422, ErrorCode.VALIDATION.value, message, details) from exc
    accepted = await gw.commands.call(
        ci.ReceiveJson.subject(),
        {
            "source": _source(key),
            "source_id": source_id,
            "body": body,
            "raw": text[: ci.REJECTED_BODY_KEPT + 1],
        },
        ci.JsonAccepted,
    )
    return JsonAcceptedRead(delivery_id=accepted.delivery_id, alert=accepted.alert)


@router.post("/json-sources/preview", response_model=MappingPreviewRead, responses=declare(*COMMAND))
async def preview_mapping(gw: GatewayDep, body: MappingPreviewCreate, caller: AdminDep) -> MappingPreviewRead:
    """What `sample` (a body as the sender sends it) reads as with `mapping`, before it is saved:
    `alert`, or `problem` saying which expression found what. A mapping that does not compile is a
    422 naming the field and its expression."""
    return await gw.commands.call(
        ci.PreviewMapping, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, MappingPreviewRead
    )


@router.post(
    "/json-sources", status_code=201, response_model=JsonSourceRead, responses=declare(409, *COMMAND)
)
async def create_json_source(gw: GatewayDep, body: JsonSourceCreate, caller: AdminDep) -> JsonSourceRead:
    """A generic JSON source: a name and a JMESPath mapping (`title` required; `severity`,
    `dedup_key`, `status`, `service`, `labels`). Senders POST to `/json/{id}`. A mapping that does
    not compile is a 422 naming the expression."""
    return await gw.commands.call(
        ci.CreateJsonSource, {"caller": caller.model_dump(), **body.model_dump(mode="json")}, JsonSourceRead
    )


@router.get("/json-sources", response_model=JsonSourcePage, responses=declare(*COMMAND))
async def list_json_sources(
    gw: GatewayDep, caller: AdminDep, limit: Limit = 50, cursor: Cursor = None
) -> JsonSourcePage:
    return await gw.commands.call(
        ci.ListJsonSources, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, JsonSourcePage
    )


@router.get("/json-sources/{source_id}", response_model=JsonSourceRead, responses=declare(*COMMAND))
async def get_json_source(gw: GatewayDep, source_id: SourceId, caller: AdminDep) -> JsonSourceRead:
    return await gw.commands.call(
        ci.GetJsonSource, {"caller": caller.model_dump(), "source_id": source_id}, JsonSourceRead
    )


@router.patch("/json-sources/{source_id}", response_model=JsonSourceRead, responses=declare(*COMMAND))
async def update_json_source(
    gw: GatewayDep, source_id: SourceId, body: JsonSourceUpdate, caller: AdminDep
) -> JsonSourceRead:
    """Rename it or change its mapping: bodies received from then on are read with the new one."""
    return await gw.commands.call(
        ci.UpdateJsonSource,
        {
            "caller": caller.model_dump(),
            "source_id": source_id,
            **body.model_dump(mode="json", exclude_unset=True),
        },
        JsonSourceRead,
    )


@router.delete("/json-sources/{source_id}", status_code=204, responses=declare(*COMMAND))
async def delete_json_source(gw: GatewayDep, source_id: SourceId, caller: AdminDep) -> Response:
    """Delete it: bodies sent to it are refused from then on (404)."""
    await gw.commands.call(ci.DeleteJsonSource, {"caller": caller.model_dump(), "source_id": source_id}, Done)
    return Response(status_code=204)


# ---- maintenance windows and silences

SilenceId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@router.post("/silences", status_code=201, response_model=SilenceRead, responses=declare(409, *COMMAND))
async def create_silence(gw: GatewayDep, body: SilenceCreate, caller: CallerDep) -> SilenceRead:
    """A maintenance window or silence (responders and up): firing alerts of `services` and/or
    matching every matcher (`label`, `op` `=`/`!=`/`=~`/`!~`, `value`), arriving while it is on, are
    recorded (`silenced` in `GET .../inbound`) and open no incident, page and notify nobody. One-off
    (`starts_at` to `ends_at`) or weekly (`recurrence`: `weekdays`, `start_time`, `duration_minutes`,
    `timezone`, between `starts_at` and `ends_at` if given)."""
    return await gw.commands.call(
        ci.CreateSilence,
        {"caller": caller.model_dump(), "silence": body.model_dump(mode="json")},
        SilenceRead,
    )


@router.get("/silences", response_model=SilencePage, responses=declare(*COMMAND))
async def list_silences(
    gw: GatewayDep,
    caller: CallerDep,
    state: ci.SilenceState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SilencePage:
    """Silences newest first, each `active` (with when it ends), `upcoming` (with when it starts) or
    `expired`; `state` keeps one kind."""
    return await gw.commands.call(
        ci.ListSilences,
        {"caller": caller.model_dump(), "state": state, "limit": limit, "cursor": cursor},
        SilencePage,
    )


@router.get("/silences/{silence_id}", response_model=SilenceRead, responses=declare(*COMMAND))
async def get_silence(gw: GatewayDep, silence_id: SilenceId, caller: CallerDep) -> SilenceRead:
    return await gw.commands.call(
        ci.GetSilence, {"caller": caller.model_dump(), "silence_id": silence_id}, SilenceRead
    )


@router.delete("/silences/{silence_id}", status_code=204, responses=declare(*COMMAND))
async def delete_silence(gw: GatewayDep, silence_id: SilenceId, caller: CallerDep) -> Response:
    """End it now: alerts arriving from then on are not silenced."""
    await gw.commands.call(ci.DeleteSilence, {"caller": caller.model_dump(), "silence_id": silence_id}, Done)
    return Response(status_code=204)


# ---- correlation rules

RuleId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@router.post("/correlation-rules/preview", response_model=CorrelationPreviewRead, responses=declare(*COMMAND))
async def preview_correlation(
    gw: GatewayDep, body: CorrelationPreviewCreate, caller: AdminDep
) -> CorrelationPreviewRead:
    """Which of the last day's firing alerts (from every source, as `GET .../inbound` keeps them)
    the rule would have put in one incident: `clusters` of alerts of several groups sharing the
    rule's label values, each with the incidents they opened; `incidents_before` and
    `incidents_after` count the incidents with and without it. Nothing is saved; `enabled` is not
    read."""
    return await gw.commands.call(
        ci.PreviewCorrelation,
        {"caller": caller.model_dump(), "rule": body.model_dump(mode="json")},
        CorrelationPreviewRead,
    )


@router.post(
    "/correlation-rules",
    status_code=201,
    response_model=CorrelationRuleRead,
    responses=declare(409, *COMMAND),
)
async def create_correlation_rule(
    gw: GatewayDep, body: CorrelationRuleCreate, caller: AdminDep
) -> CorrelationRuleRead:
    """A correlation rule (admins): a firing alert that would open an incident joins an open one
    instead when one of that incident's firing alerts, of another group or source, has the same
    values for every one of `labels` and started within `window_minutes` of it. `sources` (empty:
    all) limits it to `alertmanager` (and Grafana), `pagerduty` or `json` alerts. Rules are tried
    oldest first; the first that finds an incident decides. The join is an `alert.correlated` event
    on the incident's timeline, naming the rule and the reason."""
    return await gw.commands.call(
        ci.CreateCorrelationRule,
        {"caller": caller.model_dump(), "rule": body.model_dump(mode="json")},
        CorrelationRuleRead,
    )


@router.get("/correlation-rules", response_model=CorrelationRulePage, responses=declare(*COMMAND))
async def list_correlation_rules(
    gw: GatewayDep, caller: AdminDep, limit: Limit = 50, cursor: Cursor = None
) -> CorrelationRulePage:
    """Oldest first: the order they are tried in."""
    return await gw.commands.call(
        ci.ListCorrelationRules,
        {"caller": caller.model_dump(), "limit": limit, "cursor": cursor},
        CorrelationRulePage,
    )


@router.get("/correlation-rules/{rule_id}", response_model=CorrelationRuleRead, responses=declare(*COMMAND))
async def get_correlation_rule(gw: GatewayDep, rule_id: RuleId, caller: AdminDep) -> CorrelationRuleRead:
    return await gw.commands.call(
        ci.GetCorrelationRule, {"caller": caller.model_dump(), "rule_id": rule_id}, CorrelationRuleRead
    )


@router.patch("/correlation-rules/{rule_id}", response_model=CorrelationRuleRead, responses=declare(*COMMAND))
async def update_correlation_rule(
    gw: GatewayDep, rule_id: RuleId, body: CorrelationRuleUpdate, caller: AdminDep
) -> CorrelationRuleRead:
    """Change it, or turn it on or off (`enabled`): alerts arriving from then on are decided by the
    rule as it is now; those already correlated stay where they are."""
    return await gw.commands.call(
        ci.UpdateCorrelationRule,
        {
            "caller": caller.model_dump(),
            "rule_id": rule_id,
            **body.model_dump(mode="json", exclude_none=True),
        },
        CorrelationRuleRead,
    )


@router.delete("/correlation-rules/{rule_id}", status_code=204, responses=declare(*COMMAND))
async def delete_correlation_rule(gw: GatewayDep, rule_id: RuleId, caller: AdminDep) -> Response:
    await gw.commands.call(
        ci.DeleteCorrelationRule, {"caller": caller.model_dump(), "rule_id": rule_id}, Done
    )
    return Response(status_code=204)


@router.get("/rejections", response_model=RejectionPage, responses=declare(*COMMAND))
async def list_rejections(
    gw: GatewayDep, caller: AdminDep, limit: Limit = 50, cursor: Cursor = None
) -> RejectionPage:
    """Payloads refused with a 4xx (newest first), with the reasons and the body as it arrived, so a
    misconfigured sender is visible rather than silently dropped."""
    return await gw.commands.call(
        ci.ListRejections, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, RejectionPage
    )


@router.get("/inbound", response_model=InboundDeliveryPage, responses=declare(*COMMAND))
async def list_inbound(
    gw: GatewayDep,
    caller: AdminDep,
    status: ci.InboundStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> InboundDeliveryPage:
    """Accepted Alertmanager notifications (newest first): `pending`, `processed` (with what they did:
    incident opened, alerts attached, duplicates ignored, incidents being resolved) or `failed`."""
    return await gw.commands.call(
        ci.ListInbound,
        {"caller": caller.model_dump(), "status": status, "limit": limit, "cursor": cursor},
        InboundDeliveryPage,
    )


@router.get("/settings", response_model=IntegrationSettingsRead, responses=declare(*COMMAND))
async def get_settings(gw: GatewayDep, caller: AdminDep) -> IntegrationSettingsRead:
    return await gw.commands.call(
        ci.GetIntegrationSettings, {"caller": caller.model_dump()}, IntegrationSettingsRead
    )


@router.put("/settings", response_model=IntegrationSettingsRead, responses=declare(*COMMAND))
async def update_settings(
    gw: GatewayDep, body: IntegrationSettingsUpdate, caller: AdminDep
) -> IntegrationSettingsRead:
    """`auto_resolve` (on by default): resolve an incident opened from alerts when all of them are."""
    return await gw.commands.call(
        ci.UpdateIntegrationSettings,
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        IntegrationSettingsRead,
    )


# ---- outbound webhooks


@router.post("/webhooks", status_code=201, response_model=WebhookSecretRead, responses=declare(409, *COMMAND))
async def create_webhook(gw: GatewayDep, body: WebhookCreate, caller: AdminDep) -> WebhookSecretRead:
    """A Slack incoming webhook (`kind: slack`: a Block Kit message) or a generic one (`kind:
    generic`: the event envelope as JSON, signed). `event_types`: `incident.created`,
    `incident.state_changed`, `hypothesis.generated` (all by default). A generic webhook's `secret`
    is in this answer only: verify `SRE-Copilot-Signature` with it (see the README)."""
    issued = await gw.commands.call(
        ci.CreateWebhook,
        {"caller": caller.model_dump(), **body.model_dump(mode="json")},
        ci.WebhookIssued,
    )
    return WebhookSecretRead(**issued.webhook.model_dump(), secret=issued.secret)


@router.get("/webhooks", response_model=WebhookPage, responses=declare(*COMMAND))
async def list_webhooks(
    gw: GatewayDep, caller: AdminDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookPage:
    return await gw.commands.call(
        ci.ListWebhooks, {"caller": caller.model_dump(), "limit": limit, "cursor": cursor}, WebhookPage
    )


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead, responses=declare(*COMMAND))
async def get_webhook(gw: GatewayDep, webhook_id: WebhookId, caller: AdminDep) -> WebhookRead:
    return await gw.commands.call(
        ci.GetWebhook, {"caller": caller.model_dump(), "webhook_id": webhook_id}, WebhookRead
    )


@router.patch("/webhooks/{webhook_id}", response_model=WebhookRead, responses=declare(409, *COMMAND))
async def update_webhook(
    gw: GatewayDep, webhook_id: WebhookId, body: WebhookUpdate, caller: AdminDep
) -> WebhookRead:
    """Change its name, URL, event types, or turn it off (`enabled: false`) and on again. A Slack
    signing secret for a webhook of another kind is a 409 (it conflicts with the webhook's kind)."""
    return await gw.commands.call(
        ci.UpdateWebhook,
        {"caller": caller.model_dump(), "webhook_id": webhook_id, **body.model_dump(exclude_unset=True)},
        WebhookRead,
    )


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=declare(*COMMAND))
async def delete_webhook(gw: GatewayDep, webhook_id: WebhookId, caller: AdminDep) -> Response:
    """Delete it and its delivery log; nothing more is sent to it."""
    await gw.commands.call(ci.DeleteWebhook, {"caller": caller.model_dump(), "webhook_id": webhook_id}, Done)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries", response_model=WebhookDeliveryPage, responses=declare(*COMMAND)
)
async def list_deliveries(
    gw: GatewayDep,
    webhook_id: WebhookId,
    caller: AdminDep,
    status: ci.DeliveryStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WebhookDeliveryPage:
    """Its deliveries, newest first: `pending` (with `next_attempt_at`), `succeeded`, or `failed` after
    the last attempt (with the last status code and error)."""
    return await gw.commands.call(
        ci.ListDeliveries,
        {
            "caller": caller.model_dump(),
            "webhook_id": webhook_id,
            "status": status,
            "limit": limit,
            "cursor": cursor,
        },
        WebhookDeliveryPage,
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=WebhookDeliveryRead,
    responses=declare(409, *COMMAND),
)
async def retry_delivery(
    gw: GatewayDep,
    webhook_id: WebhookId,
    delivery_id: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
    caller: AdminDep,
) -> WebhookDeliveryRead:
    """Send a failed delivery again, with a fresh series of attempts (a pending one is sent now)."""
    return await gw.commands.call(
        ci.RetryDelivery,
        {"caller": caller.model_dump(), "webhook_id": webhook_id, "delivery_id": delivery_id},
        WebhookDeliveryRead,
    )
