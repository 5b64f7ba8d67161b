"""Every error leaves the gateway as `{"error": {"code", "message", "details"}}` with a 4xx/5xx.

The shapes here (`ApiErrorCode`, `ErrorResponse`, one response per status) are also what the OpenAPI
document says every operation may answer (`gateway/openapi.py`); a route that can answer more than
its dependencies imply names those statuses with `responses=declare(...)`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from contracts.commands import ErrorCode
from runtime.db import is_invalid_value, is_unavailable, unavailable_message

log = structlog.get_logger(__name__)

STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class ApiErrorCode(StrEnum):
    """Every `error.code` the API answers: the services' `ErrorCode`s, and the gateway's own for what
    goes wrong at the HTTP level."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = ErrorCode.UNAUTHORIZED.value
    FORBIDDEN = ErrorCode.FORBIDDEN.value
    NOT_FOUND = ErrorCode.NOT_FOUND.value
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = ErrorCode.CONFLICT.value
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION = ErrorCode.VALIDATION.value
    RATE_LIMITED = ErrorCode.RATE_LIMITED.value
    INTERNAL = ErrorCode.INTERNAL.value
    UNAVAILABLE = ErrorCode.UNAVAILABLE.value
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"


# What each code means, for the document (the enum's description) and for people reading it.
CODE_MEANING: dict[ApiErrorCode, str] = {
    ApiErrorCode.BAD_REQUEST: "the body could not be read (not UTF-8)",
    ApiErrorCode.UNAUTHORIZED: "no credential, or one that is invalid, expired, revoked or ended",
    ApiErrorCode.FORBIDDEN: "the credential is valid but its role or scopes do not allow this",
    ApiErrorCode.NOT_FOUND: "no such resource in your organisation (another organisation's is absent too)",
    ApiErrorCode.METHOD_NOT_ALLOWED: "the path exists but not with this method (see `Allow`)",
    ApiErrorCode.CONFLICT: "the resource's state refuses this now (a move not allowed, a stale "
    "`expected_version`, a duplicate, a limit reached, a request with this Idempotency-Key in progress)",
    ApiErrorCode.PAYLOAD_TOO_LARGE: "the body is over MAX_REQUEST_BYTES",
    ApiErrorCode.UNSUPPORTED_MEDIA_TYPE: "the body is not of a media type this operation reads",
    ApiErrorCode.VALIDATION: "the request is malformed or breaks a rule; `details` lists each problem as "
    "`{loc, msg, type}`",
    ApiErrorCode.RATE_LIMITED: "too many attempts; retry after `Retry-After` seconds "
    "(also `details.retry_after`)",
    ApiErrorCode.INTERNAL: "a bug: the request may be retried, and should be reported",
    ApiErrorCode.UNAVAILABLE: "a dependency is down or a change is not yet in effect; retry after "
    "`Retry-After` seconds",
    ApiErrorCode.TIMEOUT: "a service did not answer in time; the command may or may not have been done",
    ApiErrorCode.HTTP_ERROR: "any other HTTP-level refusal",
}

CODE_OF_STATUS: dict[int, str] = {
    400: ApiErrorCode.BAD_REQUEST.value,
    401: ApiErrorCode.UNAUTHORIZED.value,
    403: ApiErrorCode.FORBIDDEN.value,
    404: ApiErrorCode.NOT_FOUND.value,
    405: ApiErrorCode.METHOD_NOT_ALLOWED.value,
    409: ApiErrorCode.CONFLICT.value,
    413: ApiErrorCode.PAYLOAD_TOO_LARGE.value,
    415: ApiErrorCode.UNSUPPORTED_MEDIA_TYPE.value,
    422: ApiErrorCode.VALIDATION.value,
    429: ApiErrorCode.RATE_LIMITED.value,
    500: ApiErrorCode.INTERNAL.value,
    503: ApiErrorCode.UNAVAILABLE.value,
    504: ApiErrorCode.TIMEOUT.value,
}
# Seconds a 503 (or 429) without a figure of its own asks the client to wait before retrying.
DEFAULT_RETRY_AFTER = 1
# A 401 says how to authenticate (RFC 9110 section 11.6.1).
WWW_AUTHENTICATE = "Bearer"


class ErrorBody(BaseModel):
    code: ApiErrorCode = Field(
        description="What went wrong, for programs: "
        + "; ".join(f"`{code.value}`: {meaning}" for code, meaning in CODE_MEANING.items())
    )
    message: str = Field(description="What went wrong, for people")
    details: Any = Field(
        default=None,
        description="For `validation_error`, a list of `{loc, msg, type}`; for `rate_limited` and some "
        "`unavailable`, `{retry_after}`; otherwise usually null",
    )


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: ErrorBody


# Per status: what it means for the operations that may answer it (the document's shared responses).
RESPONSE_MEANING: dict[int, str] = {
    400: "The body could not be read: it is not UTF-8 (`bad_request`)",
    401: "No credential, or an invalid, expired or revoked one (`unauthorized`); `WWW-Authenticate` says "
    "how to authenticate",
    403: "The caller's role or the key's scopes do not allow this (`forbidden`)",
    404: "No such resource in the caller's organisation (`not_found`)",
    409: "The resource's current state refuses this (`conflict`)",
    413: "The body is larger than the gateway accepts (`payload_too_large`)",
    422: "The request is malformed or breaks a rule the schema cannot state (`validation_error`, with "
    "each problem in `details`)",
    429: "Too many attempts (`rate_limited`): retry after `Retry-After` seconds",
    500: "An unexpected failure (`internal_error`)",
    503: "A dependency is unavailable, or a change is recorded but not yet in effect (`unavailable`): "
    "retry after `Retry-After` seconds",
    504: "A service did not answer in time (`timeout`): the command may or may not have taken effect",
}


def declare(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=declare(404, 409)`: statuses a route's handler can answer beyond what its
    dependencies imply (those are added to the document for every operation by `gateway.openapi`)."""
    unknown = set(statuses) - set(RESPONSE_MEANING)
    if unknown:
        raise ValueError(f"no shared error response for {sorted(unknown)}")
    return {status: {"model": ErrorResponse, "description": RESPONSE_MEANING[status]} for status in statuses}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def of(cls, code: ErrorCode, message: str, details: Any = None) -> ApiError:
        return cls(STATUS_OF.get(code, 500), code.value, message, details)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    """The one way an error leaves the gateway: with `WWW-Authenticate` on a 401 and `Retry-After`
    on a 429 or 503, as the document promises."""
    body = {"error": {"code": code, "message": message, "details": details}}
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    if status in (429, 503):
        wait = details.get("retry_after") if isinstance(details, dict) else None
        seconds = int(wait) if isinstance(wait, int | float) and wait >= 0 else DEFAULT_RETRY_AFTER
        headers.setdefault("Retry-After", str(seconds))
    return JSONResponse(body, status_code=status, headers=headers)


def allowed_methods(app: FastAPI, scope: Any) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the first route that
    matched the path, and the API has one route per method."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)  # a path that matches is PARTIAL for another method
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return error_response(422, ErrorCode.VALIDATION.value, "the request is invalid", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODE_OF_STATUS.get(exc.status_code, ApiErrorCode.HTTP_ERROR.value)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return error_response(exc.status_code, code, str(exc.detail), None, headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Answered outside the middleware that sets X-Correlation-ID (Starlette handles `Exception`
        # in its outermost layer), so the header is set here, from the request's log context.
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
        headers = {"X-Correlation-ID": correlation_id} if correlation_id else None
        if is_invalid_value(exc):  # a value the database cannot hold: bad input, not a bug
            return error_response(
                422, ErrorCode.VALIDATION.value, "a value is out of range or malformed", headers=headers
            )
        if is_unavailable(exc):
            log.warning("database_unavailable", path=request.url.path, error=str(exc))
            return error_response(503, ErrorCode.UNAVAILABLE.value, unavailable_message(exc), headers=headers)
        log.exception("unhandled_error", path=request.url.path)
        return error_response(500, ErrorCode.INTERNAL.value, "internal error", headers=headers)

    # The database's and the network's errors get their own handlers: Starlette answers a handler of
    # `Exception` and then raises the error again, which makes the server drop the keep-alive
    # connection, so a client's next request on it failed even though the 503 was well formed.
    for expected in (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(expected, unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
