"""Every error leaves the gateway as `{"error": {"code", "message", "details"}}` with a 4xx/5xx."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.commands import ErrorCode
from runtime.db import is_unavailable, unavailable_message

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

CODE_OF_STATUS = {
    400: "bad_request",
    401: ErrorCode.UNAUTHORIZED.value,
    403: ErrorCode.FORBIDDEN.value,
    404: ErrorCode.NOT_FOUND.value,
    405: "method_not_allowed",
    409: ErrorCode.CONFLICT.value,
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: ErrorCode.VALIDATION.value,
    429: ErrorCode.RATE_LIMITED.value,
    503: ErrorCode.UNAVAILABLE.value,
    504: "timeout",
}


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
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status in (429, 503) and isinstance(exc.details, dict) and "retry_after" in exc.details:
            headers = {"Retry-After": str(int(exc.details["retry_after"]))}
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return error_response(422, ErrorCode.VALIDATION.value, "the request is invalid", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODE_OF_STATUS.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DataError):  # a value the database cannot hold: bad input, not a bug
            return error_response(422, ErrorCode.VALIDATION.value, "a value is out of range or malformed")
        if is_unavailable(exc):
            log.warning("database_unavailable", path=request.url.path, error=str(exc))
            return error_response(503, ErrorCode.UNAVAILABLE.value, unavailable_message(exc))
        log.exception("unhandled_error", path=request.url.path)
        return error_response(500, ErrorCode.INTERNAL.value, "internal error")

    # The database's and the network's errors get their own handlers: Starlette answers a handler of
    # `Exception` and then raises the error again, which makes the server drop the keep-alive
    # connection, so a client's next request on it failed even though the 503 was well formed.
    for expected in (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(expected, unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
