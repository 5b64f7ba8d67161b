"""The API's OpenAPI document: FastAPI's, completed so that every operation declares every status it
can answer, with the shared error model (`gateway.errors.ErrorResponse`) and its headers.

What an operation may answer follows from what it requires, so it is added here, once, rather than
written on every route:

- a credential (a security requirement) -> 401, with `WWW-Authenticate`; a role above viewer, a
  write under the default rule (viewers only read), or an integration key's scope -> 403;
- a path parameter -> 404; any parameter or body -> 422; a body -> 400 and 413;
- `Idempotency-Key` -> 409 (a request with that key in progress) and `Idempotent-Replayed` on
  success;
- anything that touches the database or the bus (every operation with a credential, a parameter or
  a body) -> 503 with `Retry-After`; everything -> 500.

What only a handler knows (a 404 by a body's id, a 409 of the domain, a 429 of a rate limit, a 504 of
a command) the route declares with `responses=errors.declare(...)`.

Also: every response states `X-Correlation-ID`; every string a request body can hold that has no
pattern of its own gets `pattern: ^[^\\x00]*$` (the gateway refuses NUL characters:
`contracts.wire.NulFree`); links that the field names do not make obvious are added (`LINKS`); and
operation ids are the handlers' names (`operation_id`).

`python -m gateway.openapi` prints the document; `docs/openapi.json` is that output, committed, and
`tests/unit/test_generated_contracts.py` fails when it is stale."""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from contracts.wire import NO_NUL
from gateway import errors

# The shared error responses, by status, as `#/components/responses/<name>`.
RESPONSE_NAMES: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "ValidationFailed",
    429: "RateLimited",
    500: "InternalError",
    503: "Unavailable",
    504: "Timeout",
}
SAFE_METHODS = frozenset({"get", "head", "options"})
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"
# FastAPI's own 422 model, which this API never answers (its errors are `ErrorResponse`).
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

HEADERS: dict[str, dict[str, Any]] = {
    "X-Correlation-ID": {
        "description": "The request's correlation id (yours, when you sent `X-Correlation-ID`), to "
        "follow it through the logs",
        "schema": {"type": "string", "maxLength": 64},
    },
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: `Bearer`",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same "
        "`Idempotency-Key`",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
# Headers a status always carries.
REQUIRED_HEADERS: dict[int, tuple[str, ...]] = {
    401: ("WWW-Authenticate",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}


# OpenAPI links (for clients, and for schemathesis's stateful phase) that the response's field names
# do not make obvious: (operation, status) -> {link name: (target operation, parameters)}.
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("create_key", "201"): {
        "GetKey": ("get_key", {"key_id": "$response.body#/id"}),
        "RevokeKey": ("revoke_key", {"key_id": "$response.body#/id"}),
    },
    ("invite_user", "201"): {
        "GetUser": ("get_user", {"user_id": "$response.body#/user/id"}),
        "ChangeRole": ("change_role", {"user_id": "$response.body#/user/id"}),
        "Deactivate": ("deactivate_user", {"user_id": "$response.body#/user/id"}),
        "Reactivate": ("reactivate_user", {"user_id": "$response.body#/user/id"}),
    },
    ("create_schedule", "201"): {
        name: (operation, {"schedule_id": "$response.body#/id"})
        for name, operation in (
            ("GetSchedule", "get_schedule"),
            ("UpdateSchedule", "update_schedule"),
            ("DeleteSchedule", "delete_schedule"),
            ("CreateOverride", "create_override"),
            ("OnCall", "on_call"),
            ("NextShifts", "next_shifts"),
        )
    },
    ("issue_calendar_feed", "201"): {
        "MyCalendar": ("my_calendar", {"token": "$response.body#/token"}),
    },
    ("create_override", "201"): {
        name: (operation, {"schedule_id": "$response.body#/schedule_id", "override_id": "$response.body#/id"})
        for name, operation in (("GetOverride", "get_override"), ("DeleteOverride", "delete_override"))
    },
}


def _add_links(document: dict[str, Any]) -> None:
    operations = {
        op["operationId"]: op for item in document.get("paths", {}).values() for op in item.values()
    }
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][status]
        response["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
            if target in operations
        }


def _header_ref(name: str, required: bool) -> dict[str, Any]:
    if required:
        # A reference cannot be marked required, so the required ones are spelled out.
        return {**HEADERS[name], "required": True}
    return {"$ref": f"#/components/headers/{name}"}


def _shared_responses() -> dict[str, Any]:
    responses = {}
    for status, name in RESPONSE_NAMES.items():
        headers = {"X-Correlation-ID": _header_ref("X-Correlation-ID", True)}
        for header in REQUIRED_HEADERS.get(status, ()):
            headers[header] = _header_ref(header, True)
        responses[name] = {
            "description": errors.RESPONSE_MEANING[status],
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
        }
    return responses


def _is_error_model(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == ERROR_SCHEMA_REF)


def implied_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer because of what it requires (see the module's
    docstring)."""
    statuses = {500}
    security: list[dict[str, list[str]]] = operation.get("security", [])
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    body = "requestBody" in operation
    if security:
        statuses.add(401)
    for requirement in security:
        for scheme, scopes in requirement.items():
            above_viewer = any(scope != "viewer" for scope in scopes)
            default_rule = scheme == "HTTPBearer" and not scopes and method not in SAFE_METHODS
            if above_viewer or default_rule:
                statuses.add(403)
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if parameters or body:
        statuses.add(422)
    if body:
        statuses |= {400, 413}
    if any(p["in"] == "header" and p["name"].lower() == "idempotency-key" for p in parameters):
        statuses.add(409)
    if security or parameters or body:
        statuses.add(503)
    return statuses


def _complete_operation(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    # FastAPI's default 422 describes its own error model, not this API's.
    responses.pop("422", None)
    for implied in implied_statuses(method, operation):
        responses.setdefault(str(implied), {"$ref": ERROR_SCHEMA_REF})
    idempotent = any(p["name"].lower() == "idempotency-key" for p in operation.get("parameters", []))
    for status, response in responses.items():
        code = int(status)
        if "$ref" in response or _is_error_model(response):
            responses[status] = {"$ref": f"#/components/responses/{RESPONSE_NAMES[code]}"}
            continue
        headers = response.setdefault("headers", {})
        headers["X-Correlation-ID"] = _header_ref("X-Correlation-ID", True)
        for header in REQUIRED_HEADERS.get(code, ()):
            headers[header] = _header_ref(header, True)
        if idempotent and 200 <= code < 300:
            headers["Idempotent-Replayed"] = _header_ref("Idempotent-Replayed", False)
    operation["responses"] = dict(sorted(responses.items()))


# Formats whose values never hold a NUL character anyway.
FORMATS_WITHOUT_NUL = frozenset({"date-time", "email", "uuid", "uri"})


def _is_plain_string(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return (kind == "string" or (isinstance(kind, list) and "string" in kind)) and not (
        {"pattern", "enum", "const"} & schema.keys() or schema.get("format") in FORMATS_WITHOUT_NUL
    )


def _forbid_nul(node: Any, schemas: dict[str, Any], seen: set[str]) -> None:
    """Every string a request body can hold gets `pattern: NO_NUL`, as the gateway enforces it
    (`contracts.wire.NulFree`); components it refers to are changed in place (a response holding
    one never has a NUL either: the database cannot store it)."""
    if isinstance(node, list):
        for item in node:
            _forbid_nul(item, schemas, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            _forbid_nul(schemas[name], schemas, seen)
        return
    if _is_plain_string(node):
        node["pattern"] = NO_NUL
    names = node.get("propertyNames")
    if isinstance(names, dict) and not {"pattern", "enum", "const"} & names.keys():
        names["pattern"] = NO_NUL
    for key in ("properties", "$defs"):
        for child in (node.get(key) or {}).values():
            _forbid_nul(child, schemas, seen)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
        _forbid_nul(node.get(key), schemas, seen)


BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _integral_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds bounds as floats (an `int | None` field's `le=5` comes out as
    `5.0`); an integer's bounds are written as integers."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _integral_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _integral_bounds(item)


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node)) if node else set()
    return set()


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with the shared error responses and headers on every operation."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = errors.ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    seen: set[str] = set()
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            _complete_operation(method, operation)
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _forbid_nul(content.get("schema"), schemas, seen)
    _add_links(document)
    _integral_bounds(document)
    components["responses"] = _shared_responses()
    components["headers"] = {name: HEADERS[name] for name in sorted(HEADERS)}
    used = _references({k: v for k, v in document.items() if k != "components"}) | _references(
        {k: v for k, v in components.items() if k != "schemas"}
    )
    for name in FASTAPI_VALIDATION_SCHEMAS:
        if f"#/components/schemas/{name}" not in used:
            schemas.pop(name, None)
    components["schemas"] = dict(sorted(schemas.items()))
    return document


def operation_id(route: APIRoute) -> str:
    """An operation's id is its handler's name (`create_incident`), which generated clients use as
    the method's name; FastAPI's own would be `create_incident_api_v1_incidents_post`."""
    return route.name


def install(app: FastAPI) -> None:
    """Serve the completed document at `/openapi.json` (built once, on first request). The app is
    made with `generate_unique_id_function=operation_id`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document() -> dict[str, Any]:
    """The document as the gateway serves it, built without starting anything."""
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    return create_app(GatewaySettings(_env_file=None)).openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(document()))
