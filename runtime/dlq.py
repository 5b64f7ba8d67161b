"""Dead letters for operators: list, show, replay to the consumer that gave up, drop.

A dead letter is a message of the `DLQ` stream (`dlq.<consumer>`), written by
`runtime.consumer.dead_letter`: the original event's bytes, its headers, and `Dlq-Consumer`,
`Dlq-Original-Subject`, `Dlq-Original-Seq`, `Dlq-Attempts`, `Dlq-Error`. Its id is its sequence in
`DLQ`. Replaying one is a request to its consumer on `cmd.dlq.<consumer>.replay` with the stored data
and headers; once the consumer answers `{"ok": true}` the dead letter is deleted (handlers are
idempotent by event id, so a replay that is repeated changes nothing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from contracts.subjects import DLQ_PREFIX, DLQ_STREAM, TENANT_ID, dead_letter_replay_subject
from runtime.replay import ReplayError


class DlqError(ReplayError):
    """Something an operator should read as one line (an unknown id, a bad consumer name)."""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    time: datetime | None = None

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> DeadLetter:
        assert raw.seq is not None and raw.subject is not None
        headers = {str(k): str(v) for k, v in (raw.headers or {}).items()}
        return cls(raw.seq, raw.subject, raw.data or b"", headers, raw.time)

    @property
    def consumer(self) -> str:
        return self.headers.get("Dlq-Consumer") or self.subject.removeprefix(f"{DLQ_PREFIX}.")

    @property
    def original_subject(self) -> str:
        return self.headers.get("Dlq-Original-Subject", "")

    @property
    def original_seq(self) -> int | None:
        return _int(self.headers.get("Dlq-Original-Seq"))

    @property
    def attempts(self) -> int | None:
        return _int(self.headers.get("Dlq-Attempts"))

    @property
    def error(self) -> str:
        return self.headers.get("Dlq-Error", "")

    @property
    def event(self) -> dict[str, Any] | None:
        """The event as JSON, or None for what is not a JSON object (the reason it was given up on,
        often)."""
        try:
            value = json.loads(self.data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def event_type(self) -> str | None:
        event = self.event
        return str(event["type"]) if event and "type" in event else None

    @property
    def event_id(self) -> str | None:
        event = self.event
        return str(event["id"]) if event and "id" in event else None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consumer": self.consumer,
            "original_subject": self.original_subject,
            "original_seq": self.original_seq,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "attempts": self.attempts,
            "error": self.error,
            "time": self.time.isoformat() if self.time else None,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything: the summary, the headers, and the event (or the raw data when it is not
        JSON)."""
        event = self.event
        return self.summary() | {
            "headers": self.headers,
            "event": event,
            "data": None if event is not None else self.data.decode("utf-8", "replace"),
        }


def consumer_filter(consumer: str | None) -> str:
    if consumer is None:
        return f"{DLQ_PREFIX}.>"
    if not TENANT_ID.fullmatch(consumer):  # the same rule as any subject token
        raise DlqError(f"{consumer!r} is not a consumer name (letters, digits, '_' or '-')")
    return f"{DLQ_PREFIX}.{consumer}"


async def dead_letters(js: JetStreamContext, consumer: str | None = None) -> AsyncIterator[DeadLetter]:
    """Every stored dead letter (of one consumer), oldest first."""
    subject = consumer_filter(consumer)
    seq = 1
    while True:
        try:
            raw = await js.get_msg(DLQ_STREAM, seq, subject=subject, next=True)
        except NotFoundError:
            return
        letter = DeadLetter.from_raw(raw)
        yield letter
        seq = letter.id + 1


async def dead_letter(js: JetStreamContext, letter_id: int) -> DeadLetter:
    try:
        return DeadLetter.from_raw(await js.get_msg(DLQ_STREAM, letter_id))
    except NotFoundError:
        raise DlqError(f"no dead letter {letter_id} (see `sre-copilot dlq list`)") from None


async def drop(js: JetStreamContext, letter_id: int) -> None:
    try:
        await js.delete_msg(DLQ_STREAM, letter_id)
    except NotFoundError:
        pass  # already gone (another operator, or its age limit): what was asked for


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    ok: bool
    problem: str = ""


async def replay(nc: Client, letter: DeadLetter, timeout: float) -> Replayed:
    """Hand the dead letter back to its consumer; on its `{"ok": true}` delete it. Anything else
    (an error reply, no answer, nobody listening) keeps it, and says why."""
    subject = dead_letter_replay_subject(letter.consumer)
    try:
        reply = await nc.request(subject, letter.data, timeout=timeout, headers=letter.headers)
    except nats.errors.NoRespondersError:
        return Replayed(
            letter,
            False,
            f"nobody answers on {subject}: is {letter.consumer}'s service running, and does it take replays?",
        )
    except (TimeoutError, nats.errors.TimeoutError):
        return Replayed(
            letter, False, f"no answer from {letter.consumer} within {timeout:g} s (kept; replay again)"
        )
    try:
        body = json.loads(reply.data)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("ok") is True:
        await drop(nc.jetstream(), letter.id)
        return Replayed(letter, True)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return Replayed(letter, False, f"{error.get('code', 'error')}: {error.get('message', '')}".strip())
    return Replayed(letter, False, f"unexpected reply from {letter.consumer}: {reply.data[:200]!r}")
