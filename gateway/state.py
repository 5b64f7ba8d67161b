"""What a running gateway holds (its bus connection, read-model engine, command client, projector...),
built once by app.py's lifespan, and how routes reach it: the typed dependency `GatewayDep`, or
`gateway_of` where there is only a request or a websocket to hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # the parts import routes' modules themselves; only their types are needed here
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.auth.verifier import TokenVerifier
    from gateway.commands import CommandClient
    from gateway.http.idempotency import IdempotencyStore
    from gateway.ops.telemetry import PlatformMetrics
    from gateway.projection.projector import Projector
    from gateway.settings import GatewaySettings
    from gateway.stream.fanout import FanOut


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: GatewaySettings
    nc: Client
    js: JetStreamContext
    engine: AsyncEngine  # the read models (schema `gateway`)
    verifier: TokenVerifier
    projector: Projector
    fanout: FanOut
    commands: CommandClient
    idempotency: IdempotencyStore
    platform_metrics: PlatformMetrics


def gateway_of(connection: HTTPConnection) -> Gateway:
    """The running gateway of a request or a websocket."""
    gateway: Gateway = connection.app.state.gateway
    return gateway


async def _gateway(connection: HTTPConnection) -> Gateway:
    # async: FastAPI would run a plain function in its thread pool
    return gateway_of(connection)


GatewayDep = Annotated[Gateway, Depends(_gateway)]
