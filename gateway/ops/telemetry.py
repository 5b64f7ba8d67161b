"""The gateway's side of the platform's own observability: HTTP metrics and the access log line
of every request, and `/metrics` for the whole platform.

`/metrics` serves the gateway's metrics and, gathered over NATS (`cmd.<service>.metrics`, every
replica answers), every service's, each sample labelled with its `service` and `instance`; plus
what only the gateway reads: JetStream consumer lag, stream sizes, dead letters, the projection's
checkpoint, lag and stall, websocket connections. Those are read at scrape time (at most every 2 s).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

import prometheus_client
import structlog
from fastapi import APIRouter, Request, Response
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from contracts.subjects import SERVICES
from gateway.errors import error_response
from gateway.projection.projector import Projector
from gateway.settings import GatewaySettings
from gateway.state import gateway_of
from gateway.stream.fanout import FanOut
from runtime.metrics import (
    FAST_BUCKETS,
    Exposition,
    JetStreamCollector,
    Source,
    gather_reports,
    merge,
)

log = structlog.get_logger(__name__)

HTTP_REQUESTS = Counter(
    "sre_copilot_http_requests",
    "HTTP requests answered by the gateway, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "sre_copilot_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Polled by machines every few seconds: their access lines would drown the others.
QUIET_ROUTES = frozenset({"/health", "/metrics"})


class HttpTelemetry:
    """ASGI middleware. Labels use the route template (`/api/v1/incidents/{incident_id}`), never the
    raw path, so ids make no new series; a path no route matched is `unmatched`. (The HTTP server
    span is FastAPI's own: it traces requests once `runtime.tracing` has installed a provider, and
    continues a caller's `traceparent`.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(seconds)
            (log.debug if route in QUIET_ROUTES else log.info)(
                "http_request", method=method, route=route, status=status, ms=round(seconds * 1000, 2)
            )


class GatewayCollector(Collector):
    """What the gateway knows at any moment, read when scraped."""

    def __init__(self, projector: Projector, fanout: FanOut, jetstream: JetStreamCollector) -> None:
        self.projector, self.fanout, self.jetstream = projector, fanout, jetstream

    def collect(self) -> Iterable[Metric]:
        connections = GaugeMetricFamily(
            "sre_copilot_websocket_connections", "Open live-feed websockets (authenticated)."
        )
        connections.add_metric([], self.fanout.connections)
        checkpoint = GaugeMetricFamily(
            "sre_copilot_projection_checkpoint_sequence",
            "Last stream sequence applied to a projection's read models.",
            labels=["projection"],
        )
        checkpoint.add_metric([self.projector.name], self.projector.checkpoint)
        lag = GaugeMetricFamily(
            "sre_copilot_projection_lag_events",
            "Events in the stream a projection has not applied yet (at the last scrape).",
            labels=["projection"],
        )
        lag.add_metric([self.projector.name], max(0, self.jetstream.last_seq - self.projector.checkpoint))
        stall = self.projector.stall
        stalled = GaugeMetricFamily(
            "sre_copilot_projection_stalled",
            "1 while a projection is stopped at an event it cannot apply, with why (reason) and the "
            "event's type; 0 otherwise. It waits there until the event applies or is skipped.",
            labels=["projection", "reason", "type"],
        )
        stalled_seq = GaugeMetricFamily(
            "sre_copilot_projection_stalled_sequence",
            "The stream sequence a projection is stopped at (0 when it is not), labelled like "
            "sre_copilot_projection_stalled.",
            labels=["projection", "reason", "type"],
        )
        labels = [self.projector.name, "", ""]
        if stall is not None:
            labels = [self.projector.name, stall.reason.value, (stall.event_type or "")[:64]]
        stalled.add_metric(labels, 0 if stall is None else 1)
        stalled_seq.add_metric(labels, 0 if stall is None else stall.seq)
        leader = GaugeMetricFamily(
            "sre_copilot_projector_leader",
            "1 on the gateway that holds the projector lease and writes the read models, 0 on the others.",
            labels=["projection"],
        )
        leader.add_metric([self.projector.name], 1 if self.projector.role == "leader" else 0)
        return [connections, checkpoint, lag, stalled, stalled_seq, leader]


class PlatformMetrics:
    """The `/metrics` page: this gateway's metrics and every service's, merged."""

    def __init__(
        self,
        settings: GatewaySettings,
        nc: Client,
        js: JetStreamContext,
        projector: Projector,
        fanout: FanOut,
    ) -> None:
        self.settings, self.nc = settings, nc
        jetstream = JetStreamCollector(js)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(jetstream)
        registry.register(GatewayCollector(projector, fanout, jetstream))
        self.exposition = Exposition(registry)
        self.exposition.add_refresher(jetstream.refresh)

    async def render(self) -> bytes:
        instance = self.settings.instance
        own = [
            Source("gateway", instance, prometheus_client.generate_latest().decode()),
            Source("gateway", instance, await self.exposition.render()),
        ]
        try:
            reports = await gather_reports(self.nc, SERVICES)
        except Exception as exc:  # the bus is down: the gateway's own metrics still say so
            log.warning("metrics_gather_failed", error=repr(exc))
            reports = []
        instances = GaugeMetricFamily(
            "sre_copilot_service_instances",
            "Instances of each service that answered this scrape (0: the service is down).",
            labels=["service"],
        )
        for name in ("gateway", *SERVICES):
            instances.add_metric([name], 1 if name == "gateway" else sum(r.service == name for r in reports))
        remote = [Source(r.service, r.instance, r.exposition) for r in reports]
        return merge([*own, *remote], extra=[instances])


def metrics_router(settings: GatewaySettings) -> APIRouter:
    router = APIRouter()
    expected = f"Bearer {settings.metrics_token.get_secret_value()}" if settings.metrics_token else None

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """The platform's own metrics in the Prometheus text format (see the README's "Operating")."""
        if expected is not None:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent.encode(), expected.encode()):
                return error_response(401, "unauthorized", "/metrics needs the METRICS_TOKEN bearer token")
        page = await gateway_of(request).platform_metrics.render()
        return Response(page, media_type=prometheus_client.CONTENT_TYPE_LATEST)

    return router
