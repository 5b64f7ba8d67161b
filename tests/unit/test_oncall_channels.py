"""The three channels, each against a stand-in for its far end: Slack's API (httpx's mock
transport), a webhook receiver (the same), and an SMTP server (aiosmtpd, on loopback)."""

from __future__ import annotations

import json
from email import message_from_bytes
from email import policy as email_policy
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from contracts.oncall import ChannelKind
from oncall.domain import PageFacts
from oncall.paging import Paging
from oncall.settings import OncallSettings
from runtime.signing import SIGNATURE_HEADER, signature
from sre_copilot.embedded import free_port

FACTS = PageFacts(
    incident_id="0190f5a0-0000-7000-8000-00000000000a",
    key="INC-7",
    title="Checkout 5xx",
    service_name="checkout",
    severity="critical",
    incident_url="https://sre.example.com/incidents/0190f5a0-0000-7000-8000-00000000000a",
    ack_url="https://sre.example.com/api/v1/pages/p/ack?token=1.ab",
)
ROW = SimpleNamespace(id="0190f5a0-0000-7000-8000-00000000000b")
PAGE = SimpleNamespace(id="0190f5a0-0000-7000-8000-00000000000c", user_id="u_ann")


def paging(handler: Any = None, **settings: Any) -> Paging:
    sender = Paging(SimpleNamespace(), OncallSettings(**settings))  # type: ignore[arg-type]
    if handler is not None:
        sender._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return sender


async def test_slack_is_a_dm_from_the_bot_with_the_acknowledge_button() -> None:
    seen: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    sender = paging(slack, slack_bot_token="xoxb-test", slack_api_url="https://slack.test/api")
    await sender._send(ChannelKind.SLACK, SimpleNamespace(address="U0123ABCD"), FACTS, ROW, PAGE)
    (request,) = seen
    assert str(request.url) == "https://slack.test/api/chat.postMessage"
    assert request.headers["Authorization"] == "Bearer xoxb-test"
    body = json.loads(request.content)
    assert body["channel"] == "U0123ABCD"
    buttons = body["blocks"][1]["elements"]
    assert buttons[0]["text"]["text"] == "Acknowledge" and buttons[0]["url"] == FACTS.ack_url


async def test_slack_saying_not_ok_is_a_failed_notification() -> None:
    sender = paging(
        lambda r: httpx.Response(200, json={"ok": False, "error": "channel_not_found"}), slack_bot_token="x"
    )
    with pytest.raises(RuntimeError, match="channel_not_found"):
        await sender._send(ChannelKind.SLACK, SimpleNamespace(address="U1"), FACTS, ROW, PAGE)


async def test_a_webhook_is_signed_like_generic_webhooks() -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = paging(receiver, notify_allow_private_targets=True)
    method = SimpleNamespace(address="https://gateway.example.com/page", secret="whsec_test")
    await sender._send(ChannelKind.WEBHOOK, method, FACTS, ROW, PAGE)
    (request,) = seen
    fields = dict(p.split("=", 1) for p in request.headers[SIGNATURE_HEADER].split(","))
    assert fields["v1"] == signature("whsec_test", int(fields["t"]), request.content)
    assert json.loads(request.content)["ack_url"] == FACTS.ack_url


async def test_a_webhook_to_a_private_address_is_refused_unless_allowed() -> None:
    sender = paging(lambda r: httpx.Response(204))
    with pytest.raises(RuntimeError, match="non-public"):
        await sender._send(
            ChannelKind.WEBHOOK, SimpleNamespace(address="http://127.0.0.1:9/x", secret="s"), FACTS, ROW, PAGE
        )


async def test_email_goes_over_smtp_with_both_links() -> None:
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sender = paging(smtp_host="127.0.0.1", smtp_port=port, smtp_from="pager@example.com")
        await sender._send(ChannelKind.EMAIL, SimpleNamespace(address="bob@example.com"), FACTS, ROW, PAGE)
    finally:
        controller.stop()
    (raw,) = received
    message = message_from_bytes(raw, policy=email_policy.default)
    assert (
        message["To"] == "bob@example.com"
        and message["Subject"] == "[CRITICAL] INC-7 Checkout 5xx (checkout)"
    )
    text = message.get_content()  # type: ignore[attr-defined]
    assert FACTS.ack_url in text and FACTS.incident_url in text
