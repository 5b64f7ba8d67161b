"""Pure parts of the gateway's API promises: what counts as the same request for `Idempotency-Key`,
which answers are kept, and the live feed's per-organisation cap and session bookkeeping."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gateway.auth.verifier import principal_refusal
from gateway.http.idempotency import fingerprint, storable, unquote
from gateway.stream.fanout import FanOut, TooManyConnections


def test_the_same_request_has_the_same_fingerprint_whatever_its_json_layout() -> None:
    body = {"title": "CPU", "severity": "high", "labels": {"b": 1, "a": [1, 2]}}
    compact = json.dumps(body, separators=(",", ":")).encode()
    spaced = json.dumps(dict(reversed(body.items())), indent=2).encode()
    path = "/api/v1/incidents"
    assert fingerprint("POST", path, "", compact) == fingerprint("post", path, "", spaced)
    assert fingerprint("POST", path, "", compact) != fingerprint(
        "POST", path, "", compact.replace(b"high", b"low")
    )
    assert fingerprint("POST", path, "", compact) != fingerprint("POST", path + "/x/notes", "", compact)
    assert fingerprint("POST", path, "", compact) != fingerprint("POST", path, "a=1", compact)
    # Not JSON: byte for byte (and never an error).
    assert fingerprint("POST", path, "", b"\xff{") == fingerprint("POST", path, "", b"\xff{")
    assert fingerprint("POST", path, "", b"\xff{") != fingerprint("POST", path, "", b"\xff{ ")
    assert fingerprint("POST", path, "", b"[" * 100_000) != fingerprint("POST", path, "", b"")
    # The parts cannot run into each other.
    assert fingerprint("POST", "/ab", "", b"c") != fingerprint("POST", "/a", "", b"bc")


def test_keys_in_both_forms() -> None:
    assert unquote('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert unquote("8e03978e") == "8e03978e"
    assert unquote('""') == ""
    assert unquote('"') == '"'


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (200, True),
        (201, True),
        (202, True),
        (400, True),
        (404, True),
        (409, True),
        (422, True),
        (401, False),
        (403, False),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
        (504, False),
    ],
)
def test_only_final_answers_are_kept(status: int, kept: bool) -> None:
    assert storable(status) is kept


def test_an_organisation_holds_at_most_its_cap_of_sockets() -> None:
    fanout = FanOut(queue_size=10, max_per_tenant=2)
    first, second = fanout.subscribe("t_a", "u_1"), fanout.subscribe("t_a", "u_2")
    with pytest.raises(TooManyConnections):
        fanout.subscribe("t_a", "u_1")
    fanout.subscribe("t_b", "u_3")  # another organisation is counted apart
    fanout.unsubscribe(first)
    fanout.subscribe("t_a", "u_1")
    assert fanout.connections == 3
    assert fanout.of_user("t_a", "u_2") == [second]
    assert fanout.of_user("t_b", "u_2") == []


def test_what_ends_a_session() -> None:
    active = SimpleNamespace(tenant_id="t_a", status="active", session_epoch=2)
    assert principal_refusal(None, "t_a", 0) is None  # not projected yet: the claims stand
    assert principal_refusal(active, "t_a", 2) is None
    assert principal_refusal(active, "t_a", 1) == "session ended"
    assert principal_refusal(active, "t_b", 2) == "user is not active"
    deactivated = SimpleNamespace(tenant_id="t_a", status="deactivated", session_epoch=3)
    assert principal_refusal(deactivated, "t_a", 3) == "user is not active"
