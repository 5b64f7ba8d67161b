"""Schedules through the API: create, read, who is on call at a time, the next shifts, overrides
(the later wins), rights, and the 422s for what cannot be computed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_auth_users import member

pytestmark = pytest.mark.e2e


def weekly_layer(*participants: str, **extra: Any) -> dict[str, Any]:
    return {
        "participants": list(participants),
        "rotation": "weekly",
        "start_date": "2026-11-30",
        "handoff_time": "09:00",
        "time_zone": "Europe/Berlin",
        **extra,
    }


async def create(client: httpx.AsyncClient, tenant: Tenant, layers: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(
        "/api/v1/schedules", json={"name": "Payments primary", "layers": layers}, headers=tenant.auth
    )


async def test_a_schedule_answers_who_is_on_call_and_the_next_shifts(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(client, tenant, [weekly_layer("ann", "bob")])
    assert created.status_code == 201, created.text
    schedule = created.json()
    sid = schedule["id"]
    assert schedule["layers"][0]["participants"] == ["ann", "bob"] and schedule["overrides"] == []

    async def who(at: str) -> Any:
        answer = await client.get(f"/api/v1/schedules/{sid}/on-call", params={"at": at}, headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["user_id"]

    assert await who("2026-11-30T07:59:00Z") is None  # 08:59 in Berlin: before the first handoff
    assert await who("2026-11-30T08:00:00Z") == "ann"
    assert await who("2026-12-07T08:00:00Z") == "bob"

    shifts = await client.get(
        f"/api/v1/schedules/{sid}/shifts",
        params={"after": "2026-12-01T00:00:00Z", "count": 3},
        headers=tenant.auth,
    )
    assert shifts.status_code == 200, shifts.text
    assert [(s["user_id"], s["start"]) for s in shifts.json()["items"]] == [
        ("ann", "2026-12-01T00:00:00Z"),
        ("bob", "2026-12-07T08:00:00Z"),
        ("ann", "2026-12-14T08:00:00Z"),
    ]

    # Two overlapping overrides: the later one wins where they overlap.
    for user, start, end in (
        ("ovi", "2026-12-02T10:00:00Z", "2026-12-02T14:00:00Z"),
        ("lee", "2026-12-02T12:00:00Z", "2026-12-02T13:00:00Z"),
    ):
        made = await client.post(
            f"/api/v1/schedules/{sid}/overrides",
            json={"user_id": user, "start": start, "end": end},
            headers=tenant.auth,
        )
        assert made.status_code == 201, made.text
    assert await who("2026-12-02T11:00:00Z") == "ovi"
    assert await who("2026-12-02T12:30:00Z") == "lee"
    assert await who("2026-12-02T13:30:00Z") == "ovi"
    listed = await client.get("/api/v1/schedules", headers=tenant.auth)
    assert [s["id"] for s in listed.json()["items"]] == [sid]
    assert [o["user_id"] for o in listed.json()["items"][0]["overrides"]] == ["ovi", "lee"]

    renamed = await client.patch(f"/api/v1/schedules/{sid}", json={"name": "Payments"}, headers=tenant.auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Payments"
    gone = await client.delete(f"/api/v1/schedules/{sid}", headers=tenant.auth)
    assert gone.status_code == 204
    assert (await client.get(f"/api/v1/schedules/{sid}", headers=tenant.auth)).status_code == 404


@pytest.mark.parametrize(
    ("layers", "field"),
    [
        ([weekly_layer("ann", time_zone="Mars/Olympus")], "time_zone"),
        ([weekly_layer()], "participants"),
        ([], "layers"),
        ([weekly_layer("ann", rotation="hours", length=0)], "length"),
        ([weekly_layer("ann", restrictions=[{"days": ["mon"], "start": "25:00", "end": "17:00"}])], "start"),
    ],
)
async def test_what_cannot_be_computed_is_a_422_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, layers: list[dict[str, Any]], field: str
) -> None:
    answer = await create(client, tenant, layers)
    assert answer.status_code == 422, answer.text
    assert any(field in [str(p) for p in d["loc"]] for d in answer.json()["error"]["details"]), answer.text


async def test_admins_manage_schedules_and_responders_only_their_own_overrides(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    responder = await member(client, tenant, "responder")
    refused = await create(client, responder, [weekly_layer("ann")])  # type: ignore[arg-type]
    assert refused.status_code == 403
    sid = (await create(client, tenant, [weekly_layer("ann")])).json()["id"]

    def override(user: str) -> dict[str, str]:
        return {"user_id": user, "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T14:00:00Z"}

    url = f"/api/v1/schedules/{sid}/overrides"
    other = await client.post(url, json=override("someone-else"), headers=responder.auth)
    assert other.status_code == 403
    mine = await client.post(url, json=override(responder.user_id), headers=responder.auth)
    assert mine.status_code == 201, mine.text
    override_id = mine.json()["id"]
    assert mine.json()["schedule_id"] == sid
    on_call = await client.get(
        f"/api/v1/schedules/{sid}/on-call", params={"at": "2026-12-02T11:00:00Z"}, headers=responder.auth
    )
    assert on_call.json()["user_id"] == responder.user_id and on_call.json()["override_id"] == override_id
    assert (await client.delete(f"{url}/{override_id}", headers=responder.auth)).status_code == 204
    # Another organisation sees nothing of it.
    from tests.conftest import register_tenant

    stranger = await register_tenant(client, "Elsewhere")
    assert (await client.get(f"/api/v1/schedules/{sid}", headers=stranger.auth)).status_code == 404


async def test_calendar_feeds_behind_a_secret_that_can_be_regenerated(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    from icalendar import Calendar

    layer = weekly_layer(tenant.user_id, "bob", start_date="2026-11-30")
    sid = (await create(client, tenant, [layer])).json()["id"]
    issued = await client.post("/api/v1/calendar-feed", headers=tenant.auth)
    assert issued.status_code == 201, issued.text
    mine = await client.get(issued.json()["my_shifts_path"])  # no bearer token: the secret is enough
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/calendar"), mine.text
    events = Calendar.from_ical(mine.text).walk("VEVENT")
    assert events and all("Payments primary" in str(e["summary"]) for e in events)
    whole = await client.get(issued.json()["schedule_path_template"].replace("{schedule_id}", sid))
    people = {str(e["summary"]) for e in Calendar.from_ical(whole.text).walk("VEVENT")}
    assert any("bob" in p for p in people) and any(tenant.user_id in p for p in people)
    again = await client.post("/api/v1/calendar-feed", headers=tenant.auth)
    assert (await client.get(issued.json()["my_shifts_path"])).status_code == 404  # the old secret is gone
    assert (await client.get(again.json()["my_shifts_path"])).status_code == 200


async def test_a_deactivated_person_cannot_be_put_on_call_or_paged(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    import asyncio

    gone = await member(client, tenant, "responder")
    deactivated = await client.post(f"/api/v1/users/{gone.user_id}/deactivate", headers=tenant.auth)
    assert deactivated.status_code == 200, deactivated.text
    policy = {"name": "p", "steps": [{"targets": [{"kind": "user", "id": gone.user_id}]}]}
    for _ in range(100):  # until oncall has seen the deactivation (its view follows auth's events)
        refused = await client.post("/api/v1/escalation-policies", json=policy, headers=tenant.auth)
        if refused.status_code != 201:
            break
        await asyncio.sleep(0.1)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"][0]["loc"] == ["body", "steps", 0, "targets", 0, "id"]
    schedule = await create(client, tenant, [weekly_layer("ann", gone.user_id)])
    assert schedule.status_code == 409, schedule.text
