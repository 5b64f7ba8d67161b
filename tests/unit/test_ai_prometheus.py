"""The Prometheus client against a fake Prometheus HTTP API (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ai_worker.evidence import AlertFact
from ai_worker.prometheus import (
    DEFAULT_QUERIES,
    PrometheusClient,
    PrometheusError,
    expr_from_generator_url,
    service_queries,
    summarize,
    without_threshold,
)

START = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
NOW = START + timedelta(hours=1)
T0 = START.timestamp()


def matrix(*series: tuple[dict[str, str], list[tuple[float, float]]]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[t, str(v)] for t, v in points]} for labels, points in series
            ],
        },
    }


def ramp(before: float, after: float) -> list[tuple[float, float]]:
    """Thirty minutes at `before`, then fifteen at `after`, one point a minute."""
    return [(T0 + m * 60, before if m < 0 else after) for m in range(-30, 16)]


class FakePrometheus:
    """Answers by the metric name in the query; records every request."""

    def __init__(self, answers: dict[str, object], status: int = 200) -> None:
        self.answers, self.status = answers, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        query = request.url.params["query"]
        for needle, answer in self.answers.items():
            if needle in query:
                if isinstance(answer, httpx.Response):
                    return answer
                return httpx.Response(self.status, json=answer)
        return httpx.Response(200, json=matrix())

    def client(self) -> PrometheusClient:
        return PrometheusClient(
            "http://prometheus.test:9090/", httpx.AsyncClient(transport=httpx.MockTransport(self))
        )


def test_default_templates_name_the_service_by_its_label() -> None:
    queries = service_queries("payment-api", label="app")
    assert (
        set(queries) == set(DEFAULT_QUERIES) == {"cpu", "memory", "error_rate", "latency_p99", "request_rate"}
    )
    assert queries["cpu"] == ('sum(rate(process_cpu_seconds_total{app="payment-api"}[5m]))', "cores")
    assert queries["error_rate"][0] == (
        'sum(rate(http_requests_total{app="payment-api",status=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{app="payment-api"}[5m]))'
    )
    assert queries["latency_p99"][1] == "seconds"


def test_templates_can_be_overridden_and_extended() -> None:
    queries = service_queries(
        "payment-api",
        overrides={
            "cpu": 'sum(rate(container_cpu_usage_seconds_total{container="$service"}[5m]))',
            "queue_depth": 'max(queue_depth{$label="$service"})',
        },
    )
    assert queries["cpu"] == (
        'sum(rate(container_cpu_usage_seconds_total{container="payment-api"}[5m]))',
        "cores",
    )
    assert queries["queue_depth"] == ('max(queue_depth{service="payment-api"})', "")


def test_the_alert_expression_comes_from_its_generator_url() -> None:
    url = "http://prometheus:9090/graph?g0.expr=rate%28http_errors_total%5B5m%5D%29+%3E+0.05&g0.tab=1"
    assert expr_from_generator_url(url) == "rate(http_errors_total[5m]) > 0.05"
    assert expr_from_generator_url("http://prometheus:9090/graph?g0.tab=1") is None
    assert expr_from_generator_url(None) is None
    assert without_threshold("rate(http_errors_total[5m]) > 0.05") == "rate(http_errors_total[5m])"
    assert without_threshold("up == 0") == "up"
    assert without_threshold("x >= bool 1e3") == "x"
    assert without_threshold("sum(rate(x[5m]))") == "sum(rate(x[5m]))"


def test_summarize_baseline_at_start_and_peak() -> None:
    points = [(T0 - 120, 1.0), (T0 - 60, 3.0), (T0 - 30, 2.0), (T0, 5.0), (T0 + 60, 9.0), (T0 + 120, 7.0)]
    assert summarize(points, T0) == (2.0, 5.0, 9.0)
    assert summarize([(T0 + 60, 4.0), (T0 + 120, 6.0)], T0) == (None, 4.0, 6.0)
    assert summarize([(T0 - 60, float("nan"))], T0) == (None, None, None)
    assert summarize([], T0) == (None, None, None)


async def test_query_range_sends_the_window_and_parses_the_matrix() -> None:
    fake = FakePrometheus({"process_cpu": matrix(({"service": "payment-api"}, ramp(0.5, 2.0)))})
    reading = await fake.client().reading(
        "cpu", 'sum(rate(process_cpu_seconds_total{service="payment-api"}[5m]))', "cores", START, NOW
    )
    request = fake.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/api/v1/query_range"
    params = request.url.params
    assert params["query"] == 'sum(rate(process_cpu_seconds_total{service="payment-api"}[5m]))'
    assert float(params["start"]) == T0 - 30 * 60
    assert float(params["end"]) == T0 + 15 * 60
    assert params["step"] == "60"
    assert reading is not None
    assert (reading.baseline, reading.at_start, reading.peak, reading.change) == (0.5, 2.0, 2.0, 4.0)
    assert reading.link is not None and reading.link.startswith(
        "http://prometheus.test:9090/graph?g0.expr=sum%28rate"
    )


async def test_the_window_ends_now_for_an_incident_that_just_started() -> None:
    fake = FakePrometheus({})
    await fake.client().reading("cpu", "x", "cores", START, START + timedelta(minutes=3))
    assert float(fake.requests[0].url.params["end"]) == T0 + 3 * 60


async def test_of_several_series_the_one_that_peaks_highest_is_kept() -> None:
    fake = FakePrometheus(
        {
            "errors": matrix(
                ({"instance": "a"}, ramp(0.01, 0.02)),
                ({"instance": "b"}, ramp(0.01, 0.40)),
                ({"instance": "c"}, ramp(0.01, 0.03)),
            )
        }
    )
    reading = await fake.client().reading("alert:HighErrors", "rate(errors[5m])", "", START, NOW)
    assert reading is not None and reading.peak == 0.40


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
        ),
        httpx.Response(503, text="upstream down"),
        httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}}),
    ],
)
async def test_prometheus_errors_are_raised_as_such(response: httpx.Response) -> None:
    fake = FakePrometheus({"x": response})
    with pytest.raises(PrometheusError):
        await fake.client().query_range("x", START, NOW)


async def test_an_unreachable_prometheus_is_an_error_too() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = PrometheusClient(
        "http://prometheus.test", httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(PrometheusError, match="ConnectError"):
        await client.query_range("up", START, NOW)


async def test_around_reads_every_signal_and_the_alert_expression_leaving_out_failures_and_no_data() -> None:
    fake = FakePrometheus(
        {
            "process_cpu_seconds_total": matrix(({}, ramp(0.5, 2.0))),
            "process_resident_memory_bytes": matrix(({}, ramp(1e9, 1.1e9))),
            # error_rate and request_rate share http_requests_total: Prometheus is down for them.
            "http_requests_total": httpx.Response(503, text="unavailable"),
            "queue_depth": matrix(({"queue": "emails"}, ramp(10, 900))),
            # latency: no data (the default answer).
        }
    )
    alert = AlertFact(
        fingerprint="f1",
        alertname="QueueBacklog",
        status="firing",
        labels={},
        annotations={},
        starts_at=START,
        generator_url="http://prometheus:9090/graph?g0.expr=max%28queue_depth%29+%3E+100",
    )
    readings = await fake.client().around("payment-api", START, NOW, alerts=[alert])
    by_name = {r.name: r for r in readings}
    assert set(by_name) == {"cpu", "memory", "alert:QueueBacklog"}
    assert by_name["alert:QueueBacklog"].expr == "max(queue_depth)"
    assert by_name["alert:QueueBacklog"].change == 90.0
    queried = [r.url.params["query"] for r in fake.requests]
    assert len(queried) == 6  # five standard signals and the alert's own
    assert "max(queue_depth)" in queried


async def test_around_with_an_error_body_says_what_prometheus_said() -> None:
    fake = FakePrometheus({"x": httpx.Response(422, content=json.dumps({"status": "error", "error": "bad"}))})
    with pytest.raises(PrometheusError, match="HTTP 422: bad"):
        await fake.client().query_range("x", START, NOW)
