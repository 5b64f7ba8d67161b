"""Slack's request signatures (v0), shared by the services that own a Slack action (integrations'
incident buttons, oncall's page button): the check, the record of requests already seen (a replayed
request is refused), and reading a click out of its verified body.

https://api.slack.com/authentication/verifying-requests-from-slack: `X-Slack-Signature` is `v0=` and
the hex HMAC-SHA256, under the app's signing secret, of `v0:<X-Slack-Request-Timestamp>:<raw body>`;
a timestamp more than five minutes from now is refused, so a captured request cannot be sent again
later, and one sent again within those five minutes is refused by the record of signatures seen."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qs

from pydantic import ValidationError
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.slack import SlackInteraction

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
WINDOW_SECONDS = 300
VERSION = "v0"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SignatureProblem(StrEnum):
    MISSING = "the request has no Slack signature or timestamp"
    STALE = "the request's timestamp is more than five minutes from now"
    INVALID = "the request's Slack signature does not verify"
    REPLAYED = "the request was received before"


def signature_problem(
    secret: str, timestamp: str, signature: str, body: bytes, now: float
) -> SignatureProblem | None:
    """Why this request is not Slack's, or None. The window is checked before the signature only to
    say which; both must hold."""
    if not timestamp or not signature:
        return SignatureProblem.MISSING
    if not timestamp.isdigit() or len(timestamp) > 12 or abs(now - int(timestamp)) > WINDOW_SECONDS:
        return SignatureProblem.STALE
    if not hmac.compare_digest(slack_signature(secret, timestamp, body), signature):
        return SignatureProblem.INVALID
    return None


class Unreadable(ValueError):
    pass


class NoPayload(Unreadable):
    """Not even a form with one `payload` field."""


def read_payload(body: bytes) -> str:
    """The `payload` field of a form-encoded body."""
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NoPayload("the body is not a form (application/x-www-form-urlencoded)") from exc
    payloads = fields.get("payload")
    if not payloads or len(payloads) != 1:
        raise NoPayload("the form has no `payload` field (or more than one)")
    return payloads[0]


def read_interaction(body: bytes) -> SlackInteraction:
    """The `block_actions` payload of a form-encoded body (`payload=<JSON>`)."""
    payload = read_payload(body)
    try:
        return SlackInteraction.model_validate(json.loads(payload))
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unreadable(f"`payload` is not a block_actions payload: {reason}"[:300]) from exc


def seen_requests_table(metadata: MetaData) -> Table:
    """Each owning service's record of the Slack requests it accepted, by signature: one seen again
    (within the timestamp window, the only time it could verify) is a replay."""
    return Table(
        "slack_requests",
        metadata,
        Column("signature_sha256", String(64), primary_key=True),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Index("ix_slack_requests_received", "received_at"),
    )


async def first_sight(conn: AsyncConnection, table: Table, signature: str, now: datetime) -> bool:
    """Record the request; False when it was recorded before (a replay). Entries older than twice the
    window are dropped on the way: such a request is refused for its timestamp anyway."""
    await conn.execute(delete(table).where(table.c.received_at < now - timedelta(seconds=2 * WINDOW_SECONDS)))
    digest = hashlib.sha256(signature.encode()).hexdigest()
    inserted = await conn.execute(
        insert(table)
        .values(signature_sha256=digest, received_at=now)
        .on_conflict_do_nothing()
        .returning(table.c.signature_sha256)
    )
    return inserted.first() is not None


def ephemeral(text: str) -> dict[str, object]:
    """A reply only the person who clicked sees; the message stays as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
