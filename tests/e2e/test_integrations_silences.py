"""Maintenance windows and silences end to end: while one is on, matching alerts (from Alertmanager
or PagerDuty Events v2) are recorded and visible but open no incident; others are untouched; once it
is gone the same alert opens its incident; windows are listed as active, upcoming or expired; what
the schema cannot check is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_integrations_alertmanager import (
    alerts_key,
    am_alert,
    incidents_of,
    notification,
    processed,
    send,
)

pytestmark = pytest.mark.e2e

SILENCES = "/api/v1/integrations/silences"


async def create_silence(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await client.post(SILENCES, json={"name": "db upgrade", **body}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def billing_alert() -> dict[str, Any]:
    alert = am_alert("fp-billing")
    alert["labels"] = {**alert["labels"], "service": "billing", "alertname": "BillingDown"}
    return notification(alert, group_key='{}:{alertname="BillingDown"}')


async def test_a_silenced_alert_is_recorded_but_opens_nothing_until_the_window_is_gone(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    silence = await create_silence(
        client,
        tenant,
        services=["checkout"],
        starts_at=(now - timedelta(minutes=5)).isoformat(),
        duration_minutes=60,
    )
    assert silence["state"] == "active" and silence["next_change_at"] is not None
    key = await alerts_key(client, tenant)

    silenced = await processed(client, tenant, await send(client, key, notification(am_alert("fp-a"))))
    assert silenced["outcome"]["silenced"] == 1 and silenced["outcome"]["silences"] == [silence["id"]]
    assert silenced["outcome"]["opened_incident_id"] is None
    assert await incidents_of(client, tenant) == []
    # Alertmanager repeating it during the window: still nothing.
    again = await processed(client, tenant, await send(client, key, notification(am_alert("fp-a"))))
    assert again["outcome"]["silenced"] == 1 and await incidents_of(client, tenant) == []

    # Another service is not silenced.
    billing = await processed(client, tenant, await send(client, key, billing_alert()))
    [incident] = await incidents_of(client, tenant)
    assert (
        billing["outcome"]["opened_incident_id"] == incident["id"] and incident["service_name"] == "billing"
    )

    # The window is ended early: the same alert, sent again, now opens its incident.
    assert (await client.delete(f"{SILENCES}/{silence['id']}", headers=tenant.auth)).status_code == 204
    after = await processed(client, tenant, await send(client, key, notification(am_alert("fp-a"))))
    assert after["outcome"]["silenced"] == 0 and after["outcome"]["opened_incident_id"]
    assert {i["service_name"] for i in await incidents_of(client, tenant)} == {"billing", "checkout"}


async def test_matchers_silence_pagerduty_events_too(client: httpx.AsyncClient, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    await create_silence(
        client,
        tenant,
        matchers=[
            {"label": "source", "op": "=~", "value": "db-[0-9]+"},
            {"label": "severity", "value": "warning"},
        ],
        starts_at=(now - timedelta(minutes=1)).isoformat(),
        duration_minutes=30,
    )
    key = await alerts_key(client, tenant)

    async def trigger(source: str, severity: str) -> dict[str, Any]:
        body = {
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": f"{source}/{severity}",
            "payload": {"summary": f"{source} slow", "source": source, "severity": severity},
        }
        response = await client.post("/api/v1/integrations/pagerduty/v2/enqueue", json=body)
        assert response.status_code == 202, response.text
        page = (await client.get("/api/v1/integrations/inbound?limit=1", headers=tenant.auth)).json()
        return await processed(client, tenant, page["items"][0]["id"])

    assert (await trigger("db-3", "warning"))["outcome"]["silenced"] == 1
    assert await incidents_of(client, tenant) == []
    assert (await trigger("db-3", "critical"))["outcome"]["silenced"] == 0  # every matcher must hold
    assert (await trigger("web-1", "warning"))["outcome"]["silenced"] == 0
    assert len(await incidents_of(client, tenant)) == 2


async def test_windows_are_listed_as_active_upcoming_or_expired(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    active = await create_silence(
        client, tenant, services=["a"], starts_at=(now - timedelta(hours=1)).isoformat(), duration_minutes=120
    )
    upcoming = await create_silence(
        client, tenant, services=["b"], starts_at=(now + timedelta(days=1)).isoformat(), duration_minutes=60
    )
    expired = await create_silence(
        client, tenant, services=["c"], starts_at=(now - timedelta(days=1)).isoformat(), duration_minutes=60
    )
    weekly = await create_silence(
        client,
        tenant,
        services=["d"],
        starts_at=(now - timedelta(days=30)).isoformat(),
        duration_minutes=60,
        recurrence={
            "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "timezone": "Europe/Paris",
        },
    )
    assert weekly["recurrence"]["until"] is None and weekly["state"] in ("active", "upcoming")
    listed = (await client.get(SILENCES, headers=tenant.auth)).json()["items"]
    assert [s["id"] for s in listed] == [weekly["id"], expired["id"], upcoming["id"], active["id"]]
    states = {s["id"]: s["state"] for s in listed}
    assert (states[active["id"]], states[upcoming["id"]], states[expired["id"]]) == (
        "active",
        "upcoming",
        "expired",
    )
    only = (await client.get(f"{SILENCES}?state=upcoming", headers=tenant.auth)).json()["items"]
    assert upcoming["id"] in [s["id"] for s in only] and active["id"] not in [s["id"] for s in only]
    assert (await client.get(f"{SILENCES}/{upcoming['id']}", headers=tenant.auth)).json() == upcoming


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            {"services": ["a"], "recurrence": {"weekdays": ["mon"], "timezone": "Mars/Olympus"}},
            ["body", "recurrence", "timezone"],
        ),
        (
            {"matchers": [{"label": "a", "op": "=~", "value": "(unclosed"}]},
            ["body", "matchers", "0", "value"],
        ),
    ],
)
async def test_what_the_schema_cannot_check_is_a_422_naming_it(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], where: list[str]
) -> None:
    response = await client.post(
        SILENCES,
        json={"name": "x", "starts_at": datetime.now(UTC).isoformat(), "duration_minutes": 10, **body},
        headers=tenant.auth,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == where
    assert (await client.get(SILENCES, headers=tenant.auth)).json()["items"] == []
    nothing = await client.post(
        SILENCES,
        json={"name": "x", "starts_at": datetime.now(UTC).isoformat(), "duration_minutes": 10},
        headers=tenant.auth,
    )
    assert nothing.status_code == 422
