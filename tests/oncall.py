"""Paging through the whole chain, shared by the end-to-end test and the kill -9 fault test: an
Alertmanager alert opens an incident on a routed service, the schedule's on-call person is paged by
webhook, nobody acknowledges, the next step emails the second person, who acknowledges by the
signed link, and the escalation stops."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from runtime.signing import SIGNATURE_HEADER, signature
from tests.conftest import Mailbox, Tenant

ACK_LINK = re.compile(r"https?://\S+/api/v1/pages/(?P<page>[0-9a-f-]{36})/ack\?token=(?P<token>\S+)")
# A step's wait in the test's policy: short, so that the chain runs in seconds.
STEP_WAIT_MINUTES = 0.05


async def until(check: Callable[[], Awaitable[Any]], seconds: float = 40.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


def verify(secret: str, body: bytes, header: str) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    return fields["v1"] == signature(secret, int(fields["t"]), body)


@dataclass
class Chain:
    incident_id: str
    first_pages: list[Any]
    second_mail: list[Any]
    ack: httpx.Response
    again: httpx.Response
    incident: dict[str, Any]
    timeline: list[dict[str, Any]]


async def page_through(
    client: httpx.AsyncClient,
    owner: Tenant,
    second: Any,
    receiver: Any,
    mailbox: Mailbox,
    between_steps: Callable[[], Awaitable[None]] | None = None,
) -> Chain:
    """`owner` is on call (the schedule's one participant) and paged by webhook; `second` (a
    responder, with `user_id`, `email` and `auth`) is the next step, paged by email."""
    auth, service = owner.auth, f"checkout-{uuid.uuid4().hex[:8]}"
    hook = await client.post(
        "/api/v1/contact-methods", json={"kind": "webhook", "address": receiver.url}, headers=auth
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    mail = await client.post(
        "/api/v1/contact-methods", json={"kind": "email", "address": second.email}, headers=second.auth
    )
    assert mail.status_code == 201, mail.text
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    layer = {
        "participants": [owner.user_id],
        "rotation": "daily",
        "start_date": yesterday,
        "handoff_time": "00:00",
        "time_zone": "UTC",
    }
    schedule = await client.post(
        "/api/v1/schedules", json={"name": "primary", "layers": [layer]}, headers=auth
    )
    assert schedule.status_code == 201, schedule.text
    policy = await client.post(
        "/api/v1/escalation-policies",
        json={
            "name": "checkout",
            "steps": [
                {
                    "targets": [{"kind": "schedule", "id": schedule.json()["id"]}],
                    "wait_minutes": STEP_WAIT_MINUTES,
                },
                {"targets": [{"kind": "user", "id": second.user_id}], "wait_minutes": 60},
            ],
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
    on_call = await client.get(f"/api/v1/services/{service}/on-call", headers=auth)
    assert on_call.json()["user_ids"] == [owner.user_id], on_call.text

    key = await client.post(
        "/api/v1/integration-keys", json={"name": "alertmanager", "scopes": ["alerts:write"]}, headers=auth
    )
    assert key.status_code == 201, key.text
    starts = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    labels = {"alertname": "HighErrorRate", "service": service, "severity": "critical"}
    sent = await client.post(
        "/api/v1/integrations/alertmanager",
        json={
            "status": "firing",
            "groupKey": f'{{}}:{{alertname="HighErrorRate",service="{service}"}}',
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"{service} 5xx ratio above 5%"},
                    "startsAt": starts,
                    "fingerprint": uuid.uuid4().hex[:16],
                }
            ],
        },
        headers={"Authorization": f"Bearer {key.json()['key']}"},
    )
    assert sent.status_code == 202, sent.text

    first = await until(lambda: _async(receiver.requests))
    assert first, "the on-call person was paged by webhook"
    request = first[0]
    assert verify(secret, request.body, request.headers[SIGNATURE_HEADER])
    incident_id = request.json()["incident"]["id"]
    assert request.json()["user_id"] == owner.user_id
    if between_steps is not None:
        await between_steps()

    mails = await until(lambda: _async(mailbox.to(second.email)))
    assert mails, "nobody acknowledged: the next step emailed the second person"
    link = ACK_LINK.search(mails[0].get_content())
    assert link, mails[0].get_content()
    ack = await client.get(f"/api/v1/pages/{link['page']}/ack", params={"token": link["token"]})
    again = await client.post(f"/api/v1/pages/{link['page']}/ack", params={"token": link["token"]})

    async def stopped() -> list[dict[str, Any]]:
        answer = await client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=auth)
        items = list(answer.json()["items"])
        return items if any(i["kind"] == "escalation.stopped" for i in items) else []

    timeline = await until(stopped)
    incident = (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth)).json()
    return Chain(
        incident_id, list(receiver.requests), mailbox.to(second.email), ack, again, incident, timeline
    )


async def _async(value: Any) -> Any:
    return list(value)
