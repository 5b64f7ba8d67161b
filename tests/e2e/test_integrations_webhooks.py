"""Outbound webhooks against real HTTP receivers the tests start on 127.0.0.1: signed generic
webhooks verified with the README's own snippet, Slack Block Kit messages, Teams, Mattermost and
Discord messages checked against their services' documented formats, retries on 5xx, failure
after the last attempt and a retry by hand, and a hanging receiver that blocks nobody else."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import INCIDENT, WEBHOOK_ENCRYPTION_KEY, Tenant, register_tenant
from tests.e2e.test_integrations_alertmanager import eventually
from tests.unit.test_integrations_messages import SCHEMAS

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint: answers `statuses` in turn, then `status`; with `hang`, holds every
    request until released."""

    statuses: list[int] = field(default_factory=list)
    status: int = 200
    hang: bool = False
    requests: list[Request] = field(default_factory=list)
    held: int = 0
    peak: int = 0  # the most requests held at once
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(Request(dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    receiver.held += receiver.hang
                    receiver.peak = max(receiver.peak, receiver.held)
                if receiver.hang:
                    receiver.release.wait(timeout=60)
                    with receiver.lock:
                        receiver.held -= 1
                try:
                    self.send_response(status)
                    # A 204 (Discord's answer) has no body.
                    self.send_header("Content-Length", "0" if status == 204 else "2")
                    self.end_headers()
                    if status != 204:
                        self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self, event_type: str | None = None) -> list[Any]:
        with self.lock:
            found = [r for r in self.requests if r.body]
        return [r.json() for r in found if event_type is None or r.json().get("type") == event_type]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def start(receivers: list[Receiver], **options: Any) -> Receiver:
    receiver = Receiver(**options).start()
    receivers.append(receiver)
    return receiver


async def create_webhook(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/integrations/webhooks", json={"kind": "generic", "name": "ops", **body}, headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def open_incident(client: httpx.AsyncClient, tenant: Tenant, **changes: str) -> dict[str, Any]:
    response = await client.post("/api/v1/incidents", json={**INCIDENT, **changes}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliveries(client: httpx.AsyncClient, tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/integrations/webhooks/{webhook_id}/deliveries", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def delivery_in(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook_id: str,
    status: str,
    event_type: str = "incident.created",
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = [d for d in await deliveries(client, tenant, webhook_id) if d["event_type"] == event_type]
        return found[0] if found and found[0]["status"] == status else None

    delivery = await eventually(check)
    assert delivery is not None, await deliveries(client, tenant, webhook_id)
    return delivery


def documented_verify() -> Any:
    """The signature check exactly as the README shows it."""
    match = re.search(r"```python\n(# verify_webhook\.py\n.*?)```", README.read_text(), re.S)
    assert match, "the README shows how to verify a webhook signature"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # the documented snippet is what is under test
    return namespace["verify"]


async def test_generic_webhooks_are_signed_and_verify_as_documented(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver], engine: AsyncEngine
) -> None:
    receiver = start(receivers)
    hook = await create_webhook(
        client, tenant, url=receiver.url, event_types=["incident.created", "incident.state_changed"]
    )
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["event_types"] == [
        "incident.created",
        "incident.state_changed",
    ]

    # The secret is shown once, and kept encrypted.
    listed = await client.get("/api/v1/integrations/webhooks", headers=tenant.auth)
    assert secret not in listed.text and "secret" not in listed.json()["items"][0]
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT secret_encrypted FROM integrations.webhooks WHERE id = :id"), {"id": hook["id"]}
            )
        ).scalar_one()
    assert secret.encode() not in stored
    assert Fernet(WEBHOOK_ENCRYPTION_KEY.encode()).decrypt(stored).decode() == secret

    incident = await open_incident(client, tenant)
    [request] = await eventually(lambda: _async(receiver.requests))
    envelope = request.json()
    assert envelope["type"] == "incident.created" and envelope["tenant_id"] == tenant.tenant_id
    assert envelope["data"]["incident_id"] == incident["id"]
    assert request.headers["SRE-Copilot-Event"] == "incident.created"
    assert request.headers["Content-Type"] == "application/json"

    verify = documented_verify()
    signature = request.headers["SRE-Copilot-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(secret, request.body, signature) is True
    assert verify(secret, request.body + b" ", signature) is False  # tampered body
    assert verify("whsec_someone-else", request.body, signature) is False
    stale = int(signature.split(",")[0][2:]) - 3600
    assert verify(secret, request.body, signature.replace(signature.split(",")[0], f"t={stale}")) is False

    recorded = await delivery_in(client, tenant, hook["id"], "succeeded")
    assert request.headers["SRE-Copilot-Delivery"] == recorded["id"]
    assert recorded["attempts"] == 1 and recorded["last_status_code"] == 200

    await client.post(
        f"/api/v1/incidents/{incident['id']}/transitions", json={"to": "acknowledged"}, headers=tenant.auth
    )
    [moved] = await eventually(lambda: _async(receiver.bodies("incident.state_changed")))
    assert moved["data"]["to_state"] == "acknowledged"
    # Hypotheses were not asked for: only the two subscribed types were ever queued.
    assert {d["event_type"] for d in await deliveries(client, tenant, hook["id"])} == {
        "incident.created",
        "incident.state_changed",
    }


async def _async(value: Any) -> Any:
    return list(value)


async def test_slack_gets_a_block_kit_message_with_the_top_hypothesis(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    slack = start(receivers)
    hook = await create_webhook(client, tenant, kind="slack", name="#incidents", url=slack.url)
    assert hook["secret"] is None
    incident = await open_incident(client, tenant)

    def texts(message: dict[str, Any]) -> str:
        return json.dumps(message["blocks"])

    async def messages() -> list[dict[str, Any]]:
        return [m for m in slack.bodies() if "Top hypothesis" in texts(m) and "_pending_" not in texts(m)]

    [ready] = (await eventually(messages))[:1]
    [opened] = [m for m in slack.bodies() if "Incident opened" in texts(m)]
    assert opened["blocks"][0]["text"]["text"] == f"{incident['key']} · {INCIDENT['title']}"
    fields = texts(opened)
    assert "*Severity*" in fields and "high" in fields and "payment-api" in fields and "detected" in fields
    assert "Incident opened" in fields and "_pending_" in fields
    button = opened["blocks"][-1]["elements"][0]
    assert button["url"] == f"http://127.0.0.1:8000/incidents/{incident['id']}"
    assert opened["text"].startswith("[high]")

    hypotheses = (
        await client.get(f"/api/v1/incidents/{incident['id']}/hypotheses", headers=tenant.auth)
    ).json()
    assert hypotheses["items"][0]["claim"] in texts(ready)
    assert "Hypotheses ready" in texts(ready)
    # Slack is not sent a signature: its URL is its secret.
    assert all("SRE-Copilot-Signature" not in r.headers for r in slack.requests)


@pytest.mark.parametrize(("kind", "answer"), [("teams", 202), ("mattermost", 200), ("discord", 204)])
async def test_chat_targets_get_their_format_with_the_same_retries(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver], kind: str, answer: int
) -> None:
    """Each answers as the real service does on success (Teams' Workflows 202, Mattermost 200, Discord
    204); a 429 and a 503 first are retried like any webhook's."""
    chat = start(receivers, statuses=[429, 503], status=answer)
    hook = await create_webhook(
        client, tenant, kind=kind, name=kind, url=chat.url, event_types=["incident.created"]
    )
    assert hook["kind"] == kind and hook["secret"] is None
    incident = await open_incident(client, tenant)
    delivered = await delivery_in(client, tenant, hook["id"], "succeeded")
    assert delivered["attempts"] == 3 and delivered["last_status_code"] == answer
    bodies = chat.bodies()
    assert len(bodies) == 3 and all(body == bodies[0] for body in bodies)
    jsonschema.validate(bodies[0], SCHEMAS[kind])
    assert incident["key"] in json.dumps(bodies[0], ensure_ascii=False)
    assert INCIDENT["title"] in json.dumps(bodies[0], ensure_ascii=False)
    assert f"http://127.0.0.1:8000/incidents/{incident['id']}" in json.dumps(bodies[0])
    assert all(r.headers["Content-Type"] == "application/json" for r in chat.requests)
    assert all("SRE-Copilot-Signature" not in r.headers for r in chat.requests)


async def test_a_chat_delivery_refused_fails_and_is_retried_by_hand(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    discord = start(receivers, status=400)  # Discord's answer to a message it refuses
    hook = await create_webhook(client, tenant, kind="discord", name="ops", url=discord.url)
    await open_incident(client, tenant)
    failed = await delivery_in(client, tenant, hook["id"], "failed")
    assert failed["attempts"] == 1 and failed["last_error"].startswith("HTTP 400")
    discord.status = 204
    retry = await client.post(
        f"/api/v1/integrations/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", headers=tenant.auth
    )
    assert retry.status_code == 202, retry.text
    delivered = await delivery_in(client, tenant, hook["id"], "succeeded")
    assert delivered["id"] == failed["id"] and delivered["last_status_code"] == 204


async def test_a_5xx_is_retried_until_it_succeeds(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    flaky = start(receivers, statuses=[500, 503])
    hook = await create_webhook(client, tenant, url=flaky.url, event_types=["incident.created"])
    await open_incident(client, tenant)
    delivered = await delivery_in(client, tenant, hook["id"], "succeeded")
    assert delivered["attempts"] == 3 and delivered["last_status_code"] == 200
    assert len(flaky.requests) == 3
    # Each attempt is the same delivery of the same body, signed afresh.
    assert len({r.headers["SRE-Copilot-Delivery"] for r in flaky.requests}) == 1
    assert len({r.body for r in flaky.requests}) == 1
    verify = documented_verify()
    assert all(verify(hook["secret"], r.body, r.headers["SRE-Copilot-Signature"]) for r in flaky.requests)


async def test_after_the_last_attempt_a_delivery_fails_and_can_be_retried_by_hand(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    down = start(receivers, status=500)
    hook = await create_webhook(client, tenant, url=down.url, event_types=["incident.created"])
    await open_incident(client, tenant)
    failed = await delivery_in(client, tenant, hook["id"], "failed")
    assert failed["attempts"] == 3 and failed["last_status_code"] == 500  # WEBHOOK_MAX_ATTEMPTS
    assert failed["last_error"].startswith("HTTP 500") and failed["next_attempt_at"] is None
    assert len(down.requests) == 3
    only_failed = await client.get(
        f"/api/v1/integrations/webhooks/{hook['id']}/deliveries?status=failed", headers=tenant.auth
    )
    assert [d["id"] for d in only_failed.json()["items"]] == [failed["id"]]

    down.status = 200
    retry = await client.post(
        f"/api/v1/integrations/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", headers=tenant.auth
    )
    assert retry.status_code == 202, retry.text
    delivered = await delivery_in(client, tenant, hook["id"], "succeeded")
    assert delivered["id"] == failed["id"] and delivered["attempts"] == 1
    again = await client.post(
        f"/api/v1/integrations/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", headers=tenant.auth
    )
    assert again.status_code == 409


async def test_a_4xx_that_will_not_change_fails_at_once(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    gone = start(receivers, status=410)
    hook = await create_webhook(client, tenant, url=gone.url, event_types=["incident.created"])
    await open_incident(client, tenant)
    failed = await delivery_in(client, tenant, hook["id"], "failed")
    assert failed["attempts"] == 1 and failed["last_status_code"] == 410


async def test_a_hanging_endpoint_delays_no_other_tenant(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    other = await register_tenant(client, "Elsewhere")
    healthy = start(receivers)
    other_hook = await create_webhook(client, other, url=healthy.url, event_types=["incident.created"])
    hanging = start(receivers, hang=True)
    slow_hook = await create_webhook(client, tenant, url=hanging.url)
    # More events than the endpoint has slots, so its own queue backs up behind it.
    for n in range(3):
        await open_incident(client, tenant, title=f"Slow {n}")
    assert await eventually(lambda: _async([1] if hanging.held else []))

    incident = await open_incident(client, other)
    [envelope] = await eventually(lambda: _async(healthy.bodies("incident.created")))
    assert envelope["data"]["incident_id"] == incident["id"]
    await delivery_in(client, other, other_hook["id"], "succeeded")
    # All the while, the first tenant's requests were still waiting on the hanging endpoint: not one
    # of its attempts had ended (a sender that waited them out first would have recorded a timeout).
    assert hanging.held > 0
    stuck = await deliveries(client, tenant, slow_hook["id"])
    assert stuck and all(d["status"] == "pending" and d["last_error"] is None for d in stuck), stuck


async def test_disabled_and_unsubscribed_webhooks_get_nothing(
    client: httpx.AsyncClient, tenant: Tenant, receivers: list[Receiver]
) -> None:
    listening = start(receivers)
    off = start(receivers)
    hook = await create_webhook(client, tenant, url=listening.url, event_types=["incident.created"])
    disabled = await create_webhook(client, tenant, url=off.url, enabled=False)
    other_types = await create_webhook(client, tenant, url=off.url, event_types=["hypothesis.generated"])
    await client.patch(
        f"/api/v1/integrations/webhooks/{other_types['id']}",
        json={"event_types": ["incident.state_changed"]},
        headers=tenant.auth,
    )
    await open_incident(client, tenant)
    await delivery_in(client, tenant, hook["id"], "succeeded")
    # Deliveries for one event are queued for every matching webhook in one transaction.
    assert await deliveries(client, tenant, disabled["id"]) == []
    assert await deliveries(client, tenant, other_types["id"]) == []
    assert off.requests == []


async def test_managing_webhooks(client: httpx.AsyncClient, tenant: Tenant) -> None:
    url = "/api/v1/integrations/webhooks"
    for bad in ("ftp://example.com/x", "https://user:pw@example.com/x", "not a url"):
        response = await client.post(
            url, json={"kind": "generic", "name": "x", "url": bad}, headers=tenant.auth
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["details"][0]["loc"] == ["body", "url"]
    unknown_type = await client.post(
        url,
        json={"kind": "slack", "name": "x", "url": "https://example.com/x", "event_types": ["user.created"]},
        headers=tenant.auth,
    )
    assert unknown_type.status_code == 422

    hook = await create_webhook(client, tenant, url="https://example.com/hook", enabled=False)
    assert hook["event_types"] == ["hypothesis.generated", "incident.created", "incident.state_changed"]
    patched = await client.patch(
        f"{url}/{hook['id']}",
        json={"name": "renamed", "url": "https://example.org/other"},
        headers=tenant.auth,
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["url"], patched.json()["enabled"]) == (
        "renamed",
        "https://example.org/other",
        False,
    )
    assert (await client.get(f"{url}/{hook['id']}", headers=tenant.auth)).json()["name"] == "renamed"

    other = await register_tenant(client, "Other")
    assert (await client.get(f"{url}/{hook['id']}", headers=other.auth)).status_code == 404
    assert (await client.delete(f"{url}/{hook['id']}", headers=other.auth)).status_code == 404
    assert (await client.get(url, headers=other.auth)).json()["items"] == []

    assert (await client.delete(f"{url}/{hook['id']}", headers=tenant.auth)).status_code == 204
    assert (await client.get(f"{url}/{hook['id']}", headers=tenant.auth)).status_code == 404
    assert (await client.get(f"{url}/not-a-uuid", headers=tenant.auth)).status_code == 404


def test_the_documented_check_rejects_replays() -> None:
    """The README's snippet on its own: a signature older than five minutes is refused."""
    verify = documented_verify()
    from runtime.signing import signature_header

    now = int(time.time())
    assert verify("whsec_s", b"{}", signature_header("whsec_s", now, b"{}")) is True
    assert verify("whsec_s", b"{}", signature_header("whsec_s", now - 301, b"{}")) is False
