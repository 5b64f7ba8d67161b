"""Commands from the gateway to the services: NATS request/reply, typed errors mapped to HTTP."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import nats.errors
import structlog
from nats.aio.client import Client
from pydantic import BaseModel

from contracts.commands import ErrorCode, ErrorReply
from gateway.errors import ApiError
from runtime import tracing

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)
BUS_UNAVAILABLE = "the message bus is unavailable; retry shortly"


class CommandClient:
    def __init__(self, nc: Client, timeout: float) -> None:
        self.nc, self.timeout = nc, timeout

    async def call(
        self, subject: str, body: dict[str, Any], reply_model: type[R], timeout: float | None = None
    ) -> R:
        if not self.nc.is_connected:
            # While the connection is being re-established nats-py would buffer the request until
            # it times out (a 504 that leaves the caller unsure); nothing was sent: say so now.
            raise ApiError(503, ErrorCode.UNAVAILABLE.value, BUS_UNAVAILABLE)
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id", "")
        payload = json.dumps({"correlation_id": correlation_id, **body}, default=str).encode()
        try:
            with tracing.span(subject, "client"):
                headers = tracing.inject({}) if tracing.enabled() else None
                msg = await self.nc.request(
                    subject, payload, timeout=timeout or self.timeout, headers=headers
                )
        except nats.errors.NoRespondersError as exc:
            raise ApiError(
                503, ErrorCode.UNAVAILABLE.value, f"{subject.split('.')[1]} is unavailable"
            ) from exc
        except nats.errors.TimeoutError as exc:
            raise ApiError(504, "timeout", f"{subject.split('.')[1]} did not answer in time") from exc
        except (nats.errors.Error, OSError) as exc:  # the bus itself is down or reconnecting
            raise ApiError(503, ErrorCode.UNAVAILABLE.value, BUS_UNAVAILABLE) from exc
        reply = json.loads(msg.data)
        if isinstance(reply, dict) and "error" in reply:
            error = ErrorReply.model_validate(reply).error
            raise ApiError.of(error.code, error.message, error.details)
        return reply_model.model_validate(reply)
