"""Reading and writing the event log for operators: tail, export, import, stats.

Everything here speaks the stream's own sequence numbers, the same ones the projector checkpoints
and the websocket's `since=` use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from contracts.envelope import EventEnvelope
from contracts.events import UnknownEventType, payload_of
from contracts.subjects import DLQ_STREAM, EVENTS_PREFIX, EVENTS_STREAM, IMPORTED_HEADER, event_subject

RUNTIME_FILE = "runtime.json"


class ReplayError(RuntimeError):
    pass


def runtime_urls(state_dir: Path) -> dict[str, str]:
    """The connection details a running `sre-copilot up` wrote into its state directory."""
    path = state_dir / RUNTIME_FILE
    if not path.exists():
        raise ReplayError(
            f"no running platform found in {state_dir} (no {RUNTIME_FILE}); start `sre-copilot up`, "
            "pass --state-dir, or set NATS_URL / DATABASE_URL"
        )
    info: dict[str, str] = json.loads(path.read_text())
    return info


def subject_filters(tenant: str | None, types: Iterable[str] = ()) -> list[str]:
    scope = tenant or "*"
    wanted = [t for t in types if t]
    if not wanted:
        return [f"{EVENTS_PREFIX}.{scope}.>"]
    return [event_subject(tenant, t) if tenant else f"{EVENTS_PREFIX}.*.{t}" for t in wanted]


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    subject: str
    event: EventEnvelope
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "subject": self.subject, "event": self.event.model_dump(mode="json")}


def _config(
    filters: list[str], since_seq: int | None, since_time: datetime | None, follow: bool
) -> ConsumerConfig:
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True)
    if len(filters) == 1:
        config.filter_subject = filters[0]
    else:
        config.filter_subjects = filters
    if since_seq is not None:
        config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, since_seq + 1
    elif since_time is not None:
        config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, since_time
    else:
        config.deliver_policy = DeliverPolicy.NEW if follow else DeliverPolicy.ALL
    return config


def _position(msg: Msg) -> tuple[int, int]:
    """A delivered message's stream sequence and how many more the consumer has pending, from its
    reply subject (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>`); the
    long form with domain and account goes through nats-py's own parser."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[8])
    metadata = msg.metadata
    return metadata.sequence.stream, metadata.num_pending


async def read_batches(
    js: JetStreamContext,
    filters: list[str],
    since_seq: int | None = None,
    since_time: datetime | None = None,
    until_seq: int | None = None,
    follow: bool = False,
    batch: int = 1_000,
) -> AsyncIterator[list[tuple[int, Msg]]]:
    """Raw messages with their stream sequence, in stream order, a batch at a time (a smaller one
    whenever the reader has caught up). Without `follow`, stops at the end of the stream (or at
    `until_seq`).

    An ordered push consumer with a callback: nats-py hands each message straight to it, where a
    pull consumer's fetch awaits every message of a batch separately (five times slower). The
    bounded queue holds the callback back when the caller is slower, and flow control then holds
    the server back, so memory stays bounded on any stream length."""
    queue: asyncio.Queue[list[tuple[int, Msg]] | None] = asyncio.Queue(maxsize=4)
    pending: list[tuple[int, Msg]] = []
    finished = False
    subscriptions: list[Any] = []  # set once subscribed; messages can arrive before that

    async def on_message(msg: Msg) -> None:
        nonlocal pending, finished
        if finished:
            return
        seq, remaining = _position(msg)
        if until_seq is not None and seq > until_seq:
            finished = True
        else:
            pending.append((seq, msg))
            finished = (not follow and remaining == 0) or (until_seq is not None and seq >= until_seq)
        caught_up = not subscriptions or subscriptions[0].pending_msgs == 0
        if pending and (finished or len(pending) >= batch or caught_up):
            ready, pending = pending, []
            await queue.put(ready)
        if finished:
            await queue.put(None)

    config = _config(filters, since_seq, since_time, follow)
    subscription = await js.subscribe(
        filters[0],
        stream=EVENTS_STREAM,
        config=config,
        cb=on_message,
        ordered_consumer=True,
        pending_msgs_limit=-1,
        pending_bytes_limit=-1,
    )
    subscriptions.append(subscription)
    try:
        if not follow:
            info = await subscription.consumer_info()
            if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
                return  # nothing to read (what was delivered already is no longer pending)
        while (ready := await queue.get()) is not None:
            yield ready
    finally:
        with contextlib.suppress(Exception):  # the ephemeral consumer expires by itself
            await subscription.unsubscribe()


async def read_events(
    js: JetStreamContext,
    filters: list[str],
    since_seq: int | None = None,
    since_time: datetime | None = None,
    until_seq: int | None = None,
    follow: bool = False,
) -> AsyncIterator[StoredEvent | Msg]:
    """Events in stream order. Yields the raw message for what does not parse as an envelope, so
    callers can report it. Without `follow`, stops at the end of the stream (or at `until_seq`)."""
    async for ready in read_batches(js, filters, since_seq, since_time, until_seq, follow):
        for seq, msg in ready:
            try:
                event = EventEnvelope.from_bytes(msg.data)
            except (ValidationError, ValueError):
                yield msg
                continue
            yield StoredEvent(seq, msg.subject, event, dict(msg.headers or {}))


def describe(stored: StoredEvent) -> str:
    """One readable line per event."""
    event = stored.event
    data = event.data
    detail = ""
    if event.type == "incident.created":
        detail = f"{data.get('key')} {data.get('severity')} {data.get('service_name')}: {data.get('title')}"
    elif event.type == "incident.state_changed":
        detail = f"{data.get('from_state')} -> {data.get('to_state')}" + (
            f" ({data['note']})" if data.get("note") else ""
        )
    elif event.type == "incident.updated":
        detail = ", ".join(
            f"{k}: {v.get('old')!r} -> {v.get('new')!r}" for k, v in data.get("changes", {}).items()
        )
    elif event.type == "hypothesis.generated":
        top = (data.get("hypotheses") or [{}])[0]
        detail = (
            f"gen {data.get('generation', 1)} by {data.get('engine')}: {top.get('claim')} "
            f"({top.get('confidence')})"
        )
    elif event.type == "incident.note_added":
        detail = str(data.get("body", ""))[:80]
    return (
        f"{stored.seq:>8}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.tenant_id}  {event.type:<24} "
        f"{event.aggregate_id}  by {event.actor}  {detail}".rstrip()
    )


@dataclass
class ImportReport:
    read: int = 0
    published: int = 0
    already_present: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def parse_export_line(line_number: int, line: str) -> EventEnvelope:
    """An exported line, validated against contracts/ (envelope and payload, upcast if older)."""
    try:
        record = json.loads(line)
        event = EventEnvelope.model_validate(record["event"] if "event" in record else record)
        payload_of(event)
    except (ValueError, KeyError, TypeError, ValidationError, UnknownEventType) as exc:
        raise ReplayError(f"line {line_number}: {exc}") from exc
    return event


async def existing_event_ids(js: JetStreamContext, tenants: Iterable[str]) -> set[str]:
    """Ids of the events already in the stream for these tenants: what makes an import idempotent
    beyond the broker's de-duplication window."""
    found: set[str] = set()
    for tenant in tenants:
        async for stored in read_events(js, subject_filters(tenant)):
            if isinstance(stored, StoredEvent):
                found.add(str(stored.event.id))
    return found


async def import_events(js: JetStreamContext, source: TextIO, progress: Any = None) -> ImportReport:
    """Validate every line first (nothing is published from a file with a bad line), then publish
    what the stream does not have yet, in order."""
    report = ImportReport()
    events: list[EventEnvelope] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        report.read += 1
        try:
            events.append(parse_export_line(number, line))
        except ReplayError as exc:
            report.invalid.append((number, str(exc)))
    if report.invalid:
        return report
    present = await existing_event_ids(js, {e.tenant_id for e in events})
    for event in events:
        if str(event.id) in present:
            report.already_present += 1
        else:
            ack = await js.publish(
                event_subject(event.tenant_id, event.type),
                event.to_bytes(),
                stream=EVENTS_STREAM,
                headers={
                    "Nats-Msg-Id": str(event.id),
                    "Correlation-Id": event.correlation_id,
                    IMPORTED_HEADER: "1",
                },
            )
            if ack.duplicate:
                report.already_present += 1
            else:
                report.published += 1
            present.add(str(event.id))
        if progress is not None:
            progress()
    return report


@dataclass
class Stats:
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    by_type: Counter[str]
    by_tenant: dict[str, Counter[str]]
    consumers: list[dict[str, Any]]
    dead_letters: int


async def stream_stats(js: JetStreamContext) -> Stats:
    info = await js.stream_info(EVENTS_STREAM, subjects_filter=f"{EVENTS_PREFIX}.>")
    by_type: Counter[str] = Counter()
    by_tenant: dict[str, Counter[str]] = defaultdict(Counter)
    for subject, count in (info.state.subjects or {}).items():
        _, tenant, event_type = subject.split(".", 2)
        by_type[event_type] += count
        by_tenant[tenant][event_type] += count
    consumers = [
        {
            "name": c.name,
            "pending": c.num_pending,
            "ack_pending": c.num_ack_pending,
            "redelivered": c.num_redelivered,
            "delivered_seq": c.delivered.stream_seq if c.delivered else None,
        }
        for c in await js.consumers_info(EVENTS_STREAM)
        if c.config.durable_name
    ]
    try:
        dead = (await js.stream_info(DLQ_STREAM)).state.messages
    except Exception:
        dead = 0
    return Stats(
        messages=info.state.messages,
        bytes=info.state.bytes,
        first_seq=info.state.first_seq,
        last_seq=info.state.last_seq,
        by_type=by_type,
        by_tenant=dict(by_tenant),
        consumers=sorted(consumers, key=lambda c: str(c["name"])),
        dead_letters=dead,
    )


def export_path(out: Path) -> Path:
    if out.suffix != ".jsonl":
        raise ReplayError("the export file must end in .jsonl")
    return out


@contextlib.contextmanager
def export_file(out: Path) -> Iterator[Callable[[str], None]]:
    """Write an export through a temporary file beside `out`, renamed over it only once complete
    and on disk: a failure (a full disk, an interruption) removes the temporary file and leaves no
    partial export. Yields the function that writes; a write that fails is a ReplayError naming
    the file and the reason."""
    target = export_path(out)

    def failed(exc: OSError) -> ReplayError:
        return ReplayError(f"cannot write {target}: {exc.strerror or exc}")

    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise failed(exc) from exc
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600; an export is an ordinary file
    sink = os.fdopen(fd, "w")

    def write(text: str) -> None:
        try:
            sink.write(text)
        except OSError as exc:
            raise failed(exc) from exc

    try:
        yield write
        try:
            sink.flush()
            os.fsync(sink.fileno())
            sink.close()
            os.replace(temp, target)
        except OSError as exc:
            raise failed(exc) from exc
    finally:
        with contextlib.suppress(OSError):
            sink.close()  # after a failed flush, closing fails again
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
