"""What schemathesis is told about the API beyond its OpenAPI document, for tests/e2e/test_api_fuzz.py:
only rules the document states in words because no schema keyword can (each is a documented 422).
No check is turned off or relaxed here, and no failure is filtered.

- `format: password` (new passwords): the service refuses common passwords, the email, and fewer than
  three distinct characters. Valid passwords are generated with auth's own rule and list.
- `Idempotency-Key`: the same key with another body is a documented 422 (IETF httpapi draft). A
  generator draws the same short keys over and over; a well-formed key is made unique per request,
  as a client does. Malformed keys (empty, too long, not printable ASCII) are sent as generated.
- An on-call override ends after it starts, at most 366 days later: a generated override whose two
  times (both well-formed) break that gets an `end` an hour after its `start`."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import schemathesis
from hypothesis import strategies as st

from auth.domain import password_problem
from auth.passwords import common_passwords
from contracts.wire import parse_rfc3339
from gateway.idempotency import KEY_PATTERN, MAX_KEY_LENGTH

KEY_HEADER = "Idempotency-Key"
WELL_FORMED_KEY = re.compile(KEY_PATTERN)

schemathesis.openapi.format(
    "password",
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=64).filter(
        lambda password: password_problem(password, common_passwords()) is None
    ),
)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(KEY_HEADER)
    if isinstance(key, str) and len(key) <= MAX_KEY_LENGTH and WELL_FORMED_KEY.fullmatch(key):
        headers[KEY_HEADER] = str(uuid.uuid4())

    body = case.body
    if case.method.upper() == "POST" and case.path.endswith("/overrides") and isinstance(body, dict):
        try:
            start, end = parse_rfc3339(body["start"]), parse_rfc3339(body["end"])
        except (KeyError, TypeError, ValueError):
            return
        try:
            if not start < end <= start + timedelta(days=366):
                body["end"] = (start + timedelta(hours=1)).isoformat()
        except OverflowError:  # within an hour of the calendar's end: one the other way
            body["start"], body["end"] = (end - timedelta(hours=1)).isoformat(), end.isoformat()
