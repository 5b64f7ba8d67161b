"""`Idempotency-Key` on the POSTs that create or move something: a retry gets the first answer and
does nothing more; another body with the same key is a 422; a key in progress is a 409; keys are per
organisation and caller. Through the real gateway, counting what exists afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.http.idempotency import IdempotencyStore, fingerprint
from tests.conftest import INCIDENT, Tenant, register_tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import bearer, member
from tests.e2e.test_integrations_alertmanager import am_alert, notification

pytestmark = pytest.mark.e2e

REPLAYED = "idempotent-replayed"


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def create(
    client: httpx.AsyncClient, who: Any, key: str, body: dict[str, Any] = INCIDENT
) -> httpx.Response:
    return await client.post("/api/v1/incidents", json=body, headers=keyed(who.auth, key))


async def incident_ids(client: httpx.AsyncClient, who: Any) -> list[str]:
    page = await client.get("/api/v1/incidents?limit=200", headers=who.auth)
    assert page.status_code == 200, page.text
    return [i["id"] for i in page.json()["items"]]


async def test_a_retried_create_gets_the_first_answer_and_makes_one_incident(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = str(uuid.uuid4())
    first = await create(client, tenant, key)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers

    again = await create(client, tenant, key)
    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await incident_ids(client, tenant) == [first.json()["id"]]

    # The same key with another body is refused, and creates nothing either.
    other = await create(client, tenant, key, INCIDENT | {"title": "Something else"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "validation_error"
    assert "Idempotency-Key" in other.json()["error"]["message"]
    assert await incident_ids(client, tenant) == [first.json()["id"]]

    # The same JSON laid out differently is the same request; the quoted form is the same key.
    spaced = json.dumps(dict(reversed(INCIDENT.items())), indent=2)
    relaid = await client.post(
        "/api/v1/incidents",
        content=spaced,
        headers=keyed(tenant.auth, f'"{key}"') | {"Content-Type": "application/json"},
    )
    assert relaid.status_code == 201 and relaid.headers[REPLAYED] == "true"
    assert relaid.json() == first.json()

    # Without the header, nothing changes: each POST is a new incident.
    plain = await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
    assert plain.status_code == 201 and REPLAYED not in plain.headers
    assert len(await incident_ids(client, tenant)) == 2


async def test_a_create_whose_answer_was_lost_is_made_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """The client gives up before the answer arrives (a dropped connection, a timeout) and sends the
    request again with the same key, until it gets an answer."""
    key = str(uuid.uuid4())
    try:
        await client.post(
            "/api/v1/incidents",
            json=INCIDENT,
            headers=keyed(tenant.auth, key),
            timeout=httpx.Timeout(15, read=0.001),
        )
    except httpx.TimeoutException:
        pass  # the answer is lost; the request may or may not have been handled
    answer = None
    for _ in range(200):
        answer = await create(client, tenant, key)
        if answer.status_code != 409:  # 409: the first is still in progress
            break
        await asyncio.sleep(0.05)
    assert answer is not None and answer.status_code == 201, answer.text if answer else None
    # Sent twice more for good measure: still the one incident.
    assert (await create(client, tenant, key)).json()["id"] == answer.json()["id"]
    assert await incident_ids(client, tenant) == [answer.json()["id"]]


async def test_a_create_that_committed_after_its_504_is_not_made_twice_by_the_retry(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """incidents is held up (the tenant's incident counter locked) past the gateway's command timeout:
    the client gets a 504, then incidents commits anyway. The retry with the same key names the same
    incident (its id comes from the key's reservation), so it is not created a second time."""
    assert (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).status_code == 201
    key = str(uuid.uuid4())
    async with engine.connect() as conn:
        held = await conn.begin()
        await conn.execute(
            text("SELECT 1 FROM incidents.tenant_counters WHERE tenant_id = :t FOR UPDATE"),
            {"t": tenant.tenant_id},
        )
        timed_out = await create(client, tenant, key)
        await held.rollback()
    assert timed_out.status_code == 504, timed_out.text
    deadline = asyncio.get_running_loop().time() + 15
    while len(await incident_ids(client, tenant)) < 2:  # the late commit lands
        assert asyncio.get_running_loop().time() < deadline, "the held create never committed"
        await asyncio.sleep(0.2)
    retried = await create(client, tenant, key)
    assert retried.status_code == 201, retried.text
    ids = await incident_ids(client, tenant)
    assert len(ids) == 2 and retried.json()["id"] in ids


async def test_concurrent_duplicates_make_one_incident(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(create(client, tenant, key) for _ in range(6)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = [a.json() for a in answers if a.status_code == 201]
    assert created and all(c == created[0] for c in created)
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["error"]["code"] == "conflict"
    assert await incident_ids(client, tenant) == [created[0]["id"]]


async def test_a_key_in_progress_is_a_409_until_its_lock_lapses(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """A request holding the key (here one whose gateway died mid-way) makes a retry a 409; once its
    lock has lapsed, the retry of the same request is carried out."""
    key = str(uuid.uuid4())
    body = json.dumps(INCIDENT).encode()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO gateway.idempotency_keys (tenant_id, subject, key, fingerprint, lock_token, "
                "locked_until, created_at, expires_at) VALUES (:t, :s, :k, :f, :lock, :until, :now, :exp)"
            ),
            {
                "t": tenant.tenant_id,
                "s": tenant.user_id,
                "k": key,
                "f": fingerprint("POST", "/api/v1/incidents", "", body),
                "lock": uuid.uuid4(),
                "until": now + timedelta(minutes=5),
                "now": now,
                "exp": now + timedelta(days=1),
            },
        )
    busy = await client.post(
        "/api/v1/incidents",
        content=body,
        headers=keyed(tenant.auth, key) | {"Content-Type": "application/json"},
    )
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
    assert await incident_ids(client, tenant) == []
    # Another body with that key is still refused as a different request.
    assert (await create(client, tenant, key, INCIDENT | {"severity": "low"})).status_code == 422

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gateway.idempotency_keys SET locked_until = now() - interval '1 second' "
                "WHERE key = :k"
            ),
            {"k": key},
        )
    taken_over = await create(client, tenant, key)
    assert taken_over.status_code == 201 and REPLAYED not in taken_over.headers
    assert (await create(client, tenant, key)).headers[REPLAYED] == "true"
    assert await incident_ids(client, tenant) == [taken_over.json()["id"]]


async def test_keys_belong_to_an_organisation_and_a_caller(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = "shared-key-1"
    mine = await create(client, tenant, key)
    other = await register_tenant(client, "Other")
    theirs = await create(client, other, key)
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers and theirs.json()["id"] != mine.json()["id"]
    assert await incident_ids(client, other) == [theirs.json()["id"]]
    # A colleague using the same key is not answered with someone else's incident.
    colleague = await member(client, tenant, "responder")
    ours = await create(client, colleague, key)
    assert ours.status_code == 201 and REPLAYED not in ours.headers
    assert sorted(await incident_ids(client, tenant)) == sorted([mine.json()["id"], ours.json()["id"]])


async def test_moves_and_notes_are_done_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    base = f"/api/v1/incidents/{incident['id']}"
    move, note = str(uuid.uuid4()), str(uuid.uuid4())
    moved = [
        await client.post(
            f"{base}/transitions", json={"to": "acknowledged"}, headers=keyed(tenant.auth, move)
        )
        for _ in range(2)
    ]
    # Without the key the second move would be a 409 (acknowledged -> acknowledged); with it, the
    # first answer again.
    assert [m.status_code for m in moved] == [200, 200]
    assert moved[1].headers[REPLAYED] == "true" and moved[1].json() == moved[0].json()
    noted = [
        await client.post(f"{base}/notes", json={"body": "rolled back"}, headers=keyed(tenant.auth, note))
        for _ in range(3)
    ]
    assert [n.status_code for n in noted] == [201, 201, 201]
    assert all(n.json() == noted[0].json() for n in noted)

    timeline = (await client.get(f"{base}/timeline", headers=tenant.auth)).json()["items"]
    kinds = [entry["kind"] for entry in timeline]
    assert kinds.count("incident.state_changed") == 1, kinds
    assert kinds.count("incident.note_added") == 1, kinds

    # A refusal is a final answer too, replayed as it was.
    wrong = str(uuid.uuid4())
    refused = [
        await client.post(f"{base}/transitions", json={"to": "detected"}, headers=keyed(tenant.auth, wrong))
        for _ in range(2)
    ]
    assert [r.status_code for r in refused] == [409, 409]
    assert refused[1].headers[REPLAYED] == "true" and refused[1].json() == refused[0].json()


async def test_a_move_and_a_note_that_committed_after_their_504_are_not_made_again_by_the_retry(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    """As for a create: incidents is held up (the incident's row locked) past the command timeout, the
    client gets 504s, then both commit. The retries name the same move and note (ids derived from
    the keys), so the move is not refused as a repeat (acknowledged -> acknowledged) and the note is
    not added twice."""
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    base = f"/api/v1/incidents/{incident['id']}"
    move, note = keyed(tenant.auth, str(uuid.uuid4())), keyed(tenant.auth, str(uuid.uuid4()))
    async with engine.connect() as conn:
        held = await conn.begin()
        await conn.execute(
            text("SELECT 1 FROM incidents.incidents WHERE id = :id FOR UPDATE"), {"id": incident["id"]}
        )
        timed_out = await asyncio.gather(
            client.post(f"{base}/transitions", json={"to": "acknowledged"}, headers=move),
            client.post(f"{base}/notes", json={"body": "rolled back"}, headers=note),
        )
        await held.rollback()
    assert [r.status_code for r in timed_out] == [504, 504], [r.text for r in timed_out]

    async def kinds() -> list[str]:
        timeline = (await client.get(f"{base}/timeline", headers=tenant.auth)).json()["items"]
        return [entry["kind"] for entry in timeline]

    deadline = asyncio.get_running_loop().time() + 15
    while not {"incident.state_changed", "incident.note_added"} <= set(await kinds()):  # the late commits
        assert asyncio.get_running_loop().time() < deadline, "the held commands never committed"
        await asyncio.sleep(0.2)
    retried_move = await client.post(f"{base}/transitions", json={"to": "acknowledged"}, headers=move)
    retried_note = await client.post(f"{base}/notes", json={"body": "rolled back"}, headers=note)
    assert retried_move.status_code == 200 and retried_move.json()["state"] == "acknowledged", (
        retried_move.text
    )
    assert retried_note.status_code == 201, retried_note.text
    found = await kinds()
    assert found.count("incident.state_changed") == 1 and found.count("incident.note_added") == 1, found


@pytest.mark.parametrize("key", ["", "k" * 256, '""', '" "', "ключ"])
async def test_bad_keys_are_refused(client: httpx.AsyncClient, tenant: Tenant, key: str) -> None:
    response = await client.post(
        "/api/v1/incidents",
        json=INCIDENT,
        # Raw bytes: the non-ASCII key goes out as its UTF-8 bytes, as a careless client would send it.
        headers=[(k.encode(), v.encode()) for k, v in tenant.auth.items()]
        + [(b"Idempotency-Key", key.encode())],
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert await incident_ids(client, tenant) == []


async def test_alert_notifications_are_taken_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await create_key(client, tenant, ["alerts:write"]))["key"]
    body = notification(am_alert("a1"))
    retry = str(uuid.uuid4())
    answers = [
        await client.post("/api/v1/integrations/alertmanager", json=body, headers=keyed(bearer(key), retry))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert all(a.json() == answers[0].json() for a in answers)
    assert [REPLAYED in a.headers for a in answers] == [False, True, True]
    inbound = (await client.get("/api/v1/integrations/inbound?limit=200", headers=tenant.auth)).json()[
        "items"
    ]
    assert [d["id"] for d in inbound] == [answers[0].json()["delivery_id"]]

    changed = notification(am_alert("a1"), am_alert("a2", instance="checkout-1"))
    refused = await client.post(
        "/api/v1/integrations/alertmanager", json=changed, headers=keyed(bearer(key), retry)
    )
    assert refused.status_code == 422

    # Another key of the same organisation is another caller: its own request.
    second_key = (await create_key(client, tenant, ["alerts:write"], name="grafana"))["key"]
    own = await client.post(
        "/api/v1/integrations/alertmanager", json=body, headers=keyed(bearer(second_key), retry)
    )
    assert own.status_code == 202 and REPLAYED not in own.headers
    assert own.json()["delivery_id"] != answers[0].json()["delivery_id"]


async def test_deploys_are_taken_once_with_the_first_status(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = (await create_key(client, tenant, ["deploys:write"], name="ci"))["key"]
    deploy = {"service_name": "checkout", "version": "v9.9.9", "environment": "production"}
    retry = str(uuid.uuid4())
    first = await client.post("/api/v1/integrations/deploys", json=deploy, headers=keyed(bearer(key), retry))
    again = await client.post("/api/v1/integrations/deploys", json=deploy, headers=keyed(bearer(key), retry))
    # Without the key a repeat is a 200 ("reported before"); with it, the very first answer.
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers[REPLAYED] == "true" and again.json() == first.json()
    other = await client.post(
        "/api/v1/integrations/deploys", json=deploy | {"version": "v10"}, headers=keyed(bearer(key), retry)
    )
    assert other.status_code == 422


async def test_expired_keys_are_forgotten_and_pruned(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    key = str(uuid.uuid4())
    first = await create(client, tenant, key)
    assert first.status_code == 201
    # A day later (aged rather than waited for): the key is as good as new, even before pruning.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gateway.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = :k"
            ),
            {"k": key},
        )
    second = await create(client, tenant, key)
    assert second.status_code == 201 and REPLAYED not in second.headers
    assert second.json()["id"] != first.json()["id"]

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gateway.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = :k"
            ),
            {"k": key},
        )
    assert await IdempotencyStore(engine, ttl_seconds=86_400, lock_seconds=60).prune() >= 1
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM gateway.idempotency_keys WHERE key = :k"), {"k": key}
            )
        ).scalar_one()
    assert left == 0
