"""The one client for commands between processes: NATS request/reply carrying the correlation id and
the trace context, an ErrorReply raised as CommandFailed, the reply validated into its model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import nats.errors
import structlog
from nats.aio.client import Client
from pydantic import BaseModel

from contracts.commands import Command, CommandFailed, ErrorReply
from runtime import tracing

R = TypeVar("R", bound=BaseModel)


class CommandTransportError(Exception):
    """The command got no answer; `service` is the one it was for (the subject's second token)."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


class NoResponders(CommandTransportError):
    """No replica of the service listens: nothing handled the command."""


# Both are OSErrors, as nats-py's own timeout is: a handler that meets one while handling a command
# answers "unavailable" (runtime.db.is_unavailable), and loops that retry on OSError go on doing so.
class CommandTimedOut(CommandTransportError, TimeoutError):
    """No answer within the timeout: the command may or may not have been handled."""


class BusUnavailable(CommandTransportError, ConnectionError):
    """The connection to the bus is down or being re-established: nothing was sent."""


def _service_of(subject: str) -> str:
    parts = subject.split(".")
    return parts[1] if len(parts) > 1 else subject


class CommandClient:
    """`connection` is the NATS client, or a callable returning it (a FastStream broker connects
    only once the service has started)."""

    def __init__(self, connection: Client | Callable[[], Client], timeout: float) -> None:
        self._connection, self.timeout = connection, timeout

    @property
    def nc(self) -> Client:
        return self._connection if isinstance(self._connection, Client) else self._connection()

    async def call(self, command: Command, reply_model: type[R], timeout: float | None = None) -> R:
        """Send `command` on its model's subject; an empty correlation id takes the one bound in the
        log context (the request's)."""
        # Only the fields that were set: some handlers tell an absent field from a null (an update's
        # "unchanged" from "cleared"), as the model's `model_fields_set` does on their side.
        body = command.model_dump(mode="json", exclude_unset=True)
        if not body.get("correlation_id"):
            body["correlation_id"] = structlog.contextvars.get_contextvars().get("correlation_id", "")
        return await self.request(type(command).subject(), body, reply_model, timeout)

    async def request(
        self, subject: str, body: dict[str, Any], reply_model: type[R], timeout: float | None = None
    ) -> R:
        """A command whose model the caller does not build itself (the gateway's generic routes to
        a service's many commands); the handler validates the body."""
        service, nc = _service_of(subject), self.nc
        if not nc.is_connected:
            # While the connection is being re-established nats-py would buffer the request until
            # it times out (an answer that leaves the caller unsure); nothing was sent: say so now.
            raise BusUnavailable(service, "the message bus is unavailable")
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id", "")
        payload = json.dumps({"correlation_id": correlation_id, **body}, default=str).encode()
        try:
            with tracing.span(subject, "client"):
                headers = tracing.inject({}) if tracing.enabled() else None
                msg = await nc.request(subject, payload, timeout=timeout or self.timeout, headers=headers)
        except nats.errors.NoRespondersError as exc:
            raise NoResponders(service, f"{service} is unavailable") from exc
        except nats.errors.TimeoutError as exc:
            raise CommandTimedOut(service, f"{service} did not answer in time") from exc
        except (nats.errors.Error, OSError) as exc:  # the bus itself is down or reconnecting
            raise BusUnavailable(service, "the message bus is unavailable") from exc
        reply = json.loads(msg.data)
        if isinstance(reply, dict) and "error" in reply:
            error = ErrorReply.model_validate(reply).error
            raise CommandFailed(error.code, error.message, error.details)
        return reply_model.model_validate(reply)
