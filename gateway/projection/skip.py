"""`sre-copilot projections skip SEQ`: an operator moves the projector past an event it cannot apply.

The event is first copied to the DLQ stream (`dlq.gateway_projector`, with the headers a consumer's
own dead letter has, the operator's reason as its error, and `Dlq-Skipped-By-Operator: true`), so
it can be inspected and replayed once the gateway can apply it; then the decision is recorded in
`gateway.projection_skips`, which the projector honours by passing exactly that sequence. Only the
sequence the projector is stalled at may be skipped, unless forced (then any it has yet to reach)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, GATEWAY_PROJECTOR, dead_letter_subject
from gateway.projection import tables
from gateway.projection.projector import recorded_skips

SKIPPED_HEADER = "Dlq-Skipped-By-Operator"
DEFAULT_REASON = "skipped by an operator"
# A rebuild holds the projection lock while it swaps the read models in; the skip waits that long.
LOCK_TIMEOUT = "30s"


class SkipRefused(Exception):
    """Nothing was skipped, for the reason given."""


@dataclass
class SkipReport:
    seq: int
    event_type: str | None
    event_id: str | None
    copied: bool  # to the DLQ (False: the stream holds no message at this sequence any more)
    already_skipped: bool  # recorded by an earlier skip; nothing done this time
    passed: bool  # the projector had moved past it when the command returned
    checkpoint: int

    def describe(self) -> str:
        what = f"sequence {self.seq}" + (f" ({self.event_type} {self.event_id})" if self.event_type else "")
        if self.already_skipped:
            done = f"{what} was skipped already"
        elif self.copied:
            done = f"{what}: copied to {dead_letter_subject(GATEWAY_PROJECTOR)} and recorded as skipped"
        else:
            done = f"{what}: no longer in the stream (nothing to copy); recorded as skipped"
        if self.passed:
            return f"{done}\nthe projector has moved past it (it has applied up to {self.checkpoint})"
        return f"{done}\nthe projector passes it when it gets there (it has applied up to {self.checkpoint})"


def dead_letter_headers(
    stored: RawStreamMsg, seq: int, reason: str, attempts: int, stalled_on: str | None
) -> dict[str, str]:
    """The headers `runtime.consumer.dead_letter` gives a dead letter, for an operator's skip."""
    headers = {str(k): str(v) for k, v in (stored.headers or {}).items()}
    headers.pop("Nats-Msg-Id", None)
    headers.update(
        {
            "Dlq-Consumer": GATEWAY_PROJECTOR,
            "Dlq-Original-Subject": stored.subject or "",
            "Dlq-Original-Seq": str(seq),
            "Dlq-Attempts": str(attempts),
            "Dlq-Error": reason[:1000],
            SKIPPED_HEADER: "true",
            # The same id as the projector's own dead letter of this sequence would have.
            "Nats-Msg-Id": f"{GATEWAY_PROJECTOR}:{seq}",
        }
    )
    if stalled_on:
        headers["Dlq-Stall-Error"] = stalled_on[:1000]
    return headers


async def skip(
    engine: AsyncEngine,
    js: JetStreamContext,
    seq: int,
    reason: str | None = None,
    force: bool = False,
    wait_seconds: float = 10.0,
) -> SkipReport:
    """Copy the event at `seq` to the DLQ and tell the projector to pass it; then wait up to
    `wait_seconds` for it to. Raises SkipRefused when there is nothing to skip, or (without
    `force`) when the projector is not stalled at `seq`."""
    reason = (reason or "").strip() or DEFAULT_REASON
    stalls = tables.projection_stalls
    async with engine.connect() as conn:
        checkpoint = await tables.last_seq(conn, GATEWAY_PROJECTOR)
        stall = (await conn.execute(select(stalls).where(stalls.c.name == GATEWAY_PROJECTOR))).first()
        earlier = (await recorded_skips(conn, seq, seq)).get(seq)
    if earlier is not None:
        return SkipReport(seq, None, None, False, True, checkpoint >= seq, checkpoint)
    if seq < 1:
        raise SkipRefused("stream sequences start at 1")
    if seq <= checkpoint:
        raise SkipRefused(
            f"sequence {seq} is already projected (the projector has applied up to {checkpoint}): "
            "there is nothing to skip"
        )
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    if seq > last:
        raise SkipRefused(f"there is no sequence {seq} in {EVENTS_STREAM} yet (the last is {last})")
    stalled_here = stall is not None and stall.seq == seq
    if not force and not stalled_here:
        if stall is None:
            raise SkipRefused(
                f"the projector is not stalled (it has applied up to {checkpoint}); "
                f"--force records the skip of {seq} for when it gets there"
            )
        raise SkipRefused(
            f"the projector is stalled at sequence {stall.seq} "
            f"({stall.event_type or 'not an event'}, {stall.reason}), not at {seq}; "
            f"--force skips {seq} anyway"
        )

    try:
        stored: RawStreamMsg | None = await js.get_msg(EVENTS_STREAM, seq)
    except NotFoundError:
        stored = None  # deleted from the stream: nothing to keep
    event_type = event_id = None
    if stored is not None:
        try:
            event = EventEnvelope.from_bytes(stored.data or b"")
            event_type, event_id = event.type, str(event.id)
        except ValueError:
            pass  # not an envelope: copied as it is
        attempts = stall.attempts if stall is not None and stalled_here else 0
        stalled_on = stall.error if stall is not None and stalled_here else None
        # Copied before the skip is recorded: a skipped event is always in the DLQ.
        await js.publish(
            dead_letter_subject(GATEWAY_PROJECTOR),
            stored.data or b"",
            stream=DLQ_STREAM,
            headers=dead_letter_headers(stored, seq, reason, attempts, stalled_on),
        )

    # Under the projection lock, exclusively: the projector reads skips under it (shared) in each
    # batch's transaction, so the skip lands between two batches, never beside one.
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": tables.PROJECTION_LOCK})
        except Exception as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03":  # lock_not_available
                raise SkipRefused(
                    "the projection lock is held (a rebuild swapping the read models?); try again"
                ) from exc
            raise
        checkpoint = await tables.last_seq(conn, GATEWAY_PROJECTOR)
        if seq <= checkpoint:
            raise SkipRefused(
                f"the projector applied sequence {seq} meanwhile: nothing skipped "
                "(replaying the copy in the DLQ changes nothing)"
            )
        await conn.execute(
            insert(tables.projection_skips).values(seq=seq, reason=reason).on_conflict_do_nothing()
        )

    deadline = time.monotonic() + wait_seconds
    while checkpoint < seq and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        async with engine.connect() as conn:
            checkpoint = await tables.last_seq(conn, GATEWAY_PROJECTOR)
    return SkipReport(seq, event_type, event_id, stored is not None, False, checkpoint >= seq, checkpoint)
