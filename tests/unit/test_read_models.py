"""The gateway's pure helpers: keyset cursors and UUID parsing."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.read_models import decode_cursor, encode_cursor, parse_uuid

AT = datetime(2026, 1, 10, 12, 30, 15, 123456, tzinfo=UTC)
ID = uuid.UUID("0190f2c4-6a1b-7cde-8f00-112233445566")


def _raw_cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


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
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_cursor_round_trips_any_aware_datetime(at: datetime) -> None:
    incident_id = uuid.uuid4()
    created_at, decoded_id = decode_cursor(encode_cursor(at, incident_id))
    assert created_at == at
    assert created_at.utcoffset() == at.utcoffset()
    assert decoded_id == incident_id


def test_cursor_is_url_safe_and_unpadded() -> None:
    for _ in range(20):
        cursor = encode_cursor(AT, uuid.uuid4())
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), cursor
        assert "=" not in cursor
    # Fits the gateway's 200-character limit on the query parameter.
    assert len(encode_cursor(AT, ID)) <= 200


def test_cursor_differs_per_position() -> None:
    assert encode_cursor(AT, ID) != encode_cursor(AT + timedelta(microseconds=1), ID)
    assert encode_cursor(AT, ID) != encode_cursor(AT, uuid.UUID(int=ID.int + 1))


def test_cursor_still_decodes_with_padding_added_back() -> None:
    cursor = encode_cursor(AT, ID)
    padded = cursor + "=" * (-len(cursor) % 4)
    assert decode_cursor(padded) == (AT, ID)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "a",
        "!!!!",
        "not a cursor",
        "é",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe\x00binary").decode(),
        _raw_cursor("just a string"),
        _raw_cursor(7),
        _raw_cursor(None),
        _raw_cursor([]),
        _raw_cursor([AT.isoformat()]),
        _raw_cursor([AT.isoformat(), str(ID), "extra"]),
        _raw_cursor({"created_at": AT.isoformat(), "id": str(ID)}),
        _raw_cursor(["yesterday", str(ID)]),
        _raw_cursor([AT.isoformat(), "not-a-uuid"]),
        _raw_cursor([AT.isoformat(), None]),
        _raw_cursor([None, str(ID)]),
        _raw_cursor([12345, str(ID)]),
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


@pytest.mark.parametrize("bad_id", [5, ["x"], {"a": 1}])
def test_decode_cursor_with_a_non_string_id_raises_value_error(bad_id: object) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(_raw_cursor([AT.isoformat(), bad_id]))


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
