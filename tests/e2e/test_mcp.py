"""The MCP server, through the official SDK's own client: over streamable HTTP at the running
platform's `/mcp`, and over stdio through `sre-copilot mcp` (a subprocess). Keys, tenants and
incidents are made through the REST API, and what the tools do is checked there too."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent, TextResourceContents

from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, Tenant, register_tenant
from tests.e2e.test_ai_feedback import until_generation
from tests.e2e.test_ai_hypotheses import ready_hypotheses
from tests.e2e.test_auth_keys import create_key
from tests.e2e.test_auth_users import bearer
from tests.e2e.test_integrations_alertmanager import alerts_key, am_alert, notification, processed, send

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READ_TOOLS = {
    "search_incidents",
    "get_incident",
    "get_hypotheses",
    "find_similar_incidents",
    "incident_metrics",
    "recent_deploys",
    "recent_alerts",
}
WRITE_TOOLS = {"move_incident", "add_note", "record_hypothesis_feedback", "regenerate_hypotheses"}
PAST = {
    "title": "Connection pool exhausted on checkout-api",
    "description": "All database connections in use after the deploy; requests time out waiting.",
    "service_name": "checkout-api",
    "severity": "high",
}
NOW = {**PAST, "description": "Requests time out waiting for a database connection; pool exhausted."}


@asynccontextmanager
async def over_http(platform: Platform, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{platform.gateway_url}/mcp", http_client=http)) as client,
    ):
        yield client


def stdio_parameters(platform: Platform, key: str, url: str | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", "from sre_copilot.cli import app; app()", "mcp", "--url", url or platform.gateway_url],
        # The key through the environment (as an assistant's config can), the code from this checkout.
        env={"SRE_COPILOT_KEY": key, "PYTHONPATH": str(ROOT)},
        cwd=str(ROOT),
    )


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def ok(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return text_of(result)


async def new_incident(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any] = INCIDENT) -> dict:
    created = await client.post("/api/v1/incidents", json=body, headers=tenant.auth)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def keys(client: httpx.AsyncClient, tenant: Tenant) -> tuple[str, str]:
    """A key that may act, and one that may only read."""
    write = (await create_key(client, tenant, ["mcp:read", "mcp:write"], name="assistant"))["key"]
    read = (await create_key(client, tenant, ["mcp:read"], name="assistant (read-only)"))["key"]
    return write, read


async def test_tools_are_typed_and_described(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, read = await keys(client, tenant)
    async with over_http(platform, read) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        assert set(tools) == READ_TOOLS | WRITE_TOOLS
        for name, tool in tools.items():
            assert tool.description and len(tool.description) > 40, name
            assert tool.output_schema is not None, name
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is (name in READ_TOOLS), name
        assert tools["get_incident"].input_schema["required"] == ["incident"]
        templates = (await mcp.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["incident://{key}"]
        assert [p.name for p in (await mcp.list_prompts()).prompts] == ["investigate"]


async def test_read_tools(platform: Platform, client: httpx.AsyncClient, tenant: Tenant) -> None:
    _, read = await keys(client, tenant)
    # A past incident of the service, resolved with its cause; then a new one like it.
    past = await new_incident(client, tenant, PAST)
    resolved = await client.post(
        f"/api/v1/incidents/{past['id']}/transitions",
        json={"to": "resolved", "root_cause": "pool size 50 too small for the new worker count"},
        headers=tenant.auth,
    )
    assert resolved.status_code == 200, resolved.text
    now = await new_incident(client, tenant, NOW)
    assert (await ready_hypotheses(client, tenant, now["id"]))["status"] == "ready"

    async with over_http(platform, read) as mcp:
        found = await ok(mcp, "search_incidents", {"state": ["detected"], "service": "checkout-api"})
        assert [i["key"] for i in found["items"]] == [now["key"]] and found["next_cursor"] is None
        # Small pages with a cursor, filters kept.
        first = await ok(mcp, "search_incidents", {"service": "checkout-api", "limit": 1})
        assert [i["key"] for i in first["items"]] == [now["key"]] and first["next_cursor"]
        second = await ok(
            mcp, "search_incidents", {"service": "checkout-api", "limit": 1, "cursor": first["next_cursor"]}
        )
        assert [i["key"] for i in second["items"]] == [past["key"]] and second["next_cursor"] is None
        assert (await ok(mcp, "search_incidents", {"text": "pool exhausted", "state": ["resolved"]}))[
            "items"
        ][0]["key"] == past["key"]

        # By key or by id; the timeline pages by sequence.
        detail = await ok(mcp, "get_incident", {"incident": now["key"]})
        assert detail["incident"]["id"] == now["id"] and detail["incident"]["state"] == "detected"
        assert detail["timeline"][0]["kind"] == "incident.created"
        by_id = await ok(mcp, "get_incident", {"incident": past["id"], "timeline_limit": 1})
        assert by_id["incident"]["root_cause"] == "pool size 50 too small for the new worker count"
        assert len(by_id["timeline"]) == 1 and by_id["next_timeline_cursor"] is not None
        rest = await ok(
            mcp,
            "get_incident",
            {"incident": past["id"], "timeline_cursor": by_id["next_timeline_cursor"]},
        )
        assert "incident.state_changed" in [e["kind"] for e in rest["timeline"]]

        hypotheses = await ok(mcp, "get_hypotheses", {"incident": now["key"]})
        assert hypotheses["status"] == "ready" and hypotheses["generation"] == 1
        assert [h["rank"] for h in hypotheses["items"]] == [1, 2, 3]
        assert all(h["evidence"] for h in hypotheses["items"]) and hypotheses["evidence"]

        similar = await ok(mcp, "find_similar_incidents", {"incident": now["key"]})
        assert similar["source"] == "ai_worker", similar
        assert similar["items"][0]["key"] == past["key"]
        assert similar["items"][0]["root_cause"] == "pool size 50 too small for the new worker count"

        metrics = await ok(mcp, "incident_metrics", {})
        assert metrics["total"] == 2 and metrics["open"]["total"] == 1
        assert metrics["time_to_resolve"]["count"] == 1

        # The incident as markdown, and the prompt that gathers what a model needs.
        contents = (await mcp.read_resource(f"incident://{now['key']}")).contents
        assert isinstance(contents[0], TextResourceContents) and contents[0].mime_type == "text/markdown"
        assert contents[0].text.startswith(f"# {now['key']}: {NOW['title']}")
        assert "## Hypotheses" in contents[0].text
        prompt = await mcp.get_prompt("investigate", {"incident": now["key"]})
        message = prompt.messages[0].content
        assert isinstance(message, TextContent)
        assert f"Investigate {now['key']}" in message.text and past["key"] in message.text
        assert hypotheses["items"][0]["claim"] in message.text
        assert "read-only" in message.text


async def test_write_tools_act_through_the_api(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    write, _ = await keys(client, tenant)
    key_id = write.split("_")[1] + "_" + write.split("_")[2]
    incident = await new_incident(client, tenant)
    await ready_hypotheses(client, tenant, incident["id"])
    async with over_http(platform, write) as mcp:
        # Finds it, reads its hypotheses, acknowledges it with a note.
        found = await ok(mcp, "search_incidents", {"state": ["detected"]})
        assert [i["key"] for i in found["items"]] == [incident["key"]]
        top = (await ok(mcp, "get_hypotheses", {"incident": incident["key"]}))["items"][0]
        moved = await ok(
            mcp, "move_incident", {"incident": incident["key"], "to": "acknowledged", "note": "on it"}
        )
        assert moved["state"] == "acknowledged"
        # Read-your-writes: the REST API shows it at once, recorded under the key.
        read = (await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)).json()
        assert read["state"] == "acknowledged" and read["acknowledged_at"]
        timeline = (
            await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)
        ).json()
        change = timeline["items"][-1]
        assert change["kind"] == "incident.state_changed" and change["data"]["note"] == "on it"
        assert change["actor"] == f"integration:{key_id}"

        await ok(mcp, "add_note", {"incident": incident["id"], "body": "CPU flat since the rollback"})
        timeline = (
            await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)
        ).json()
        assert any("CPU flat since the rollback" in str(e["data"]) for e in timeline["items"])

        given = await ok(
            mcp,
            "record_hypothesis_feedback",
            {"incident": incident["key"], "rank": 1, "verdict": "confirmed"},
        )
        assert given == {"incident_key": incident["key"], "generation": 1, "rank": 1, "verdict": "confirmed"}
        after = (
            await client.get(f"/api/v1/incidents/{incident['id']}/hypotheses", headers=tenant.auth)
        ).json()
        assert after["items"][0]["feedback"] == {"confirmed": 1, "rejected": 0}
        assert after["items"][0]["claim"] == top["claim"]

        asked = await ok(mcp, "regenerate_hypotheses", {"incident": incident["key"]})
        assert asked["request_id"]
        assert (await until_generation(client, tenant, incident["id"], 2))["generation"] == 2

        resolved = await ok(
            mcp,
            "move_incident",
            {
                "incident": incident["key"],
                "to": "resolved",
                "root_cause": "a bad deploy",
                "note": "rolled back",
            },
        )
        assert resolved["state"] == "resolved"
        read = (await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)).json()
        assert read["state"] == "resolved" and read["root_cause"] == "a bad deploy"


async def test_another_tenants_incident_is_not_found(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    theirs = await new_incident(client, tenant)
    other = await register_tenant(client, "Globex")
    mine = await new_incident(client, other)
    write, _ = await keys(client, other)
    # Both tenants have an INC-1: the key names the caller's own.
    assert theirs["key"] == mine["key"]
    async with over_http(platform, write) as mcp:
        assert (await ok(mcp, "get_incident", {"incident": mine["key"]}))["incident"]["id"] == mine["id"]
        listed = await ok(mcp, "search_incidents", {})
        assert [i["id"] for i in listed["items"]] == [mine["id"]]
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_incident", {}),
            ("get_hypotheses", {}),
            ("find_similar_incidents", {}),
            ("move_incident", {"to": "acknowledged"}),
            ("add_note", {"body": "hello"}),
            ("record_hypothesis_feedback", {"rank": 1, "verdict": "rejected"}),
            ("regenerate_hypotheses", {}),
        ]
        for tool, arguments in calls:
            message = await refused(mcp, tool, {"incident": theirs["id"], **arguments})
            assert "not found" in message, (tool, message)
        with pytest.raises(MCPError, match="not found"):
            await mcp.read_resource(f"incident://{theirs['id']}")
    # Nothing happened to it.
    untouched = (await client.get(f"/api/v1/incidents/{theirs['id']}", headers=tenant.auth)).json()
    assert untouched["state"] == "detected" and untouched["version"] == theirs["version"]


async def test_a_read_only_key_cannot_write(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, read = await keys(client, tenant)
    incident = await new_incident(client, tenant)
    async with over_http(platform, read) as mcp:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("move_incident", {"to": "acknowledged"}),
            ("add_note", {"body": "hello"}),
            ("record_hypothesis_feedback", {"rank": 1, "verdict": "confirmed"}),
            ("regenerate_hypotheses", {}),
        ]
        for tool, arguments in calls:
            message = await refused(mcp, tool, {"incident": incident["key"], **arguments})
            assert "read-only" in message and "mcp:write" in message, message
    timeline = (await client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=tenant.auth)).json()
    kinds = {e["kind"] for e in timeline["items"]}
    assert kinds <= {"incident.created", "hypothesis.generated"}, kinds
    path = f"/api/v1/incidents/{incident['id']}/hypotheses"
    feedback = (await client.get(path, headers=tenant.auth)).json()
    assert all(h["feedback"] == {"confirmed": 0, "rejected": 0} for h in feedback["items"])


async def test_bad_arguments_are_tool_errors(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    write, _ = await keys(client, tenant)
    incident = await new_incident(client, tenant)
    async with over_http(platform, write) as mcp:
        assert "not an incident key" in await refused(mcp, "get_incident", {"incident": "the big one"})
        assert "not found" in await refused(mcp, "get_incident", {"incident": "INC-999"})
        assert "incident" in await refused(mcp, "get_incident", {})
        assert "50" in await refused(mcp, "search_incidents", {"limit": 500})
        await refused(mcp, "search_incidents", {"cursor": "not-a-cursor"})
        await refused(mcp, "search_incidents", {"state": ["sleeping"]})
        assert "offset" in await refused(mcp, "search_incidents", {"created_from": "2026-01-01T00:00:00"})
        await refused(mcp, "move_incident", {"incident": incident["key"], "to": "flying"})
        # A move the lifecycle does not allow: the API's 409, with the allowed moves.
        conflict = await refused(mcp, "move_incident", {"incident": incident["key"], "to": "detected"})
        assert conflict.startswith("Error") or "conflict" in conflict
        assert "conflict" in conflict and "acknowledged" in conflict
        assert "resolved" in await refused(
            mcp, "move_incident", {"incident": incident["key"], "to": "acknowledged", "root_cause": "x"}
        )
        await refused(mcp, "add_note", {"incident": incident["key"], "body": "   "})
        await refused(
            mcp,
            "record_hypothesis_feedback",
            {"incident": incident["key"], "rank": 11, "verdict": "confirmed"},
        )
        await refused(mcp, "get_hypotheses", {"incident": incident["key"], "generation": 99})
        assert "Unknown tool" in await refused(mcp, "drop_tables", {})
        with pytest.raises(MCPError):
            await mcp.get_prompt("investigate", {"incident": "INC-999"})
        # Still serving after all that.
        assert (await ok(mcp, "get_incident", {"incident": incident["key"]}))["incident"]["key"] == incident[
            "key"
        ]


async def test_the_endpoint_takes_only_keys_with_mcp_read(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    assert (await client.post("/mcp", json=ping, headers=accept)).status_code == 401
    # A user's token is not a key; a key for alerts is not one for assistants.
    assert (await client.post("/mcp", json=ping, headers={**accept, **tenant.auth})).status_code == 401
    alerts = (await create_key(client, tenant, ["alerts:write"]))["key"]
    answer = await client.post("/mcp", json=ping, headers={**accept, "Authorization": f"Bearer {alerts}"})
    assert answer.status_code == 403 and "mcp:read" in answer.json()["error"]["message"]
    created = await create_key(client, tenant, ["mcp:read"])
    auth = {**accept, "Authorization": f"Bearer {created['key']}"}
    assert (await client.post("/mcp", json=ping, headers=auth)).status_code == 200
    # Whatever else arrives is answered, never a 500: no event stream to open, nothing to delete,
    # a body that is not JSON-RPC.
    for method in ("GET", "DELETE"):
        answer = await client.request(method, "/mcp", headers=auth)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST", (method, answer.text)
    garbage = await client.post(
        "/mcp", content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert 400 <= garbage.status_code < 500, garbage.text
    revoked = await client.post(f"/api/v1/integration-keys/{created['id']}/revoke", headers=tenant.auth)
    assert revoked.status_code == 200
    assert (await client.post("/mcp", json=ping, headers=auth)).status_code == 401
    # Not part of the REST API's document.
    document = (await client.get("/openapi.json")).json()
    assert not any(path.startswith("/mcp") for path in document["paths"])


async def test_stdio_serves_the_same_tools(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    write, read = await keys(client, tenant)
    incident = await new_incident(client, tenant)
    async with over_http(platform, read) as remote:
        over_the_wire = (await remote.list_tools()).tools
    async with Client(stdio_parameters(platform, read)) as local:
        assert (await local.list_tools()).tools == over_the_wire
        detail = await ok(local, "get_incident", {"incident": incident["key"]})
        assert detail["incident"]["id"] == incident["id"]
        assert "read-only" in await refused(local, "add_note", {"incident": incident["key"], "body": "hi"})
        assert "not an incident key" in await refused(local, "get_incident", {"incident": "nope"})
        contents = (await local.read_resource(f"incident://{incident['key']}")).contents
        assert isinstance(contents[0], TextResourceContents) and incident["key"] in contents[0].text
    async with Client(stdio_parameters(platform, write)) as local:
        moved = await ok(
            local, "move_incident", {"incident": incident["key"], "to": "acknowledged", "note": "stdio"}
        )
        assert moved["state"] == "acknowledged"
    read_back = (await client.get(f"/api/v1/incidents/{incident['id']}", headers=tenant.auth)).json()
    assert read_back["state"] == "acknowledged"


def test_stdio_refuses_a_bad_key_with_a_clear_message(platform: Platform) -> None:
    import subprocess

    parameters = stdio_parameters(platform, "sck_k_" + "0" * 32 + "_" + "x" * 43)
    done = subprocess.run(
        [parameters.command, *parameters.args],
        env={**os.environ, **(parameters.env or {})},
        cwd=parameters.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "401" in done.stderr and "invalid or revoked integration key" in done.stderr
    assert done.stdout == ""


async def test_recent_deploys_and_alerts_of_a_service(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, read = await keys(client, tenant)
    ci = (await create_key(client, tenant, ["deploys:write"], name="ci"))["key"]
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes, version in ((90, "v1.0.0"), (60, "v1.1.0"), (30, "v1.2.0")):
        deploy = {
            "service_name": "checkout",
            "version": version,
            "environment": "production",
            "commit": f"{minutes:040x}",
            "author": "ci@acme.example",
            "deployed_at": (now - timedelta(minutes=minutes)).isoformat(),
        }
        sent = await client.post("/api/v1/integrations/deploys", json=deploy, headers=bearer(ci))
        assert sent.status_code == 201, sent.text
    other = {**deploy, "service_name": "billing", "version": "v9"}
    assert (
        await client.post("/api/v1/integrations/deploys", json=other, headers=bearer(ci))
    ).status_code == 201
    delivery = await send(client, await alerts_key(client, tenant), notification(am_alert("a1", starts=now)))
    await processed(client, tenant, delivery)

    async with over_http(platform, read) as mcp:
        first = await ok(mcp, "recent_deploys", {"service": "checkout", "limit": 2})
        assert [d["version"] for d in first["items"]] == ["v1.2.0", "v1.1.0"] and first["next_cursor"]
        rest = await ok(mcp, "recent_deploys", {"service": "checkout", "cursor": first["next_cursor"]})
        assert [d["version"] for d in rest["items"]] == ["v1.0.0"] and rest["next_cursor"] is None
        # A window: only what happened since.
        since = (now - timedelta(minutes=45)).isoformat()
        assert [
            d["version"]
            for d in (await ok(mcp, "recent_deploys", {"service": "checkout", "since": since}))["items"]
        ] == ["v1.2.0"]
        alerts = await ok(mcp, "recent_alerts", {"service": "checkout"})
        assert [a["fingerprint"] for a in alerts["items"]] == ["a1"]
        assert alerts["items"][0]["status"] == "firing" and alerts["items"][0]["incident_id"]
        assert alerts["items"][0]["summary"] == "Checkout 5xx ratio above 5%"
        assert (await ok(mcp, "recent_alerts", {"service": "billing"}))["items"] == []
        assert "cursor" in await refused(mcp, "recent_deploys", {"service": "checkout", "cursor": "garbage"})
        await refused(mcp, "recent_deploys", {"service": "checkout", "limit": 0})
    # Another organisation sees none of it.
    outsider = await register_tenant(client, "Initech")
    _, theirs = await keys(client, outsider)
    async with over_http(platform, theirs) as mcp:
        assert (await ok(mcp, "recent_deploys", {"service": "checkout"}))["items"] == []
        assert (await ok(mcp, "recent_alerts", {"service": "checkout"}))["items"] == []


async def test_clients_of_the_handshake_era_are_served_too(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Assistants released before 2026-07-28 open with `initialize`: over HTTP and through stdio."""
    write, _ = await keys(client, tenant)
    incident = await new_incident(client, tenant)
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {write}"}, timeout=30) as http,
        Client(streamable_http_client(f"{platform.gateway_url}/mcp", http_client=http), mode="legacy") as mcp,
    ):
        assert mcp.protocol_version != "2026-07-28"
        assert (await ok(mcp, "get_incident", {"incident": incident["key"]}))["incident"]["id"] == incident[
            "id"
        ]
        await ok(mcp, "add_note", {"incident": incident["key"], "body": "from an older client"})
    async with Client(stdio_parameters(platform, write), mode="legacy") as local:
        assert local.protocol_version != "2026-07-28"
        moved = await ok(local, "move_incident", {"incident": incident["key"], "to": "investigating"})
        assert moved["state"] == "investigating"
