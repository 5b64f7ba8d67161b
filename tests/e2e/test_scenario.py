"""The walking skeleton's scenario, black-box through the gateway's HTTP API."""

from __future__ import annotations

import asyncio
import time
import uuid
from unittest.mock import ANY

import httpx
import pytest

from tests.conftest import INCIDENT, Tenant, register_tenant

pytestmark = pytest.mark.e2e


async def wait_hypotheses(client: httpx.AsyncClient, tenant: Tenant, incident_id: str, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(f"/api/v1/incidents/{incident_id}/hypotheses", headers=tenant.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] == "ready" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_register_returns_a_logged_in_owner(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = tenant.body
    assert body["token_type"] == "bearer"
    assert body["user"]["role"] == "owner"
    assert body["user"]["email"] == tenant.email
    assert body["tenant"]["id"].startswith("t_") and "." not in body["tenant"]["id"]
    assert "password_hash" not in body["user"]


async def test_login_and_wrong_password(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ok = await client.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer" and ok.json()["expires_in"] > 0
    listed = await client.get(
        "/api/v1/incidents", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}
    )
    assert listed.status_code == 200

    wrong = await client.post(
        "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password + "x"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}
    )
    assert unknown.status_code == 401
    assert unknown.json() == wrong.json()  # no hint whether the account exists


async def test_duplicate_email_is_a_conflict(client: httpx.AsyncClient, tenant: Tenant) -> None:
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": tenant.email, "password": "another-pass-1", "full_name": "X", "tenant_name": "Other"},
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_create_read_your_writes_list_and_hypotheses(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["state"] == "detected"
    assert incident["key"] == "INC-1"  # numbered per tenant
    assert incident["title"] == INCIDENT["title"] and incident["severity"] == "high"
    assert incident["created_at"] and incident["updated_at"]

    got = await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)
    assert got.status_code == 200
    assert got.json()["id"] == incident["id"] and got.json()["key"] == "INC-1"

    second = (
        await client.post("/api/v1/incidents", json=INCIDENT | {"title": "Second"}, headers=tenant.auth)
    ).json()
    assert second["key"] == "INC-2"
    listed = await client.get("/api/v1/incidents", headers=tenant.auth)
    assert listed.status_code == 200
    body = listed.json()
    assert [i["id"] for i in body["items"]] == [second["id"], incident["id"]]  # newest first
    assert body["next_cursor"] is None

    hypotheses = await wait_hypotheses(client, tenant, incident["id"])
    assert hypotheses["status"] == "ready"
    items = hypotheses["items"]
    assert [h["rank"] for h in items] == [1, 2, 3]
    confidences = [h["confidence"] for h in items]
    assert all(0 <= c <= 1 for c in confidences) and confidences == sorted(confidences, reverse=True)
    for h in items:
        assert h["claim"] and h["description"] and h["engine"] == "rules"
        assert h["evidence"] and all(isinstance(e, str) and e for e in h["evidence"])
    claims = " ".join(h["claim"].lower() for h in items[:2])
    assert "cpu" in claims and "change" in claims
    assert any("CPU spiked to 90%" in e for h in items for e in h["evidence"])


async def test_hypotheses_cite_similar_past_incident(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    await wait_hypotheses(client, tenant, first["id"])
    second = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    items = (await wait_hypotheses(client, tenant, second["id"]))["items"]
    assert any(first["key"] in e for h in items for e in h["evidence"])


async def test_pagination_with_cursor(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = []
    for n in range(5):
        response = await client.post(
            "/api/v1/incidents", json=INCIDENT | {"title": f"n{n}"}, headers=tenant.auth
        )
        ids.append(response.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/incidents", params=params, headers=tenant.auth)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    bad = await client.get("/api/v1/incidents", params={"cursor": "!!nonsense"}, headers=tenant.auth)
    # The cursor's shape is in the document (a pattern), so a string not of it is a 422 like any other.
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["query", "cursor"]
    too_many = await client.get("/api/v1/incidents", params={"limit": 201}, headers=tenant.auth)
    assert too_many.status_code == 422


async def test_tenant_isolation(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    other = await register_tenant(client, "Company B")
    for path in ("", "/hypotheses", "/timeline"):
        response = await client.get(f"/api/v1/incidents/{incident['id']}{path}", headers=other.auth)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    moved = await client.post(
        f"/api/v1/incidents/{incident['id']}/transitions", json={"to": "resolved"}, headers=other.auth
    )
    assert moved.status_code == 404
    listed = (await client.get("/api/v1/incidents", headers=other.auth)).json()
    assert listed["items"] == []
    mine = await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)
    assert mine.json()["state"] == "detected"  # the other tenant's move changed nothing
    # The tenant comes from the token only: a body naming another tenant is refused outright.
    smuggled = await client.post(
        "/api/v1/incidents", json=INCIDENT | {"tenant_id": tenant.tenant_id}, headers=other.auth
    )
    assert smuggled.status_code == 422


async def test_transitions_and_timeline(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    url = f"/api/v1/incidents/{incident['id']}"
    for to in ("acknowledged", "investigating", "resolved"):
        moved = await client.post(
            f"{url}/transitions", json={"to": to, "note": f"now {to}"}, headers=tenant.auth
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == to
    got = (await client.get(url, headers=tenant.auth)).json()
    assert got["state"] == "resolved" and got["acknowledged_at"] and got["resolved_at"]

    backward = await client.post(f"{url}/transitions", json={"to": "acknowledged"}, headers=tenant.auth)
    assert backward.status_code == 409
    assert backward.json()["error"]["details"]["allowed"] == ["investigating"]
    same = await client.post(f"{url}/transitions", json={"to": "resolved"}, headers=tenant.auth)
    assert same.status_code == 409

    reopened = await client.post(f"{url}/transitions", json={"to": "investigating"}, headers=tenant.auth)
    assert reopened.status_code == 200 and reopened.json()["resolved_at"] is None

    await wait_hypotheses(client, tenant, incident["id"])
    timeline = (await client.get(f"{url}/timeline", headers=tenant.auth)).json()["items"]
    kinds = [e["kind"] for e in timeline]
    assert kinds[0] == "incident.created"
    assert kinds.count("incident.state_changed") == 4
    assert "hypothesis.generated" in kinds
    changes = [e for e in timeline if e["kind"] == "incident.state_changed"]
    assert [(c["data"]["from_state"], c["data"]["to_state"]) for c in changes] == [
        ("detected", "acknowledged"),
        ("acknowledged", "investigating"),
        ("investigating", "resolved"),
        ("resolved", "investigating"),
    ]
    assert all(c["actor"] == tenant.user_id and c["at"] for c in changes)
    assert changes[0]["data"]["note"] == "now acknowledged"
    assert [e["seq"] for e in timeline] == sorted(e["seq"] for e in timeline)


async def test_concurrent_conflicting_moves_apply_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    url = f"/api/v1/incidents/{incident['id']}/transitions"
    results = await asyncio.gather(
        *(client.post(url, json={"to": "resolved"}, headers=tenant.auth) for _ in range(5))
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]


@pytest.mark.parametrize(
    "body",
    [
        INCIDENT | {"severity": "apocalyptic"},
        INCIDENT | {"title": "x" * 100_000},
        INCIDENT | {"title": ""},
        INCIDENT | {"service_name": "has spaces"},
        {k: v for k, v in INCIDENT.items() if k != "title"},
        INCIDENT | {"severity": 3},
    ],
    ids=["unknown-severity", "oversize-title", "empty-title", "bad-service", "missing-title", "wrong-type"],
)
async def test_bad_incident_input_is_422_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, body: dict
) -> None:
    response = await client.post("/api/v1/incidents", json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"]
    assert (await client.get("/api/v1/incidents", headers=tenant.auth)).json()["items"] == []


async def test_malformed_and_oversize_bodies(client: httpx.AsyncClient, tenant: Tenant) -> None:
    malformed = await client.post(
        "/api/v1/incidents", content=b"{not json", headers=tenant.auth | {"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422 and "error" in malformed.json()
    huge = await client.post(
        "/api/v1/incidents",
        content=b"x" * 2_000_000,
        headers=tenant.auth | {"Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    bad_register = await client.post(
        "/api/v1/auth/register",
        json={"email": "not-an-email", "password": "short", "full_name": "", "tenant_name": ""},
    )
    assert bad_register.status_code == 422
    fields = {tuple(d["loc"])[-1] for d in bad_register.json()["error"]["details"]}
    assert {"email", "password", "full_name", "tenant_name"} <= fields


async def test_tokens_are_checked(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await client.post("/api/v1/incidents", json=INCIDENT)).status_code == 401
    for token in ("not.a.jwt", "garbage", tenant.token[:-4] + "AAAA", "x" * 10_000):
        response = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token[:20]
        assert response.json()["error"]["code"] == "unauthorized"
    # alg=none: a token that claims to need no signature
    import base64
    import json

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": tenant.user_id, "tid": tenant.tenant_id, "role": "owner", "exp": int(time.time()) + 60}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    response = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401


async def test_unknown_ids_are_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for incident_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = await client.get(f"/api/v1/incidents/{incident_id}", headers=tenant.auth)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    moved = await client.post(
        f"/api/v1/incidents/{uuid.uuid4()}/transitions", json={"to": "resolved"}, headers=tenant.auth
    )
    assert moved.status_code == 404


async def test_health_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {
        "status": "healthy",
        "instance": ANY,
        # One gateway: it holds the projector lease.
        "projector": {"status": "running", "role": "leader", "checkpoint": ANY, "stall": None},
    }
    services = await client.get("/health/services")
    assert services.status_code == 200
    body = services.json()
    assert body["status"] == "healthy"
    assert set(body["services"]) == {
        "auth",
        "incidents",
        "ai_worker",
        "integrations",
        "oncall",
        "nats",
        "postgres",
    }
    for name, check in body["services"].items():
        assert check["status"] == "healthy", name
        assert check["latency_ms"] is not None and check["latency_ms"] >= 0
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/incidents" in spec["paths"] and "/api/v1/auth/register" in spec["paths"]
