"""The MCP server's pure parts, and its tools in-process (the SDK's in-memory client): what it lists,
and that a call outside the authenticated `/mcp` endpoint is a clear tool error, not a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mcp import Client
from mcp_types import TextContent

from contracts.events import IncidentState, KeyScope, Severity
from gateway.auth.dependencies import KeyCaller
from gateway.mcp.server import (
    INCIDENT_KEY,
    Hypotheses,
    Hypothesis,
    IncidentDetail,
    IncidentWithTimeline,
    TimelineEntry,
    _caller,
    build_server,
    incident_markdown,
)
from integrations.handlers import activity_cursor, parse_activity_cursor
from sre_copilot.mcp_stdio import endpoint

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def key(*scopes: KeyScope) -> KeyCaller:
    return KeyCaller(key_id="k_" + "a" * 32, tenant_id="t_1", name="assistant", scopes=frozenset(scopes))


def test_a_key_is_a_viewer_unless_it_may_write() -> None:
    reader = _caller(key(KeyScope.MCP_READ))
    assert reader.role == "viewer" and reader.user_id == "integration:k_" + "a" * 32
    assert reader.tenant_id == "t_1"
    assert _caller(key(KeyScope.MCP_READ, KeyScope.MCP_WRITE), write=True).role == "responder"
    with pytest.raises(Exception, match="read-only"):
        _caller(key(KeyScope.MCP_READ), write=True)


@pytest.mark.parametrize(("ref", "number"), [("INC-42", "42"), ("inc-7", "7"), ("INC-0042", "0042")])
def test_incident_keys(ref: str, number: str) -> None:
    match = INCIDENT_KEY.fullmatch(ref)
    assert match is not None and match.group(1) == number


@pytest.mark.parametrize("ref", ["INC-", "INC-4x", "42", "INC-1234567890", "XINC-1"])
def test_not_incident_keys(ref: str) -> None:
    assert INCIDENT_KEY.fullmatch(ref) is None


def test_markdown() -> None:
    incident = IncidentDetail(
        id="00000000-0000-0000-0000-000000000001",
        key="INC-42",
        title="Checkout errors",
        service="checkout",
        severity=Severity.HIGH,
        state=IncidentState.RESOLVED,
        assignee_id=None,
        created_at=T0,
        acknowledged_at=T0 + timedelta(minutes=2),
        resolved_at=T0 + timedelta(minutes=30),
        description="5xx above 5%",
        root_cause="a bad deploy",
        related_incident_id=None,
        version=3,
        created_by="u_1",
    )
    found = IncidentWithTimeline(
        incident=incident,
        timeline=[TimelineEntry(seq=7, kind="incident.created", actor="u_1", at=T0, details="{}")],
        next_timeline_cursor=7,
    )
    hypotheses = Hypotheses(
        incident_key="INC-42",
        status="ready",
        engine="rules",
        generation=1,
        generated_at=T0,
        fallback_reason=None,
        items=[
            Hypothesis(
                rank=1,
                claim="The deploy broke it",
                description="v2 went out at 09:58",
                confidence=0.8,
                evidence=["deploy v2 [deploy d1]"],
                confirmed=1,
                rejected=0,
            )
        ],
        evidence=[],
    )
    text = incident_markdown(found, hypotheses)
    assert text.startswith("# INC-42: Checkout errors\n")
    assert "- **Root cause**: a bad deploy" in text and "(seq 7) **incident.created**" in text
    assert "timeline_cursor=7" in text
    assert "1. **The deploy broke it** (confidence 0.80; 1 confirmed, 0 rejected)" in text
    assert "   - deploy v2 [deploy d1]" in text


def test_activity_cursors_round_trip() -> None:
    at = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_activity_cursor(activity_cursor(at, "abc", "f.1"), 2) == (at, ["abc", "f.1"])
    assert parse_activity_cursor(activity_cursor(at, "d-1"), 1) == (at, ["d-1"])
    with pytest.raises(Exception, match="invalid cursor"):
        parse_activity_cursor("123", 1)


def test_stdio_endpoint() -> None:
    assert endpoint("http://127.0.0.1:8000") == "http://127.0.0.1:8000/mcp"
    assert endpoint("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/mcp"
    assert endpoint("https://x.example/mcp") == "https://x.example/mcp"


async def test_in_process_calls_are_refused_clearly() -> None:
    async with Client(build_server()) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"search_incidents", "move_incident", "recent_alerts"} <= tools
        result = await client.call_tool("get_incident", {"incident": "INC-1"})
        assert result.is_error
        assert isinstance(result.content[0], TextContent)
        assert "not authenticated" in result.content[0].text
