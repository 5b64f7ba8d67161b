"""Every request's correlation id, and the cheapest refusal of a body declared too large."""

from __future__ import annotations

import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors


class Correlate:
    """Outermost ASGI middleware: every request gets a correlation id (the caller's
    `X-Correlation-ID`, else a new one) bound to its log lines and echoed on its response, and a
    declared Content-Length over the limit is a 413 before anything reads the body. Pure ASGI rather
    than `@app.middleware("http")` (Starlette's BaseHTTPMiddleware), which runs every request in a
    task of its own with a memory stream in between (see bench/PROFILE.md)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        correlation_id = headers.get("x-correlation-id", "")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(service="gateway", correlation_id=correlation_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Correlation-ID"] = correlation_id
            await send(message)

        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            too_large = errors.error_response(
                413, "payload_too_large", f"request bodies are limited to {self.max_bytes} bytes"
            )
            await too_large(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)
