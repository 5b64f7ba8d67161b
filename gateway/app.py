"""The gateway's wiring: FastAPI, its NATS connection, read-model engine, token verifier, projector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from gateway import console, errors, openapi
from gateway.auth import keys as integration_keys
from gateway.auth import routes as auth
from gateway.auth import users
from gateway.auth.verifier import TokenVerifier
from gateway.commands import CommandClient
from gateway.http import idempotency
from gateway.http.body_limit import BodySizeLimit
from gateway.http.correlation import Correlate
from gateway.incident_metrics import hypothesis_signatures
from gateway.incident_metrics import routes as metrics
from gateway.incidents import postmortems
from gateway.incidents import routes as incidents
from gateway.integrations import routes as integrations_routes
from gateway.integrations import slack as slack_routes
from gateway.mcp import server as mcp_server
from gateway.oncall import routes as oncall_routes
from gateway.ops import health
from gateway.ops.telemetry import HttpTelemetry, PlatformMetrics, metrics_router
from gateway.projection.projector import Projector
from gateway.settings import GatewaySettings
from gateway.state import Gateway
from gateway.stream import routes as stream
from gateway.stream.fanout import FanOut, SessionWatch
from runtime.bus import BusUnreachable, connect, declare_streams
from runtime.db import create_engine, database_failure, is_unavailable
from runtime.logging import configure_logging
from runtime.tracing import configure_tracing

log = structlog.get_logger(__name__)

STARTUP_WAIT_SECONDS = 60.0
DESCRIPTION = """Incidents, their lifecycle and AI root-cause hypotheses, for SRE teams.

Every error is `{"error": {"code", "message", "details"}}` (`ErrorResponse`); each operation lists
every status it can answer. A 401 carries `WWW-Authenticate`; a 429 or 503 carries `Retry-After`.
Every response carries `X-Correlation-ID`. The live feed is a websocket at `/api/v1/stream` (see the
README); the events it carries are catalogued in `docs/events.md`."""


async def _until_auth_answers(verifier: TokenVerifier) -> None:
    """The gateway cannot verify a token before it has auth's public keys."""
    deadline = asyncio.get_running_loop().time() + STARTUP_WAIT_SECONDS
    while True:
        try:
            await verifier.refresh()
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("auth did not publish its keys (cmd.auth.jwks)") from exc
            await asyncio.sleep(0.2)


async def wait_for_dependencies(settings: GatewaySettings) -> None:
    """Before serving (run by `__main__`, ahead of uvicorn, so a SIGTERM still ends it): until NATS
    and PostgreSQL both answer, the gateway waits, saying every few seconds which one it cannot
    reach and why, rather than fail its start with a traceback."""
    engine = create_engine(settings.database_url, pool_size=1)
    attempt = 0
    try:
        while True:
            try:
                nc = await connect(settings.nats_url, f"gateway:{settings.instance}:start", reconnect=False)
                await nc.close()
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return
            except Exception as exc:
                if isinstance(exc, BusUnreachable):
                    what = {"dependency": "nats", "error": str(exc)}
                elif is_unavailable(exc):
                    what = {"dependency": "postgres", "error": database_failure(settings.database_url, exc)}
                else:
                    raise
                if attempt % 5 == 0:
                    log.warning("dependency_unreachable", **what)
                attempt += 1
                await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, f"gateway:{settings.instance}")
        js = nc.jetstream()
        await declare_streams(js, settings)
        engine = create_engine(settings.database_url, pool_size=20)
        verifier = TokenVerifier(nc, settings.jwt_issuer, settings.jwt_audience, engine)
        await _until_auth_answers(verifier)
        projector = Projector(engine, js, settings.projector_batch_size)
        fanout = FanOut(settings.live_queue_size, settings.live_max_connections_per_tenant)
        projector.add_listener(fanout.publish)
        # Websockets whose user was just deactivated (or changed password) close at once.
        projector.add_listener(SessionWatch(engine, fanout).on_batch)
        await projector.start()
        await projector.serve_replays(nc)
        store = idempotency.IdempotencyStore(
            engine, settings.idempotency_key_ttl_seconds, settings.idempotency_lock_seconds
        )
        app.state.gateway = Gateway(
            settings=settings,
            nc=nc,
            js=js,
            engine=engine,
            verifier=verifier,
            projector=projector,
            fanout=fanout,
            commands=CommandClient(nc, settings.command_timeout_seconds),
            idempotency=store,
            platform_metrics=PlatformMetrics(settings, nc, js, projector, fanout),
        )
        pruner = asyncio.create_task(
            store.prune_forever(settings.idempotency_prune_interval_seconds), name="idempotency-prune"
        )
        log.info("gateway_started", port=settings.port)
        try:
            # The MCP endpoint's task group lives inside the gateway's lifespan and ends before it.
            async with mcp_server.running(app):
                yield
        finally:
            pruner.cancel()
            await projector.stop()
            # HTTP requests are finished by now; draining would wait on the pull subscription.
            await nc.close()
            await engine.dispose()

    app = FastAPI(
        title="SRE Copilot",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    errors.install(app)
    idempotency.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        # The MCP ones for browser-based MCP clients of /mcp (no session is kept, so none is exposed).
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-Correlation-ID",
            idempotency.HEADER,
            "Mcp-Protocol-Version",
            "Mcp-Method",
            "Mcp-Name",
        ],
        expose_headers=["X-Correlation-ID", idempotency.REPLAYED_HEADER, "Retry-After"],
    )
    # Inside `Correlate` (added next, so outermost): its access lines carry the correlation id.
    app.add_middleware(HttpTelemetry)

    app.add_middleware(Correlate, max_bytes=settings.max_request_bytes)

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(integration_keys.router)
    app.include_router(integrations_routes.router)
    app.include_router(slack_routes.router)
    app.include_router(oncall_routes.router)
    app.include_router(oncall_routes.paging_router)
    app.include_router(incidents.router)
    app.include_router(postmortems.router)
    app.include_router(metrics.router)
    app.include_router(hypothesis_signatures.router)
    app.include_router(stream.router)
    app.include_router(metrics_router(settings))
    mcp_server.install(app)
    # The web console at /: it answers only what no route answers (routers added later included).
    console.install(app)
    return app
