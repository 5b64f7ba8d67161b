"""What schemathesis is told about the API beyond its OpenAPI document, for tests/e2e/test_api_fuzz.py:
only rules the document states in words because no schema keyword can (each is a documented 422).
No check is turned off or relaxed here, and no failure is filtered.

- `format: password` (new passwords): the service refuses common passwords, the email, and fewer than
  three distinct characters. Valid passwords are generated with auth's own rule and list.
- `Idempotency-Key`: the same key with another body is a documented 422 (IETF httpapi draft). A
  generator draws the same short keys over and over; a well-formed key is made unique per request,
  as a client does. Malformed keys (empty, too long, not printable ASCII) are sent as generated.
- `format: jmespath` (JSON source mappings), `format: python-regex` (silence and on-call routing
  matchers) and
  `format: iana-time-zone` (recurring silences): integrations compiles the expression or looks the
  zone up (a 422 otherwise). Valid ones are generated from a list of each; a phase that draws plain
  strings for them (coverage) has a schema-valid one that does not compile replaced by a valid one, as
  a client writes what it means. Malformed ones (blank, too long, NUL) are sent as generated.
- PagerDuty Events v2 (`/integrations/pagerduty/...`): the `routing_key` in the body is an integration
  key, which no generator can guess. A well-formed one (a string the schema allows) is replaced by the
  identity's own credential, as a sender configured with its key sends it; a malformed one is sent
  as generated. (The owner's and peer's credentials are access tokens: 401, as documented.)
- An on-call override ends after it starts, at most 366 days later: a generated override whose two
  times (both well-formed) break that gets an `end` an hour after its `start`.
- A team's `members` are users of the caller's organisation, whose ids no generator can guess: a
  well-formed member id (a string the schema allows) is replaced by the caller's own user id (its
  access token's subject), as an admin names people of their organisation; malformed ones are sent
  as generated."""

from __future__ import annotations

import base64
import json
import re
import uuid
import zoneinfo
from datetime import timedelta
from typing import Any

import jmespath
import schemathesis
from hypothesis import strategies as st

from auth.domain import password_problem
from auth.passwords import common_passwords
from contracts.wire import parse_rfc3339
from gateway.http.idempotency import KEY_PATTERN, MAX_KEY_LENGTH

KEY_HEADER = "Idempotency-Key"
MAX_ROUTING_KEY = 256
ZONE_SHAPE = re.compile(r"[A-Za-z0-9_+\-/]+")
WELL_FORMED_KEY = re.compile(KEY_PATTERN)

schemathesis.openapi.format(
    "password",
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=64).filter(
        lambda password: password_problem(password, common_passwords()) is None
    ),
)


schemathesis.openapi.format(
    "jmespath",
    st.sampled_from(
        [
            "title",
            "alert.name",
            "a.b[0].c",
            "items[?level=='high'].name | [0]",
            "join(' ', [a, b])",
            "`1`",
            "@",
        ]
    ),
)
schemathesis.openapi.format(
    "python-regex", st.sampled_from(["db-.*", "[a-z]+", "prod|staging", ".*", "x?y{1,3}"])
)
schemathesis.openapi.format("iana-time-zone", st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))


MAX_EXPRESSION = 1_000
MAX_ZONE = 64


def _compiles(kind: str, value: str) -> bool:
    try:
        if kind == "jmespath":
            jmespath.compile(value)
        elif kind == "regex":
            re.compile(value)
        else:
            zoneinfo.ZoneInfo(value)
    except Exception:
        return False
    return True


def _well_formed(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value and bool(value.strip())


def _mend_formats(path: str, body: Any) -> None:
    """Schema-valid expressions, regular expressions and zones that do not compile, made valid."""
    if not isinstance(body, dict):
        return
    mapping = body.get("mapping")
    if "/integrations/json-sources" in path and isinstance(mapping, dict):
        for name, value in mapping.items():
            if _well_formed(value, MAX_EXPRESSION) and not _compiles("jmespath", value):
                mapping[name] = "title"
    matchers: list[Any] = []
    if path.endswith("/integrations/silences") and isinstance(body.get("matchers"), list):
        matchers = body["matchers"]
    if path.endswith("/api/v1/routing") and isinstance(body.get("rules"), list):
        for rule in body["rules"]:
            if isinstance(rule, dict) and isinstance(rule.get("matchers"), list):
                matchers += rule["matchers"]
    for matcher in matchers:
        if isinstance(matcher, dict) and matcher.get("op") in ("=~", "!~"):
            value = matcher.get("value")
            if isinstance(value, str) and len(value) <= MAX_EXPRESSION and "\x00" not in value:
                if not _compiles("regex", value):
                    matcher["value"] = ".*"
    if path.endswith("/integrations/webhooks") and body.get("kind") != "slack":
        # A signing secret is a Slack webhook's only (a 422 for another kind, which no schema states).
        body.pop("slack_signing_secret", None)
    if path.endswith("/integrations/silences"):
        recurrence = body.get("recurrence")
        if isinstance(recurrence, dict):
            zone = recurrence.get("timezone")
            if isinstance(zone, str) and _well_formed(zone, MAX_ZONE) and ZONE_SHAPE.fullmatch(zone):
                if not _compiles("zone", zone):
                    recurrence["timezone"] = "UTC"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(KEY_HEADER)
    if isinstance(key, str) and len(key) <= MAX_KEY_LENGTH and WELL_FORMED_KEY.fullmatch(key):
        headers[KEY_HEADER] = str(uuid.uuid4())
    body = case.body
    _mend_formats(case.path, body)
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
    _fix_override_times(case)
    _fix_restriction_windows(case)
    _name_real_members(case, credential)


MEMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _subject(credential: str) -> str | None:
    """The user id an access token names (not verified: the gateway does that)."""
    parts = credential.removeprefix("Bearer ").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def _name_real_members(case: Any, credential: str) -> None:
    body = case.body
    if not (case.path.endswith("/teams") or "/teams/" in case.path) or not isinstance(body, dict):
        return
    members, user = body.get("members"), _subject(credential)
    if isinstance(members, list) and user is not None:
        body["members"] = [user if isinstance(m, str) and MEMBER_ID.fullmatch(m) else m for m in members]


def _fix_override_times(case: Any) -> None:
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


def _fix_restriction_windows(case: Any) -> None:
    """A layer's window whose start and end are the same time other than 00:00 is refused (422: only
    00:00-00:00 spells a whole day), which a schema cannot state: such a window is made to run to
    midnight."""
    layers = case.body.get("layers") if isinstance(case.body, dict) else None
    if "/schedules" not in case.path or not isinstance(layers, list):
        return
    for layer in layers:
        windows = layer.get("restrictions") if isinstance(layer, dict) else None
        for window in windows if isinstance(windows, list) else []:
            if isinstance(window, dict) and window.get("start") == window.get("end") != "00:00":
                window["end"] = "00:00"
