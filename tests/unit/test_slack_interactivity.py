"""Slack interactivity, the pure parts: the v0 request signature (Slack's own published example,
the wrong secret, a stale or future timestamp, a tampered body), reading a click out of its form
body, and the buttons of the incident message and of the on-call DM checked against Slack's
documented Block Kit limits (button: `text` plain_text of at most 75 characters, `action_id` at
most 255, `value` at most 2000, `url` at most 3000, `style` primary or danger; a confirm dialog's
title 100, text 300, confirm and deny 30; at most 25 elements in an actions block;
https://api.slack.com/reference/block-kit). A replayed request is refused by the record the
services keep in their databases: tests/e2e/test_slack_actions.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import jsonschema
import pytest

from contracts.oncall import ChannelKind
from contracts.slack import INCIDENT_ACKNOWLEDGE, INCIDENT_OPEN, INCIDENT_RESOLVE, PAGE_ACKNOWLEDGE, PAGE_OPEN
from integrations.domain import IncidentFacts, read_action_value, slack_message
from oncall.domain import slack_blocks
from runtime.slack import (
    NoPayload,
    SignatureProblem,
    Unreadable,
    read_interaction,
    signature_problem,
    slack_signature,
)
from tests.unit.test_oncall_channels import FACTS, PAGE, ROW, paging

# Slack's example in "Verifying requests from Slack".
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
DOC_NOW = float(DOC_TIMESTAMP) + 30


def test_slacks_published_example_verifies() -> None:
    assert slack_signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY) == DOC_SIGNATURE
    assert signature_problem(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, DOC_NOW) is None


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "now", "problem"),
    [
        ("another-secret-000", DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, DOC_NOW, SignatureProblem.INVALID),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY + b"&x=1", DOC_NOW, SignatureProblem.INVALID),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE.upper(), DOC_BODY, DOC_NOW, SignatureProblem.INVALID),
        # The body is signed with its timestamp: another timestamp does not verify.
        (DOC_SECRET, "1531420619", DOC_SIGNATURE, DOC_BODY, DOC_NOW, SignatureProblem.INVALID),
        # Five minutes is the window, either way.
        (
            DOC_SECRET,
            DOC_TIMESTAMP,
            DOC_SIGNATURE,
            DOC_BODY,
            float(DOC_TIMESTAMP) + 301,
            SignatureProblem.STALE,
        ),
        (
            DOC_SECRET,
            DOC_TIMESTAMP,
            DOC_SIGNATURE,
            DOC_BODY,
            float(DOC_TIMESTAMP) - 301,
            SignatureProblem.STALE,
        ),
        (DOC_SECRET, "soon", DOC_SIGNATURE, DOC_BODY, DOC_NOW, SignatureProblem.STALE),
        (DOC_SECRET, "", DOC_SIGNATURE, DOC_BODY, DOC_NOW, SignatureProblem.MISSING),
        (DOC_SECRET, DOC_TIMESTAMP, "", DOC_BODY, DOC_NOW, SignatureProblem.MISSING),
    ],
)
def test_a_request_not_signed_by_slack_now_is_refused(
    secret: str, timestamp: str, signature: str, body: bytes, now: float, problem: SignatureProblem
) -> None:
    assert signature_problem(secret, timestamp, signature, body, now) is problem


def test_the_window_ends_at_five_minutes() -> None:
    edge = float(DOC_TIMESTAMP) + 300
    assert signature_problem(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, edge) is None


def click(action_id: str, value: str, **extra: Any) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "acme"},
        "user": {"id": "U0ANN", "username": "ann", "team_id": "T0TEAM"},
        "actions": [
            {"action_id": action_id, "value": value, "action_ts": "1733100000.000100", "type": "button"}
        ],
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        **extra,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_a_click_reads_out_of_its_form_body() -> None:
    interaction = read_interaction(click(INCIDENT_ACKNOWLEDGE, "w:i", container={"type": "message"}))
    assert (interaction.team_id, interaction.user.id, interaction.user.username) == ("T0TEAM", "U0ANN", "ann")
    assert interaction.actions[0].action_id == INCIDENT_ACKNOWLEDGE
    assert interaction.response_url.startswith("https://hooks.slack.com/")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=",
        b"payload=not-json",
        b"\xff\xfe",
        urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "U1"}})}).encode(),
        urlencode(
            {"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": []})}
        ).encode(),
        urlencode([("payload", "{}"), ("payload", "{}")]).encode(),
    ],
)
def test_anything_else_is_unreadable(body: bytes) -> None:
    with pytest.raises(Unreadable):
        read_interaction(body)


def test_a_form_without_a_payload_is_told_apart_from_a_payload_that_is_no_click() -> None:
    with pytest.raises(NoPayload):
        read_interaction(b"text=hello")
    with pytest.raises(Unreadable) as empty:
        read_interaction(b"payload=")
    assert not isinstance(empty.value, NoPayload)  # a payload, empty: nothing can verify it (401)


# ---- the buttons, against Slack's documented limits


def plain(limit: int) -> dict[str, Any]:
    """A plain_text object of at most `limit` characters."""
    return {
        "type": "object",
        "required": ["type", "text"],
        "properties": {
            "type": {"const": "plain_text"},
            "text": {"type": "string", "minLength": 1, "maxLength": limit},
            "emoji": {"type": "boolean"},
        },
    }


BUTTON = {
    "type": "object",
    "required": ["type", "text"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "button"},
        "text": plain(75),
        "action_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "url": {"type": "string", "maxLength": 3000},
        "value": {"type": "string", "maxLength": 2000},
        "style": {"enum": ["primary", "danger"]},
        "confirm": {
            "type": "object",
            "required": ["title", "text", "confirm", "deny"],
            "additionalProperties": False,
            "properties": {"title": plain(100), "text": plain(300), "confirm": plain(30), "deny": plain(30)},
        },
        "accessibility_label": {"type": "string", "maxLength": 75},
    },
}
ACTIONS = {
    "type": "object",
    "required": ["type", "elements"],
    "properties": {
        "type": {"const": "actions"},
        "elements": {"type": "array", "minItems": 1, "maxItems": 25, "items": BUTTON},
        "block_id": {"type": "string", "maxLength": 255},
    },
}


def action_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [b for b in blocks if b["type"] == "actions"]
    for block in found:
        jsonschema.validate(block, ACTIONS)
        ids = [e["action_id"] for e in block["elements"] if "action_id" in e]
        assert len(ids) == len(set(ids)), "action_ids must be unique in a block"
    return found


def facts(state: str) -> IncidentFacts:
    return IncidentFacts(
        "0190f5a0-0000-7000-8000-0000000000aa", "INC-7", "Checkout " + "x" * 400, "checkout", "high", state
    )


WEBHOOK = "0190f5a0-0000-7000-8000-0000000000bb"


def buttons(state: str, **options: Any) -> dict[str, dict[str, Any]]:
    message = slack_message(
        "incident.created", {}, facts(state), "https://sre.example/incidents/x", **options
    )
    [block] = action_blocks(message["blocks"])
    return {e.get("action_id", "link"): e for e in block["elements"]}


def test_an_interactive_message_has_acknowledge_and_resolve_as_far_as_the_state_allows() -> None:
    detected = buttons("detected", interactive=WEBHOOK)
    assert list(detected) == [INCIDENT_ACKNOWLEDGE, INCIDENT_RESOLVE, INCIDENT_OPEN]
    assert detected[INCIDENT_ACKNOWLEDGE]["style"] == "primary"
    assert detected[INCIDENT_OPEN]["url"] == "https://sre.example/incidents/x"
    # The value names the webhook (whose secret verifies the click) and the incident.
    assert {read_action_value(b["value"]) for b in detected.values()} == {
        read_action_value(f"{WEBHOOK}:{facts('detected').id}")
    }
    assert read_action_value(detected[INCIDENT_RESOLVE]["value"]) is not None
    assert list(buttons("acknowledged", interactive=WEBHOOK)) == [INCIDENT_RESOLVE, INCIDENT_OPEN]
    assert list(buttons("investigating", interactive=WEBHOOK)) == [INCIDENT_RESOLVE, INCIDENT_OPEN]
    assert list(buttons("resolved", interactive=WEBHOOK)) == [INCIDENT_OPEN]


def test_a_message_without_a_signing_secret_has_only_the_link() -> None:
    assert list(buttons("detected")) == ["link"]


def test_the_updated_message_says_who_clicked() -> None:
    message = slack_message(
        "incident.state_changed",
        {"from_state": "detected", "to_state": "acknowledged"},
        facts("acknowledged"),
        "https://sre.example/incidents/x",
        interactive=WEBHOOK,
        done_by="Acknowledged by <@U0ANN> via Slack",
    )
    contexts = [b for b in message["blocks"] if b["type"] == "context"]
    assert contexts[-1]["elements"][0]["text"] == "Acknowledged by <@U0ANN> via Slack"


def test_a_value_that_is_not_ours_reads_as_nothing() -> None:
    assert read_action_value("") is None
    assert read_action_value("a:b") is None
    assert read_action_value(f"{WEBHOOK}") is None


def test_the_on_call_dm_has_an_interactive_acknowledge_once_the_app_has_a_signing_secret() -> None:
    [linked] = action_blocks(slack_blocks(FACTS))
    assert linked["elements"][0]["url"] == FACTS.ack_url and "action_id" not in linked["elements"][0]
    [interactive] = action_blocks(slack_blocks(FACTS, "0190f5a0-0000-7000-8000-00000000000c"))
    acknowledge, open_button = interactive["elements"]
    assert (acknowledge["action_id"], acknowledge["value"]) == (
        PAGE_ACKNOWLEDGE,
        "0190f5a0-0000-7000-8000-00000000000c",
    )
    assert "url" not in acknowledge  # a link would acknowledge a second way at the same click
    assert (open_button["action_id"], open_button["url"]) == (PAGE_OPEN, FACTS.incident_url)


async def test_the_dm_sent_with_a_signing_secret_carries_the_page() -> None:
    sent: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    sender = paging(slack, slack_bot_token="xoxb-test", slack_signing_secret="s3cret-signing")
    await sender._send(ChannelKind.SLACK, SimpleNamespace(address="U0ANN"), FACTS, ROW, PAGE)
    [block] = action_blocks(json.loads(sent[0].content)["blocks"])
    assert block["elements"][0]["value"] == PAGE.id
