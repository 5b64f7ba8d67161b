"""Slack interactivity end to end, with real HTTP receivers standing in for Slack (the incoming
webhook, the `response_url` of a click, the Web API the on-call bot DMs through): an incident
notified to a Slack webhook that has a signing secret carries Acknowledge and Resolve buttons; a
click signed with that secret acknowledges it as the linked user, the message is updated in place
at the `response_url`, and the timeline says who did it from Slack; a forged, stale or replayed
click is a 401 and changes nothing; an unlinked Slack member is told to link and changes nothing;
the Acknowledge button of an on-call page's DM acknowledges the page and stops the escalation."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from contracts.slack import INCIDENT_ACKNOWLEDGE, INCIDENT_RESOLVE, PAGE_ACKNOWLEDGE
from runtime.slack import slack_signature
from tests.conftest import ONCALL_SLACK_PORT, ONCALL_SLACK_SIGNING_SECRET, Tenant
from tests.e2e.test_auth_users import member
from tests.e2e.test_integrations_alertmanager import eventually
from tests.e2e.test_integrations_webhooks import Receiver, create_webhook, open_incident, receivers, start

pytestmark = pytest.mark.e2e
__all__ = ["receivers"]  # the fixture, used by name

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0ACME"
ACTIONS = "/api/v1/integrations/slack/actions"


def click_body(action_id: str, value: str, user: str, response_url: str, action_ts: str = "") -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "container": {"type": "message", "message_ts": "1733100000.000100"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
        "response_url": response_url,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
    }


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e.get("action_id", "?"): e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    }


async def incident_state(client: httpx.AsyncClient, tenant: Tenant, incident_id: str) -> str:
    answer = await client.get(f"/api/v1/incidents/{incident_id}", headers=tenant.auth)
    return str(answer.json()["state"])


async def test_slack_buttons_act_as_the_linked_user_and_update_the_message(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    slack, responses = start(receivers), start(receivers)
    hook = await create_webhook(
        client, tenant, kind="slack", name="#incidents", url=slack.url, slack_signing_secret=SECRET
    )
    assert hook["interactive"] is True and "slack_signing_secret" not in hook and hook["secret"] is None
    # A signing secret belongs to a Slack webhook only: bad input in a creation naming another kind,
    # a conflict with the webhook as it is in a change of another kind's.
    webhooks = "/api/v1/integrations/webhooks"
    refused = await client.post(
        webhooks,
        json={"kind": "generic", "name": "ops", "url": slack.url, "slack_signing_secret": SECRET},
        headers=tenant.auth,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["loc"] == ["body", "slack_signing_secret"]
    generic = await create_webhook(client, tenant, kind="generic", name="generic", url=slack.url)
    conflict = await client.patch(
        f"{webhooks}/{generic['id']}", json={"slack_signing_secret": SECRET}, headers=tenant.auth
    )
    assert conflict.status_code == 409, conflict.text
    assert (await client.delete(f"{webhooks}/{generic['id']}", headers=tenant.auth)).status_code == 204
    # The owner links their Slack account; a responder may link only their own.
    linked = await client.put(
        "/api/v1/integrations/slack/links/me",
        json={"slack_team_id": TEAM, "slack_user_id": "U0OWNER"},
        headers=tenant.auth,
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["user_id"] == tenant.user_id
    responder = await member(client, tenant, "responder")
    responder_auth = responder.auth
    other = await client.put(
        f"/api/v1/integrations/slack/links/{tenant.user_id}",
        json={"slack_team_id": TEAM, "slack_user_id": "U0RESP"},
        headers=responder_auth,
    )
    assert other.status_code == 403, other.text
    taken = await client.put(
        "/api/v1/integrations/slack/links/me",
        json={"slack_team_id": TEAM, "slack_user_id": "U0OWNER"},
        headers=responder_auth,
    )
    assert taken.status_code == 409, taken.text
    unknown = await client.put(
        "/api/v1/integrations/slack/links/u_nobody",
        json={"slack_team_id": TEAM, "slack_user_id": "U0NOBODY"},
        headers=tenant.auth,
    )
    assert unknown.status_code == 404, unknown.text
    mine = await client.get("/api/v1/integrations/slack/links", headers=responder_auth)
    assert mine.json()["items"] == []

    incident = await open_incident(client, tenant)
    opened = await eventually(lambda: _async([m for m in slack.bodies() if buttons(m)]))
    assert opened, slack.bodies()
    found = buttons(opened[0])
    assert set(found) == {INCIDENT_ACKNOWLEDGE, INCIDENT_RESOLVE, "sre_incident_open"}
    value = found[INCIDENT_ACKNOWLEDGE]["value"]
    assert incident["id"] in value

    # Forged (another secret), stale (signed six minutes ago), unsigned: 401, JSON, nothing changed.
    body = click_body(INCIDENT_ACKNOWLEDGE, value, "U0OWNER", responses.url)
    forged = await client.post(ACTIONS, content=body, headers=signed(body, "not-the-secret"))
    stale = await client.post(ACTIONS, content=body, headers=signed(body, timestamp=int(time.time()) - 360))
    unsigned = await client.post(
        ACTIONS, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    for refused in (forged, stale, unsigned):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    garbled = await client.post(ACTIONS, content=b"payload=nope", headers=form)
    assert garbled.status_code == 401, garbled.text  # no button of ours: nothing can verify it
    empty = await client.post(ACTIONS, content=b"text=hello", headers=form)
    assert empty.status_code == 400, empty.text

    # A Slack member linked to nobody is told so (ephemeral), and nothing changes.
    stranger = click_body(INCIDENT_ACKNOWLEDGE, value, "U0STRANGER", responses.url)
    answer = await client.post(ACTIONS, content=stranger, headers=signed(stranger))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "unlinked"), answer.text
    [hint] = await eventually(lambda: _async(responses.bodies()))
    assert hint["response_type"] == "ephemeral" and hint["replace_original"] is False
    assert "not linked" in hint["text"]
    assert await incident_state(client, tenant, incident["id"]) == "detected"

    # The linked owner acknowledges; Slack's answer comes at once, the message is updated in place.
    headers = signed(body)
    answer = await client.post(ACTIONS, content=body, headers=headers)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "acknowledged"), answer.text
    updates = await eventually(lambda: _async([b for b in responses.bodies() if b.get("replace_original")]))
    assert updates, responses.bodies()
    update = updates[0]
    assert "Acknowledged by <@U0OWNER> via Slack" in json.dumps(update)
    assert set(buttons(update)) == {INCIDENT_RESOLVE, "sre_incident_open"}
    assert "acknowledged" in json.dumps(update["blocks"][1])

    # The same request again is a replay: 401. Slack sending the same click again (same action_ts,
    # a new signature) moves the incident once.
    replay = await client.post(ACTIONS, content=body, headers=headers)
    assert replay.status_code == 401, replay.text
    retried = await client.post(ACTIONS, content=body, headers=signed(body, timestamp=int(time.time()) + 1))
    assert retried.status_code == 200, retried.text

    timeline = (await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)).json()
    moves = [i for i in timeline["items"] if i["kind"] == "incident.state_changed"]
    assert len(moves) == 1, moves
    assert moves[0]["actor"] == tenant.user_id
    assert moves[0]["data"]["to_state"] == "acknowledged"
    assert moves[0]["data"]["note"] == "Acknowledged in Slack by @u0owner"

    resolve = click_body(INCIDENT_RESOLVE, value, "U0OWNER", responses.url)
    answer = await client.post(ACTIONS, content=resolve, headers=signed(resolve))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "resolved"), answer.text
    assert await incident_state(client, tenant, incident["id"]) == "resolved"
    # Acknowledging a resolved incident is refused, in Slack's words (ephemeral), not with an error.
    late = click_body(INCIDENT_ACKNOWLEDGE, value, "U0OWNER", responses.url)
    answer = await client.post(ACTIONS, content=late, headers=signed(late))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "refused"), answer.text


class SlackApi:
    """Slack's Web API on the session's SLACK_API_URL: `chat.postMessage` answers `{"ok": true}`."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with api.lock:
                    api.posted.append(json.loads(body))
                answer = b'{"ok": true, "channel": "D0DM", "ts": "1733100000.000200"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", ONCALL_SLACK_PORT), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posted if p.get("channel") == channel]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    api = SlackApi()
    yield api
    api.stop()


async def test_the_acknowledge_button_of_a_page_dm_stops_the_escalation(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver], slack_api: SlackApi
) -> None:
    auth, service, member_id = tenant.auth, f"checkout-{uuid.uuid4().hex[:8]}", "U0ONCALL"
    method = await client.post(
        "/api/v1/contact-methods", json={"kind": "slack", "address": member_id}, headers=auth
    )
    assert method.status_code == 201, method.text
    policy = await client.post(
        "/api/v1/escalation-policies",
        json={
            "name": "checkout",
            "steps": [{"targets": [{"kind": "user", "id": tenant.user_id}], "wait_minutes": 60}],
        },
        headers=auth,
    )
    assert policy.status_code == 201, policy.text
    routing = await client.put(
        "/api/v1/routing",
        json={"rules": [{"policy_id": policy.json()["id"], "service_name": service}]},
        headers=auth,
    )
    assert routing.status_code == 200, routing.text
    incident = await open_incident(client, tenant, service_name=service)

    dms = await eventually(lambda: _async(slack_api.to(member_id)), seconds=40)
    assert dms, "the on-call person was sent a DM"
    [acknowledge] = [b for b in buttons(dms[0]).values() if b.get("action_id") == PAGE_ACKNOWLEDGE]
    assert "url" not in acknowledge
    responses = start(receivers)

    body = click_body(PAGE_ACKNOWLEDGE, acknowledge["value"], member_id, responses.url)
    forged = await client.post(ACTIONS, content=body, headers=signed(body, SECRET))
    assert forged.status_code == 401, forged.text
    # Someone else clicking (the DM forwarded, say) acknowledges nothing.
    other = click_body(PAGE_ACKNOWLEDGE, acknowledge["value"], "U0OTHER", responses.url)
    answer = await client.post(ACTIONS, content=other, headers=signed(other, ONCALL_SLACK_SIGNING_SECRET))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "refused"), answer.text
    assert await incident_state(client, tenant, incident["id"]) == "detected"

    headers = signed(body, ONCALL_SLACK_SIGNING_SECRET)
    answer = await client.post(ACTIONS, content=body, headers=headers)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "acknowledged"), answer.text
    replay = await client.post(ACTIONS, content=body, headers=headers)
    assert replay.status_code == 401, replay.text

    async def stopped() -> list[dict[str, Any]]:
        answer = await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=auth)
        items = list(answer.json()["items"])
        return items if any(i["kind"] == "escalation.stopped" for i in items) else []

    timeline = await eventually(stopped)
    assert next(i for i in timeline if i["kind"] == "escalation.stopped")["data"]["reason"] == "acknowledged"
    assert any(i["kind"] == "page.acknowledged" for i in timeline)
    [move] = [i for i in timeline if i["kind"] == "incident.state_changed"]
    assert (move["actor"], move["data"]["note"]) == (tenant.user_id, "acknowledged in Slack by @u0oncall")
    updates = await eventually(lambda: _async([b for b in responses.bodies() if b.get("replace_original")]))
    assert updates and f"<@{member_id}>" in updates[0]["text"], responses.bodies()


async def _async(value: Any) -> Any:
    return list(value)
