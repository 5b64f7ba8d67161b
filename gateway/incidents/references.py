"""How a client names an incident and a page of them: an id in a path, and an opaque cursor."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# A cursor is the last row's position: its creation time in microseconds since the epoch and its id,
# `<microseconds>.<32 hex digits>`. Every string of that shape is a position (the document states the
# pattern), so a cursor is never refused once it has the shape.
CURSOR_PATTERN = r"^-?[0-9]{1,16}\.[0-9a-f]{32}$"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, incident_id: uuid.UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{incident_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on anything not of the cursor's shape (`CURSOR_PATTERN`)."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ValueError("invalid cursor")
    micros, hex_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)
