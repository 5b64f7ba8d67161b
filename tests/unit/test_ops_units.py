"""Pure parts of the platform's own observability and of `up --reload`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts.subjects import SERVICES
from runtime.metrics import Source, merge
from sre_copilot.reload import SOURCE_ROOT, services_for

ALL = ["auth", "incidents", "ai_worker", "integrations", "gateway"]


@pytest.mark.parametrize(
    ("changed", "restarted"),
    [
        (["runtime/outbox.py"], set(ALL)),
        (["contracts/events.py"], set(ALL)),
        (["auth/handlers.py"], {"auth"}),
        (["gateway/auth/routes.py"], {"gateway"}),  # the gateway's auth feature, not the auth service
        (["ai_worker/engines/rules.py", "incidents/domain.py"], {"ai_worker", "incidents"}),
        (["tests/unit/test_x.py", "web/src/App.tsx", "migrations/env.py", "README.md"], set()),
        (["/elsewhere/auth/handlers.py"], set()),
    ],
)
def test_a_change_restarts_the_services_that_import_it(changed: list[str], restarted: set[str]) -> None:
    root = Path("/src/sre-copilot")
    paths = [Path(p) if p.startswith("/") else root / p for p in changed]
    assert services_for(paths, root, ALL) == restarted


def test_reload_watches_the_checkout_the_services_run_from() -> None:
    assert (SOURCE_ROOT / "sre_copilot" / "reload.py").is_file()
    assert all((SOURCE_ROOT / name).is_dir() for name in ("gateway", *SERVICES))


def exposition(calls: int) -> str:
    registry = CollectorRegistry()
    commands = Counter("sre_copilot_commands", "Commands.", ["command", "outcome"], registry=registry)
    seconds = Histogram("sre_copilot_command_duration_seconds", "Time.", ["command"], registry=registry)
    for _ in range(calls):
        commands.labels("cmd.x.create", "ok").inc()
        seconds.labels("cmd.x.create").observe(0.02)
    return generate_latest(registry).decode()


def test_merged_families_appear_once_with_service_and_instance_labels() -> None:
    page = merge([Source("incidents", "a-1", exposition(2)), Source("auth", "b-1", exposition(3))]).decode()
    assert page.count("# TYPE sre_copilot_commands_total counter") == 1
    assert page.count("# TYPE sre_copilot_command_duration_seconds histogram") == 1
    families = {f.name: f for f in text_string_to_metric_families(page)}
    counted = {
        (s.labels["service"], s.labels["instance"]): s.value for s in families["sre_copilot_commands"].samples
    }
    assert counted == {("incidents", "a-1"): 2.0, ("auth", "b-1"): 3.0}
    buckets = [
        s for s in families["sre_copilot_command_duration_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert {s.labels["service"] for s in buckets} == {"incidents", "auth"}


OFF = """
import sys
from runtime import tracing
import gateway.app, runtime.service  # everything a service or the gateway imports
assert tracing.configure_tracing("unit") is False and not tracing.enabled()
assert tracing.inject({"Nats-Msg-Id": "x"}) == {"Nats-Msg-Id": "x"}
# One shared no-op context manager: nothing is allocated per call.
assert tracing.span("a", "server") is tracing.span("b", "consumer", parent={"traceparent": "x"})
with tracing.span("c") as span:
    assert span is None
# (FastAPI imports the OpenTelemetry API itself; the SDK and the exporter stay out.)
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
assert not loaded, loaded
from opentelemetry import trace
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
"""


def test_tracing_is_off_and_free_without_an_endpoint() -> None:
    """In a fresh process (this one may have turned tracing on for another test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", OFF], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
