"""Bounding request bodies, chunked ones included."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException


class BodySizeLimit:
    """ASGI middleware: a body longer than `max_bytes` is a 413 even when it comes without a
    Content-Length (chunked), which a header check alone would let through unbounded."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"request bodies are limited to {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)
