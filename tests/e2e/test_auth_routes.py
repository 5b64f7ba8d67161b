"""Every route of the API by every role, and every route that takes an id walked with another
organisation's token. The routes come from the application's own OpenAPI document, so a new route is
covered the moment it exists: it gets the default policy (viewers read; responders and above also
write) unless it declares a least role (`require_role`, shown as its security scopes), and if it takes
an id, another organisation's owner must get a 404 from it."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from contracts.events import Role
from gateway.app import create_app
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, Tenant, fresh_address, register_tenant
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import Member, bearer, invite, member

pytestmark = pytest.mark.e2e

SPEC: dict[str, Any] = create_app().openapi()
ROUTES = [(method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops]
PUBLIC = "public"
KEY = "integration key"

# What the routes we know must require; a route missing here gets the policy it declares (or the
# default), but a route listed here that declares something else fails the test.
EXPECTED: dict[tuple[str, str], Role | str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/services"): PUBLIC,
    ("POST", "/api/v1/auth/register"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): PUBLIC,
    ("POST", "/api/v1/auth/accept-invite"): PUBLIC,
    ("POST", "/api/v1/auth/password"): Role.VIEWER,
    ("GET", "/api/v1/auth/me"): Role.VIEWER,
    ("GET", "/api/v1/auth/key"): KEY,
    ("GET", "/api/v1/users"): Role.ADMIN,
    ("POST", "/api/v1/users"): Role.ADMIN,
    ("GET", "/api/v1/users/{user_id}"): Role.ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): Role.ADMIN,
    ("POST", "/api/v1/users/{user_id}/deactivate"): Role.ADMIN,
    ("POST", "/api/v1/users/{user_id}/reactivate"): Role.ADMIN,
    ("POST", "/api/v1/integration-keys"): Role.ADMIN,
    ("GET", "/api/v1/integration-keys"): Role.ADMIN,
    ("GET", "/api/v1/integration-keys/{key_id}"): Role.ADMIN,
    ("POST", "/api/v1/integration-keys/{key_id}/revoke"): Role.ADMIN,
    ("POST", "/api/v1/incidents"): Role.RESPONDER,
    ("GET", "/api/v1/incidents"): Role.VIEWER,
    ("GET", "/api/v1/incidents/{incident_id}"): Role.VIEWER,
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Role.RESPONDER,
    ("GET", "/api/v1/incidents/{incident_id}/hypotheses"): Role.VIEWER,
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): Role.VIEWER,
    ("POST", "/api/v1/integrations/alertmanager"): KEY,
    ("POST", "/api/v1/integrations/deploys"): KEY,
    ("GET", "/api/v1/integrations/inbound"): Role.ADMIN,
    ("GET", "/api/v1/integrations/rejections"): Role.ADMIN,
    ("GET", "/api/v1/integrations/settings"): Role.ADMIN,
    ("PUT", "/api/v1/integrations/settings"): Role.ADMIN,
    ("POST", "/api/v1/integrations/webhooks"): Role.ADMIN,
    ("GET", "/api/v1/integrations/webhooks"): Role.ADMIN,
    ("GET", "/api/v1/integrations/webhooks/{webhook_id}"): Role.ADMIN,
    ("PATCH", "/api/v1/integrations/webhooks/{webhook_id}"): Role.ADMIN,
    ("DELETE", "/api/v1/integrations/webhooks/{webhook_id}"): Role.ADMIN,
    ("GET", "/api/v1/integrations/webhooks/{webhook_id}/deliveries"): Role.ADMIN,
    ("POST", "/api/v1/integrations/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): Role.ADMIN,
    ("POST", "/api/v1/teams"): Role.ADMIN,
    ("GET", "/api/v1/teams"): Role.VIEWER,
    ("GET", "/api/v1/teams/{team_id}"): Role.VIEWER,
    ("PATCH", "/api/v1/teams/{team_id}"): Role.ADMIN,
    ("DELETE", "/api/v1/teams/{team_id}"): Role.ADMIN,
    ("POST", "/api/v1/integrations/correlation-rules"): Role.ADMIN,
    ("GET", "/api/v1/integrations/correlation-rules"): Role.ADMIN,
    ("POST", "/api/v1/integrations/correlation-rules/preview"): Role.ADMIN,
    ("GET", "/api/v1/integrations/correlation-rules/{rule_id}"): Role.ADMIN,
    ("PATCH", "/api/v1/integrations/correlation-rules/{rule_id}"): Role.ADMIN,
    ("DELETE", "/api/v1/integrations/correlation-rules/{rule_id}"): Role.ADMIN,
}

# Bodies that get past validation, so that what answers is the route's own check of the id.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): {"to": "acknowledged", "note": "mine now"},
    ("PATCH", "/api/v1/incidents/{incident_id}"): {"title": "Hijacked"},
    ("POST", "/api/v1/incidents/{incident_id}/notes"): {"body": "hijacked"},
    ("PATCH", "/api/v1/users/{user_id}"): {"role": "admin"},
    ("PUT", "/api/v1/escalation-policies/{policy_id}"): {
        "name": "hijacked",
        "steps": [{"targets": [{"kind": "user", "id": "intruder"}]}],
    },
    ("PATCH", "/api/v1/integrations/correlation-rules/{rule_id}"): {"enabled": False},
    ("PUT", "/api/v1/integrations/slack/links/{user_id}"): {
        "slack_team_id": "T0INTRUDE",
        "slack_user_id": "U0INTRUDE",
    },
}

PARAMETER = re.compile(r"\{(\w+)\}")


def declared_policy(method: str, path: str) -> Role | str:
    """What the route says it needs: nothing, an integration key, or a least role."""
    security = SPEC["paths"][path][method.lower()].get("security")
    if not security:
        return PUBLIC
    ((scheme, scopes),) = security[0].items()
    if scheme == "IntegrationKey":
        return KEY
    if scopes:
        return Role(scopes[0])
    return Role.VIEWER if method in ("GET", "HEAD") else Role.RESPONDER


def test_every_known_route_exists_and_declares_what_is_expected() -> None:
    assert len(ROUTES) >= len(EXPECTED)
    for route, expected in EXPECTED.items():
        if route[1].startswith("/api/v1/incidents") and route not in ROUTES:
            continue  # the incidents routes are another issue's; they may move
        assert route in ROUTES, route
        assert declared_policy(*route) == expected, route


async def test_the_served_document_lists_the_same_routes(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    assert sorted((m.upper(), p) for p, ops in served["paths"].items() for m in ops) == sorted(ROUTES)


@dataclass
class World:
    client: httpx.AsyncClient
    owner: Tenant
    members: dict[Role, Tenant | Member]
    ids: dict[str, str]


@pytest.fixture(scope="module")
async def world(platform: Platform) -> AsyncIterator[World]:
    headers = {"X-Forwarded-For": fresh_address()}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15, headers=headers) as client:
        owner = await register_tenant(client, "Roles")
        members: dict[Role, Tenant | Member] = {Role.OWNER: owner}
        for role in (Role.ADMIN, Role.RESPONDER, Role.VIEWER):
            members[role] = await member(client, owner, role.value)
        spare = await invite(client, owner, "viewer")
        incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=owner.auth)).json()
        key = await create_key(client, owner, ["alerts:write"])
        ids = {"incident_id": incident["id"], "user_id": spare["user"]["id"], "key_id": key["id"]}
        yield World(client, owner, members, ids)


def _url(path: str, ids: dict[str, str]) -> str:
    return PARAMETER.sub(lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


# Routes any member may call for themselves (`me`) and admins for anyone: the probe names another
# user of the organisation, so only admins pass. (Its PUT's empty body is refused before that check.)
SELF_OR_ADMIN = {
    ("GET", "/api/v1/integrations/slack/links/{user_id}"),
    ("DELETE", "/api/v1/integrations/slack/links/{user_id}"),
}


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_by_role(world: World, method: str, path: str) -> None:
    policy = Role.ADMIN if (method, path) in SELF_OR_ADMIN else declared_policy(method, path)
    url = _url(path, world.ids)
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None

    anonymous = await world.client.request(method, url, json=body)
    garbage = await world.client.request(method, url, json=body, headers=bearer("not-a-token"))
    if policy == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.text
        return
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    assert garbage.status_code == 401

    for role in (Role.VIEWER, Role.RESPONDER, Role.ADMIN, Role.OWNER):
        response = await world.client.request(method, url, json=body, headers=world.members[role].auth)
        if policy == KEY:
            assert response.status_code == 401, (role, response.text)  # a user token is not a key
        elif isinstance(policy, Role) and role.at_least(policy):
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"]["code"] == "forbidden"


# Path parameters that name no object of an organisation: a service is only a name, which any
# organisation may use for its own (`/services/{service_name}/on-call` answers for yours).
NOT_AN_OBJECT = {"service_name"}
ROUTES_WITH_IDS = [
    (m, p) for m, p in ROUTES if set(PARAMETER.findall(p)) - NOT_AN_OBJECT and declared_policy(m, p) != PUBLIC
]


@pytest.fixture(scope="module")
async def victim(platform: Platform) -> AsyncIterator[World]:
    """An organisation with one of everything that has an id, and an intruder from another one."""
    headers = {"X-Forwarded-For": fresh_address()}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15, headers=headers) as client:
        owner = await register_tenant(client, "Victim")
        intruder = await register_tenant(client, "Intruder")
        spare = await invite(client, owner, "viewer")
        incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=owner.auth)).json()
        key = await create_key(client, owner, ["alerts:write"])
        ids = {"incident_id": incident["id"], "user_id": spare["user"]["id"], "key_id": key["id"]}
        # Disabled: nothing is ever sent to it.
        webhook = await client.post(
            "/api/v1/integrations/webhooks",
            json={"kind": "generic", "name": "victim", "url": "https://example.com/hook", "enabled": False},
            headers=owner.auth,
        )
        ids["webhook_id"] = webhook.json()["id"]
        link = {"slack_team_id": "T0VICTIM", "slack_user_id": "U0VICTIM"}
        linked = await client.put(
            f"/api/v1/integrations/slack/links/{ids['user_id']}", json=link, headers=owner.auth
        )
        assert linked.status_code == 200, linked.text
        ids.update(await _one_of_everything_else(client, owner, ids["incident_id"]))
        yield World(client, owner, {Role.OWNER: intruder}, ids)


async def _one_of_everything_else(
    client: httpx.AsyncClient, owner: Tenant, incident_id: str
) -> dict[str, str]:
    """A JSON source, a maintenance window, a correlation rule, a schedule with an override, a team,
    an escalation policy routed from a service, a contact method and a follow-up: each route naming
    one is probed with its id."""

    async def made(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.request(method, path, json=body, headers=owner.auth)
        assert response.status_code in (200, 201), (path, response.text)
        return dict(response.json())

    mapping = {"title": "name", "severity": "level", "dedup_key": "id", "status": "state"}
    source = await made("POST", "/api/v1/integrations/json-sources", {"name": "victim", "mapping": mapping})
    window = {"name": "victim", "services": ["victim-db"], "starts_at": "2030-01-01T00:00:00Z"}
    silence = await made("POST", "/api/v1/integrations/silences", window | {"duration_minutes": 60})
    correlation = {"name": "victim", "labels": ["service", "cluster"], "window_minutes": 10}
    rule = await made("POST", "/api/v1/integrations/correlation-rules", correlation)
    layer = {
        "participants": [owner.user_id],
        "rotation": "weekly",
        "start_date": "2026-11-30",
        "handoff_time": "09:00",
        "time_zone": "UTC",
    }
    schedule = await made("POST", "/api/v1/schedules", {"name": "victim", "layers": [layer]})
    override = await made(
        "POST",
        f"/api/v1/schedules/{schedule['id']}/overrides",
        {"user_id": owner.user_id, "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T14:00:00Z"},
    )
    team = await made(
        "POST", "/api/v1/teams", {"name": "victim", "members": [owner.user_id], "schedule_id": schedule["id"]}
    )
    targets = [{"kind": "schedule", "id": schedule["id"]}, {"kind": "team", "id": team["id"]}]
    policy = await made(
        "POST", "/api/v1/escalation-policies", {"name": "victim", "steps": [{"targets": targets}]}
    )
    service = f"victim-{uuid.uuid4().hex[:8]}"
    await made("PUT", "/api/v1/routing", {"rules": [{"policy_id": policy["id"], "service_name": service}]})
    contact = await made("POST", "/api/v1/contact-methods", {"kind": "email", "address": owner.email})
    follow_up = await made("POST", f"/api/v1/incidents/{incident_id}/follow-ups", {"title": "victim's"})
    await made("POST", f"/api/v1/incidents/{incident_id}/postmortem", {})
    return {
        "source_id": source["id"],
        "silence_id": silence["id"],
        "rule_id": rule["id"],
        "schedule_id": schedule["id"],
        "override_id": override["id"],
        "policy_id": policy["id"],
        "team_id": team["id"],
        "contact_method_id": contact["id"],
        "follow_up_id": follow_up["id"],
    }


@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_IDS, ids=[f"{m} {p}" for m, p in ROUTES_WITH_IDS])
async def test_another_organisations_ids_are_not_found(victim: World, method: str, path: str) -> None:
    intruder = victim.members[Role.OWNER]
    url = _url(path, victim.ids)
    body = VALID_BODIES.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)
    response = await victim.client.request(method, url, json=body, headers=intruder.auth)
    if declared_policy(method, path) == KEY:
        assert response.status_code == 401
    elif (method, path) in VALID_BODIES or "requestBody" not in SPEC["paths"][path][method.lower()]:
        assert response.status_code == 404, response.text
    else:
        # A route this test has no valid body for: at least nothing may succeed.
        assert response.status_code in (404, 422), response.text
    # The victim still sees everything as it was.
    if method == "GET":
        mine = await victim.client.get(url, headers=victim.owner.auth)
        assert mine.status_code == 200, mine.text


async def test_the_intruders_writes_changed_nothing(victim: World) -> None:
    owner, ids = victim.owner, victim.ids
    incident = (await victim.client.get(f"/api/v1/incidents/{ids['incident_id']}", headers=owner.auth)).json()
    assert incident["state"] == "detected" and incident["title"] == INCIDENT["title"]
    user = (await victim.client.get(f"/api/v1/users/{ids['user_id']}", headers=owner.auth)).json()
    assert user["role"] == "viewer" and user["status"] == "invited"
    key = (await victim.client.get(f"/api/v1/integration-keys/{ids['key_id']}", headers=owner.auth)).json()
    assert key["revoked_at"] is None
    policy = (
        await victim.client.get(f"/api/v1/escalation-policies/{ids['policy_id']}", headers=owner.auth)
    ).json()
    assert policy["name"] == "victim"
    link = (
        await victim.client.get(f"/api/v1/integrations/slack/links/{ids['user_id']}", headers=owner.auth)
    ).json()
    assert link["slack_user_id"] == "U0VICTIM"
    intruder = victim.members[Role.OWNER]
    assert (await victim.client.get("/api/v1/users", headers=intruder.auth)).json()["items"][0]["id"] != ids[
        "user_id"
    ]
