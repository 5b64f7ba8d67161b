"""OpenTelemetry traces across HTTP, NATS commands, events and consumers.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
each process installs the SDK with a batching OTLP/HTTP exporter. Off, nothing of OpenTelemetry is
imported and every helper here returns at its first line, so tracing costs nothing.

The trace context travels in NATS headers (W3C `traceparent`/`tracestate`): injected by the
gateway's command client and by every event publish, extracted by the command wrapper of `Service`
and by the consumers (`runtime.observe.consuming`). Events the outbox relay publishes after a crash
start a new trace: the context is not stored with the outbox row.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Link, Span, Tracer

Kind = Literal["server", "client", "producer", "consumer", "internal"]

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(service: str, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process when an OTLP endpoint is configured, once per process.
    `exporter` (tests) is added span by span, turning tracing on if it was off. True when on."""
    global _tracer, _provider
    if _provider is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
        if exporter is None and (not endpoint or disabled):
            return False
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win (the SDK merges them in).
        resource = Resource.create(
            {"service.name": f"sre-copilot-{service}", "service.namespace": "sre-copilot"}
        )
        _provider = TracerProvider(resource=resource)
        if endpoint and not disabled:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
        _tracer = _provider.get_tracer("sre_copilot")
    if exporter is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return True


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context to outgoing NATS headers (unchanged when tracing is off)."""
    if _tracer is not None:
        from opentelemetry import propagate

        propagate.inject(headers)
    return headers


def span(
    name: str,
    kind: Kind = "internal",
    *,
    parent: Mapping[str, str] | None = None,
    links: Sequence[Mapping[str, str]] | None = None,
    attributes: dict[str, Any] | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A span around a block, child of the context carried by `parent` headers when given (else
    of the current span), linked to the contexts carried by `links`. Off: a shared no-op."""
    if _tracer is None:
        return _NOTHING
    return _span(_tracer, name, kind, parent, links, attributes)


@contextlib.contextmanager
def _span(
    tracer: Tracer,
    name: str,
    kind: Kind,
    parent: Mapping[str, str] | None,
    links: Sequence[Mapping[str, str]] | None,
    attributes: dict[str, Any] | None,
) -> Iterator[Span]:
    from opentelemetry import propagate, trace

    context = propagate.extract(dict(parent)) if parent is not None else None
    span_links: list[Link] = []
    for carrier in links or ():
        linked = trace.get_current_span(propagate.extract(dict(carrier))).get_span_context()
        if linked.is_valid:
            span_links.append(trace.Link(linked))
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=getattr(trace.SpanKind, kind.upper()),
        links=span_links,
        attributes=attributes,
    ) as current:
        yield current


def set_attributes(current: Span | None, **attributes: Any) -> None:
    if current is not None:
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})
