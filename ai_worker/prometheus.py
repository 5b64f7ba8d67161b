"""Metrics around an incident's start, from the Prometheus HTTP API (`/api/v1/query_range`).

The default PromQL templates below assume the conventional metric names of the Prometheus client
libraries and a label naming the service (`service` unless PROMETHEUS_SERVICE_LABEL says otherwise).
Any of them can be replaced with PROMETHEUS_QUERIES (a JSON object, name -> template), e.g. for
cAdvisor metrics: {"cpu": "sum(rate(container_cpu_usage_seconds_total{container=\\"$service\\"}[5m]))"}.
In a template `$label` is the label name and `$service` the incident's service.

An alert's own expression comes from its Alertmanager `generatorURL` (`g0.expr`); a trailing threshold
comparison (`... > 0.05`) is dropped so the raw value is read on both sides of the start.

One Prometheus serves every tenant: per-tenant Prometheus configuration is not implemented.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from string import Template
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import structlog

from ai_worker.evidence import AlertFact, MetricReading

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class QueryTemplate:
    template: str
    unit: str
    # Why this signal is worth reading during an incident.
    why: str


DEFAULT_QUERIES: dict[str, QueryTemplate] = {
    "cpu": QueryTemplate(
        'sum(rate(process_cpu_seconds_total{$label="$service"}[5m]))',
        "cores",
        "CPU seconds per second across the service's processes: saturation, hot loops, throttling.",
    ),
    "memory": QueryTemplate(
        'sum(process_resident_memory_bytes{$label="$service"})',
        "bytes",
        "Resident memory: a steady climb after a deploy is a leak; a drop to zero is an OOM kill.",
    ),
    "error_rate": QueryTemplate(
        'sum(rate(http_requests_total{$label="$service",status=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{$label="$service"}[5m]))',
        "ratio",
        "Share of requests answered 5xx: a bad release or a failing dependency.",
    ),
    "latency_p99": QueryTemplate(
        "histogram_quantile(0.99, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{$label="$service"}[5m])))',
        "seconds",
        "p99 latency: waiting on a slow dependency or an exhausted pool.",
    ),
    "request_rate": QueryTemplate(
        'sum(rate(http_requests_total{$label="$service"}[5m]))',
        "rps",
        "Requests per second: a traffic spike against the usual level.",
    ),
}

BEFORE = timedelta(minutes=30)
AFTER = timedelta(minutes=15)
STEP_SECONDS = 60
THRESHOLD = re.compile(r"^(?P<expr>.+?)\s*(?:>=|<=|==|!=|>|<)\s*(?:bool\s+)?[-+]?[0-9.]+(?:e[-+]?\d+)?\s*$")


class PrometheusError(Exception):
    pass


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]  # (unix time, value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def service_queries(
    service: str, label: str = "service", overrides: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """name -> (PromQL, unit) for the service, defaults overridden by name. An override whose name
    is not a default is read as well, with no unit."""
    templates = {name: (q.template, q.unit) for name, q in DEFAULT_QUERIES.items()}
    for name, template in (overrides or {}).items():
        templates[name] = (template, templates.get(name, ("", ""))[1])
    values = {"label": label, "service": _escape(service)}
    return {name: (Template(t).safe_substitute(values), unit) for name, (t, unit) in templates.items()}


def expr_from_generator_url(url: str | None) -> str | None:
    """The PromQL of an alert, from its Alertmanager `generatorURL` (`.../graph?g0.expr=...`)."""
    if not url:
        return None
    exprs = parse_qs(urlparse(url).query).get("g0.expr")
    return exprs[0].strip() if exprs and exprs[0].strip() else None


def without_threshold(expr: str) -> str:
    """`rate(errors[5m]) > 0.05` -> `rate(errors[5m])`: the value, not only where it crossed."""
    match = THRESHOLD.match(expr.strip())
    return match.group("expr").strip() if match else expr.strip()


def summarize(points: Sequence[tuple[float, float]], start: float) -> tuple[float | None, ...]:
    """(baseline, at start, peak): the median before `start`, the last value at or before it (or
    the first after), and the highest from it on."""
    finite = [(t, v) for t, v in points if not math.isnan(v) and not math.isinf(v)]
    before = [v for t, v in finite if t < start]
    after = [v for t, v in finite if t >= start]
    baseline = statistics.median(before) if before else None
    at_or_before = [v for t, v in finite if t <= start]
    at_start = at_or_before[-1] if at_or_before else (after[0] if after else None)
    peak = max(after) if after else at_start
    return baseline, at_start, peak


def graph_link(base_url: str, expr: str, end: datetime) -> str:
    return (
        f"{base_url.rstrip('/')}/graph?g0.expr={quote(expr, safe='')}&g0.tab=0"
        f"&g0.range_input=45m&g0.end_input={quote(end.strftime('%Y-%m-%d %H:%M:%S'))}"
    )


class PrometheusClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step: int = STEP_SECONDS
    ) -> list[Series]:
        try:
            response = await self.http.get(
                f"{self.base_url}/api/v1/query_range",
                params={"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": step},
            )
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{type(exc).__name__} querying Prometheus") from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise PrometheusError(f"HTTP {response.status_code}: not JSON") from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"HTTP {response.status_code}: {str(body.get('error', ''))[:200]}")
        data = body.get("data") or {}
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"expected a matrix, got {data.get('resultType')!r}")
        series = []
        for item in data.get("result") or []:
            points = [(float(t), float(v)) for t, v in item.get("values") or []]
            series.append(Series(labels=dict(item.get("metric") or {}), points=points))
        return series

    async def reading(
        self,
        name: str,
        expr: str,
        unit: str,
        start: datetime,
        now: datetime,
        before: timedelta = BEFORE,
        after: timedelta = AFTER,
    ) -> MetricReading | None:
        """One expression around `start`; None when Prometheus has no data for it. With several
        series (an alert's expression often has one per instance), the one that peaks highest."""
        end = min(start + after, now) if now > start else start + timedelta(minutes=1)
        series = await self.query_range(expr, start - before, end)
        best: tuple[float, MetricReading] | None = None
        for s in sorted(series, key=lambda s: sorted(s.labels.items())):
            baseline, at_start, peak = summarize(s.points, start.timestamp())
            if at_start is None and peak is None:
                continue
            reading = MetricReading(
                name=name,
                expr=expr,
                unit=unit,
                baseline=baseline,
                at_start=at_start,
                peak=peak,
                link=graph_link(self.base_url, expr, end),
            )
            rank = peak if peak is not None else -math.inf
            if best is None or rank > best[0]:
                best = (rank, reading)
        return best[1] if best else None

    async def around(
        self,
        service: str,
        start: datetime,
        now: datetime,
        *,
        label: str = "service",
        overrides: Mapping[str, str] | None = None,
        alerts: Sequence[AlertFact] = (),
    ) -> list[MetricReading]:
        """The service's standard signals and each alert's own expression, read concurrently. A
        query that fails is logged and left out: metrics support hypotheses, they never block them."""
        wanted = list(service_queries(service, label, overrides).items())
        seen = {expr for _, (expr, _) in wanted}
        for alert in alerts:
            expr = expr_from_generator_url(alert.generator_url)
            if expr and without_threshold(expr) not in seen:
                seen.add(without_threshold(expr))
                wanted.append((f"alert:{alert.alertname}", (without_threshold(expr), "")))

        async def one(name: str, expr: str, unit: str) -> MetricReading | None:
            try:
                return await self.reading(name, expr, unit, start, now)
            except PrometheusError as exc:
                log.warning("prometheus_query_failed", metric=name, error=str(exc))
                return None

        results = await asyncio.gather(*(one(name, expr, unit) for name, (expr, unit) in wanted))
        return [r for r in results if r is not None]
