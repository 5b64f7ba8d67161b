"""The gateway's pure helpers: keyset cursors and UUID parsing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.incidents.references import CURSOR_PATTERN, decode_cursor, encode_cursor, parse_uuid

AT = datetime(2026, 1, 10, 12, 30, 15, 123456, tzinfo=UTC)
ID = uuid.UUID("0190f2c4-6a1b-7cde-8f00-112233445566")


# ---------------------------------------------------------------- cursors


def test_cursor_round_trips() -> None:
    cursor = encode_cursor(AT, ID)
    created_at, incident_id = decode_cursor(cursor)
    assert created_at == AT
    assert created_at.utcoffset() == timedelta(0)
    assert incident_id == ID
    assert isinstance(incident_id, uuid.UUID)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_cursor_round_trips_any_aware_datetime(at: datetime) -> None:
    incident_id = uuid.uuid4()
    created_at, decoded_id = decode_cursor(encode_cursor(at, incident_id))
    assert created_at == at
    assert decoded_id == incident_id


def test_cursor_has_the_documented_shape() -> None:
    for _ in range(20):
        cursor = encode_cursor(AT, uuid.uuid4())
        assert re.fullmatch(CURSOR_PATTERN, cursor), cursor


def test_cursor_differs_per_position() -> None:
    assert encode_cursor(AT, ID) != encode_cursor(AT + timedelta(microseconds=1), ID)
    assert encode_cursor(AT, ID) != encode_cursor(AT, uuid.UUID(int=ID.int + 1))


@pytest.mark.parametrize(
    "cursor", ["0." + "0" * 32, "-9999999999999999." + "f" * 32, "9999999999999999." + "a" * 32]
)
def test_every_string_of_the_documented_shape_is_a_position(cursor: str) -> None:
    """The document states the cursor's pattern, so whatever matches it must be accepted."""
    created_at, incident_id = decode_cursor(cursor)
    assert created_at.tzinfo is not None
    assert incident_id.hex == cursor.split(".")[1]


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "a",
        "!!!!",
        "not a cursor",
        "é",
        "%%%",
        "1." + "0" * 31,
        "1." + "0" * 33,
        "1." + "G" * 32,
        "1." + "A" * 32,
        "." + "0" * 32,
        "12345678901234567." + "0" * 32,
        "1.5." + "0" * 32,
        "+1." + "0" * 32,
        "1." + "0" * 32 + "\n",
    ],
    ids=lambda g: repr(g)[:40],
)
def test_decode_cursor_raises_value_error_on_garbage(garbage: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(garbage)


def test_decode_cursor_of_a_truncated_cursor_raises() -> None:
    cursor = encode_cursor(AT, ID)
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(cursor[: len(cursor) // 2])


# ---------------------------------------------------------------- parse_uuid


@pytest.mark.parametrize(
    "raw",
    [
        str(ID),
        str(ID).upper(),
        ID.hex,
        f"{{{ID}}}",
        f"urn:uuid:{ID}",
    ],
)
def test_parse_uuid_accepts_uuid_spellings(raw: str) -> None:
    assert parse_uuid(raw) == ID


@pytest.mark.parametrize(
    "raw",
    ["", "nope", "INC-1", str(ID)[:-1], str(ID) + "0", "g" * 32, "0190f2c4-6a1b-7cde-8f00-11223344556z"],
)
def test_parse_uuid_returns_none_for_anything_else(raw: str) -> None:
    assert parse_uuid(raw) is None
