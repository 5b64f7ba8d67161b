"""What schemathesis is told about the API beyond its OpenAPI document, for tests/e2e/test_api_fuzz.py:
only rules the document states in words because no schema keyword can (each is a documented 422).
No check is turned off or relaxed here, and no failure is filtered.

- `format: password` (new passwords): the service refuses common passwords, the email, and fewer than
  three distinct characters. Valid passwords are generated with auth's own rule and list.
- `Idempotency-Key`: the same key with another body is a documented 422 (IETF httpapi draft). A
  generator draws the same short keys over and over; a well-formed key is made unique per request,
  as a client does. Malformed keys (empty, too long, not printable ASCII) are sent as generated.
- PagerDuty Events v2 (`/integrations/pagerduty/...`): the `routing_key` in the body is an integration
  key, which no generator can guess. A well-formed one (a string the schema allows) is replaced by the
  identity's own credential, as a sender configured with its key sends it; a malformed one is sent
  as generated. (The owner's and peer's credentials are access tokens: 401, as documented.)"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from auth.domain import password_problem
from auth.passwords import common_passwords
from gateway.idempotency import KEY_PATTERN, MAX_KEY_LENGTH

KEY_HEADER = "Idempotency-Key"
MAX_ROUTING_KEY = 256
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
    credential = headers.get("Authorization", "")
    if (
        "/integrations/pagerduty/" in case.path
        and isinstance(body, dict)
        and isinstance(body.get("routing_key"), str)
        and 1 <= len(body["routing_key"]) <= MAX_ROUTING_KEY
        and "\x00" not in body["routing_key"]
        and credential.startswith("Bearer ")
    ):
        body["routing_key"] = credential.removeprefix("Bearer ")
