"""Prometheus metrics of the platform itself (prometheus-client, one registry per process).

Each bus service answers `cmd.<service>.metrics` (every replica, no queue group) with its text
exposition; the gateway's `/metrics` asks them all, adds `service` and `instance` labels and serves
one page, so Prometheus needs one target and the services open no port of their own. Values that
live outside the process (outbox backlog, JetStream consumer lag, dead letters) are read when
scraped by `Exposition`'s refreshers, at most once per `min_interval`, never on a request path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import prometheus_client
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import MetricsReport
from contracts.subjects import DLQ_PREFIX, DLQ_STREAM, EVENTS_STREAM, metrics_subject

log = structlog.get_logger(__name__)

# `_created` series double every counter and histogram for a value nobody alerts on.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Commands answer in milliseconds; a generation by Claude takes tens of seconds.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 180.0)

COMMANDS = Counter(
    "sre_copilot_commands",
    "Commands handled, by subject and outcome (ok or the error code of the reply).",
    ["command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "sre_copilot_command_duration_seconds",
    "Time from receiving a command to its reply.",
    ["command"],
    buckets=FAST_BUCKETS,
)
EVENTS_HANDLED = Counter(
    "sre_copilot_events_handled",
    "Events a durable consumer handled, by consumer, event type and outcome (ok or error).",
    ["consumer", "type", "outcome"],
)
EVENT_SECONDS = Histogram(
    "sre_copilot_event_handling_duration_seconds",
    "Time a consumer spent on one event (a failed attempt included).",
    ["consumer", "type"],
    buckets=SLOW_BUCKETS,
)
RETRIES = Counter(
    "sre_copilot_message_retries",
    "Messages a consumer gave back for redelivery after a failed attempt.",
    ["consumer"],
)
DEAD_LETTERED = Counter(
    "sre_copilot_dead_lettered_messages",
    "Messages a consumer gave up on and copied to the DLQ stream.",
    ["consumer"],
)
TRANSACTION_CONFLICTS = Counter(
    "sre_copilot_transaction_conflicts",
    "Transactions a consumer retried because the database rolled them back for racing another "
    "(a deadlock or a serialization failure: SQLSTATE class 40).",
    ["consumer"],
)
PROJECTION_BATCH_SECONDS = Histogram(
    "sre_copilot_projection_batch_duration_seconds",
    "Time to apply one batch of events to a projection's read models, checkpoint included.",
    ["projection"],
    buckets=FAST_BUCKETS,
)
EVENTS_PUBLISHED = Counter(
    "sre_copilot_events_published",
    "Events published to the EVENTS stream from the outbox, by path (fast: right after the "
    "commit; relay: left behind by a crash or a bus outage).",
    ["path"],
)


@dataclass
class Exposition:
    """This process's metrics as Prometheus text, refreshing the scraped-only values first."""

    registry: CollectorRegistry = REGISTRY
    min_interval: float = 2.0
    timeout: float = 2.0
    _refreshers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _refreshed_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add_refresher(self, refresh: Callable[[], Awaitable[None]]) -> None:
        self._refreshers.append(refresh)

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._refreshed_at < self.min_interval:
                return
            for refresh in self._refreshers:
                try:
                    await asyncio.wait_for(refresh(), self.timeout)
                except Exception as exc:  # a stale gauge beats a failed scrape
                    log.warning("metrics_refresh_failed", refresher=refresh.__qualname__, error=repr(exc))
            self._refreshed_at = time.monotonic()

    async def render(self) -> str:
        await self.refresh()
        return prometheus_client.generate_latest(self.registry).decode()


OUTBOX_PENDING = Gauge(
    "sre_copilot_outbox_pending_events", "Events committed but not yet published.", ["outbox"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "sre_copilot_outbox_oldest_pending_age_seconds",
    "Age of the oldest committed event not yet published (0 when none is waiting).",
    ["outbox"],
)


def outbox_refresher(engine: AsyncEngine, outbox: Table) -> Callable[[], Awaitable[None]]:
    """Backlog and age of the oldest unsent event of one service's outbox (the partial index on
    unpublished rows keeps this cheap). Ages come from the database's clock, like `created_at`."""
    name = outbox.schema or outbox.name
    age = func.coalesce(func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0)
    statement = select(func.count(), age).where(outbox.c.published_at.is_(None))

    async def refresh() -> None:
        async with engine.connect() as conn:
            count, seconds = (await conn.execute(statement)).one()
        OUTBOX_PENDING.labels(name).set(count)
        OUTBOX_OLDEST_AGE.labels(name).set(float(seconds))

    return refresh


class JetStreamCollector(Collector):
    """Consumer lag per durable consumer, stream sizes and stored dead letters, read from the
    server by `refresh` (at scrape time) and served from the last reading."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.last_seq = 0  # of EVENTS, at the last refresh
        self._families: list[Metric] = []

    async def refresh(self) -> None:
        from prometheus_client.core import GaugeMetricFamily

        stream_messages = GaugeMetricFamily(
            "sre_copilot_stream_messages", "Messages stored in a JetStream stream.", labels=["stream"]
        )
        last_seq = GaugeMetricFamily(
            "sre_copilot_stream_last_sequence", "Last sequence of a JetStream stream.", labels=["stream"]
        )
        pending = GaugeMetricFamily(
            "sre_copilot_consumer_pending_messages",
            "Consumer lag: messages of the stream a durable consumer has not been delivered yet.",
            labels=["stream", "consumer"],
        )
        ack_pending = GaugeMetricFamily(
            "sre_copilot_consumer_ack_pending_messages",
            "Messages delivered to a durable consumer and not acknowledged yet.",
            labels=["stream", "consumer"],
        )
        redelivered = GaugeMetricFamily(
            "sre_copilot_consumer_redelivered_messages",
            "Messages a durable consumer is being redelivered (failed at least once).",
            labels=["stream", "consumer"],
        )
        dead_letters = GaugeMetricFamily(
            "sre_copilot_dead_letter_messages",
            "Dead letters stored in the DLQ stream, by the consumer that gave up on them.",
            labels=["consumer"],
        )
        for stream in (EVENTS_STREAM, DLQ_STREAM):
            info = await self.js.stream_info(
                stream, subjects_filter=f"{DLQ_PREFIX}.>" if stream == DLQ_STREAM else None
            )
            stream_messages.add_metric([stream], info.state.messages)
            last_seq.add_metric([stream], info.state.last_seq)
            if stream == EVENTS_STREAM:
                self.last_seq = info.state.last_seq
            else:
                for subject, count in sorted((info.state.subjects or {}).items()):
                    dead_letters.add_metric([subject.removeprefix(f"{DLQ_PREFIX}.")], count)
        for consumer in await self._consumers():
            name = consumer.config.durable_name
            if not name:  # a websocket's replay or a CLI's ephemeral reader
                continue
            pending.add_metric([EVENTS_STREAM, name], consumer.num_pending or 0)
            ack_pending.add_metric([EVENTS_STREAM, name], consumer.num_ack_pending or 0)
            redelivered.add_metric([EVENTS_STREAM, name], consumer.num_redelivered or 0)
        self._families = [stream_messages, last_seq, pending, ack_pending, redelivered, dead_letters]

    async def _consumers(self) -> list[ConsumerInfo]:
        """Every consumer of EVENTS (the server lists at most 256 per page; websockets that are
        replaying have ephemeral ones too)."""
        found: list[ConsumerInfo] = []
        while page := await self.js.consumers_info(EVENTS_STREAM, offset=len(found)):
            found.extend(page)
            if len(page) < 256:
                break
        return found

    def collect(self) -> Iterable[Metric]:
        return list(self._families)


# ------------------------------------------------------------------ the gateway's aggregation


async def gather_reports(
    nc: Client, services: Iterable[str], timeout: float = 2.0, grace: float = 0.05
) -> list[MetricsReport]:
    """Ask every replica of every service for its metrics at once; wait until each service has
    answered, then `grace` longer for its other replicas, never longer than `timeout`."""
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    async def received(msg: Msg) -> None:
        replies.put_nowait(msg.data)

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=received)
    missing = set(services)
    reports: list[MetricsReport] = []
    try:
        for service in missing:
            await nc.publish(metrics_subject(service), b"{}", reply=inbox)
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(replies.get(), remaining)
            except TimeoutError:
                break
            try:
                report = MetricsReport.model_validate_json(data)
            except ValueError:
                continue
            reports.append(report)
            if report.service in missing:
                missing.discard(report.service)
                if not missing:
                    deadline = min(deadline, loop.time() + grace)
    finally:
        await subscription.unsubscribe()
    return reports


@dataclass(frozen=True)
class Source:
    service: str
    instance: str
    exposition: str


class _Merged(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def merge(sources: Iterable[Source], extra: Iterable[Metric] = ()) -> bytes:
    """One exposition from several processes' own: each sample gains `service` and `instance`
    labels, and families of the same name (every service has `process_*` and
    `sre_copilot_commands_total`) become one family, as the text format requires. `extra`
    families are added as they are."""
    families: dict[str, Metric] = {family.name: family for family in extra}
    for source in sources:
        for parsed in text_string_to_metric_families(source.exposition):
            family = families.get(parsed.name)
            if family is None:
                family = families[parsed.name] = Metric(
                    parsed.name, parsed.documentation, parsed.type, parsed.unit
                )
            for sample in parsed.samples:
                labels = {**sample.labels, "service": source.service, "instance": source.instance}
                family.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(families.values()))
    return prometheus_client.generate_latest(registry)
