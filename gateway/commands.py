"""The gateway's side of runtime.commands.CommandClient: the same client, its failures as HTTP errors."""

from __future__ import annotations

from typing import Any, TypeVar

import structlog
from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from contracts.commands import Command, CommandFailed, ErrorCode
from gateway.errors import ApiError
from runtime import commands
from runtime.service import validation_details

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)
BUS_UNAVAILABLE = "the message bus is unavailable; retry shortly"


def api_error(exc: CommandFailed | commands.CommandTransportError) -> ApiError:
    if isinstance(exc, CommandFailed):
        return ApiError.of(exc.code, exc.message, exc.details)
    if isinstance(exc, commands.NoResponders):
        return ApiError(503, ErrorCode.UNAVAILABLE.value, f"{exc.service} is unavailable")
    if isinstance(exc, commands.CommandTimedOut):
        return ApiError(504, "timeout", f"{exc.service} did not answer in time")
    return ApiError(503, ErrorCode.UNAVAILABLE.value, BUS_UNAVAILABLE)


class CommandClient:
    def __init__(self, nc: Client, timeout: float) -> None:
        self.client = commands.CommandClient(nc, timeout)

    async def call(
        self,
        command: type[Command] | str,
        body: dict[str, Any],
        reply_model: type[R],
        timeout: float | None = None,
    ) -> R:
        """`command` is the command's model (its subject from contracts), or the subject of one the
        service validates itself (the generic routes to integrations' and oncall's many commands)."""
        try:
            if isinstance(command, str):
                return await self.client.request(command, body, reply_model, timeout)
            try:
                correlation_id = structlog.contextvars.get_contextvars().get("correlation_id", "")
                built = command.model_validate({"correlation_id": correlation_id, **body})
            except ValidationError as exc:
                # What the service would have answered to the same body.
                raise ApiError.of(ErrorCode.VALIDATION, "invalid command", validation_details(exc)) from exc
            return await self.client.call(built, reply_model, timeout)
        except (CommandFailed, commands.CommandTransportError) as exc:
            raise api_error(exc) from exc
