"""What the projector retries, and why it stops at an event: the classifications, without a platform."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from nats.js.api import RawStreamMsg
from sqlalchemy import exc as sa
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from contracts.envelope import EventEnvelope
from contracts.events import CURRENT_VERSION, IncidentCreated, IncidentState, Severity
from gateway.projection.projector import StallReason, decode
from gateway.projection.skip import dead_letter_headers
from runtime.db import is_transaction_conflict, is_unavailable


def as_sqlalchemy_raises(error: Exception) -> BaseException:
    """`error` as SQLAlchemy raises it from asyncpg: wrapped in the driver adapter's error, wrapped
    in a DBAPIError, each raised from the one before."""
    try:
        try:
            try:
                raise error
            except Exception as driver:
                raise AsyncAdapt_asyncpg_dbapi.Error(str(driver), driver) from driver
        except Exception as adapted:
            raise sa.DBAPIError("UPDATE gateway.incidents ...", {}, adapted) from adapted
    except sa.DBAPIError as wrapped:
        return wrapped
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.DeadlockDetectedError("deadlock detected"),  # 40P01
        asyncpg.SerializationError("could not serialize access due to concurrent update"),  # 40001
    ],
)
def test_deadlocks_and_serialization_failures_are_retried(error: Exception) -> None:
    assert error.sqlstate.startswith("40")  # type: ignore[attr-defined]
    assert is_transaction_conflict(error)
    assert is_transaction_conflict(as_sqlalchemy_raises(error))
    # Not an outage either: the messages are kept by the conflict rule, not the outage one.
    assert not is_unavailable(as_sqlalchemy_raises(error))


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.TransactionIntegrityConstraintViolationError("deferred"),  # 40002: the data's
        asyncpg.DataError("invalid input"),
        ValueError("not a database error"),
    ],
)
def test_other_failures_are_not_conflicts(error: Exception) -> None:
    assert not is_transaction_conflict(error)
    if isinstance(error, asyncpg.PostgresError):
        assert not is_transaction_conflict(as_sqlalchemy_raises(error))


def envelope(event_type: str = "incident.created", version: int = 1, **data: object) -> EventEnvelope:
    incident_id = str(uuid.uuid4())
    # Version 1's fields (upcast to the snapshot of version 2 when read).
    payload: dict[str, object] = {
        "incident_id": incident_id,
        "key": "INC-1",
        "number": 1,
        "title": "Checkout latency",
        "description": "p99 above 2 s",
        "service_name": "checkout",
        "severity": Severity.HIGH.value,
        "state": IncidentState.DETECTED.value,
        "created_by": "u_1",
        "created_at": datetime.now(UTC).isoformat(),
    }
    return EventEnvelope(
        type=event_type,
        version=version,
        tenant_id="t_1",
        aggregate_id=incident_id,
        correlation_id="c",
        data=payload | data,
    )


def test_a_readable_event_decodes() -> None:
    item = decode(7, None, envelope().to_bytes())
    assert item.problem is None and item.seq == 7
    assert isinstance(item.data, IncidentCreated)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00 not an event", StallReason.UNREADABLE),
        (b'{"type": "incident.created"}', StallReason.UNREADABLE),
        (envelope(version=CURRENT_VERSION["incident.created"] + 98).to_bytes(), StallReason.NEWER_VERSION),
        (envelope("incident.exploded").to_bytes(), StallReason.UNKNOWN_TYPE),
        (envelope(severity="apocalyptic").to_bytes(), StallReason.INVALID),
        (envelope(version=0).to_bytes(), StallReason.INVALID),  # older, and no upcaster for it
    ],
)
def test_an_event_that_cannot_be_applied_says_why(raw: bytes, reason: StallReason) -> None:
    item = decode(7, None, raw)
    assert item.problem is not None and item.problem.reason is reason
    assert item.problem.error
    assert item.data is None


def test_a_skip_is_dead_lettered_with_the_consumers_headers() -> None:
    stored = RawStreamMsg(
        subject="events.t_1.incident.created",
        seq=42,
        data=b"{}",
        headers={"Nats-Msg-Id": "0190-event-id", "Correlation-Id": "c-1"},
    )
    headers = dead_letter_headers(stored, 42, "v2 published before the gateway was upgraded", 3, "boom")
    assert headers["Dlq-Consumer"] == "gateway_projector"
    assert headers["Dlq-Original-Subject"] == "events.t_1.incident.created"
    assert headers["Dlq-Original-Seq"] == "42"
    assert headers["Dlq-Attempts"] == "3"
    assert headers["Dlq-Error"] == "v2 published before the gateway was upgraded"
    assert headers["Dlq-Skipped-By-Operator"] == "true"
    assert headers["Dlq-Stall-Error"] == "boom"
    assert headers["Correlation-Id"] == "c-1"
    # The DLQ's own de-duplication id, as runtime.consumer.dead_letter gives it, not the event's.
    assert headers["Nats-Msg-Id"] == "gateway_projector:42"
