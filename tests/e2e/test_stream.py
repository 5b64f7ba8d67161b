"""The websocket live feed: isolation, resume without gap or duplicate, filters, the slow-client
rule and token checks, on the real platform."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from contracts.envelope import EventEnvelope
from contracts.events import IncidentNoteAdded
from runtime.supervisor import Platform
from tests.conftest import INCIDENT, Tenant, register_tenant

pytestmark = pytest.mark.e2e


def ws_url(platform: Platform, token: str | None = None, **params: object) -> str:
    query: dict[str, object] = {"token": token} if token else {}
    query |= {k: v for k, v in params.items() if v is not None}
    encoded = "&".join(f"{k}={v}" for k, v in query.items())
    return (
        platform.gateway_url.replace("http://", "ws://")
        + "/api/v1/stream"
        + (f"?{encoded}" if encoded else "")
    )


async def ready(ws: ClientConnection) -> dict[str, Any]:
    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert hello["kind"] == "ready"
    return hello


async def events_until(ws: ClientConnection, done, seconds: float = 10.0) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while not done(received):
            message = json.loads(await ws.recv())
            assert message["kind"] == "event"
            received.append(message)
    return received


async def test_live_events_reach_their_tenant_only(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    other = await register_tenant(client, "Bystander")
    async with (
        connect(ws_url(platform, tenant.token)) as mine,
        connect(ws_url(platform, other.token)) as theirs,
    ):
        await ready(mine)
        await ready(theirs)
        incident = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
        got = await events_until(mine, lambda r: any(e["type"] == "hypothesis.generated" for e in r))
        created = next(e for e in got if e["type"] == "incident.created")
        assert created["data"]["incident_id"] == incident["id"] and created["tenant_id"] == tenant.tenant_id
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
        # Projected before it was sent: REST already shows what the feed announced.
        hypotheses = await client.get(f"/api/v1/incidents/{incident['id']}/hypotheses", headers=tenant.auth)
        assert hypotheses.json()["status"] == "ready"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(theirs.recv(), 1.0)


async def test_resume_with_since_has_no_gap_and_no_duplicate(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async def open_incidents(n: int) -> None:
        for i in range(n):
            await client.post(
                "/api/v1/incidents", json=INCIDENT | {"title": f"burst {i}"}, headers=tenant.auth
            )

    first: list[dict[str, Any]] = []
    async with connect(ws_url(platform, tenant.token, since=0)) as ws:
        await ready(ws)
        writer = asyncio.create_task(open_incidents(6))
        first = await events_until(ws, lambda r: sum(e["type"] == "incident.created" for e in r) >= 3)
        # The socket dies mid-stream.
    await writer
    last_seen = first[-1]["seq"]
    async with connect(ws_url(platform, tenant.token, since=last_seen)) as ws:
        await ready(ws)
        rest = await events_until(
            ws,
            lambda r: (
                sum(e["type"] == "hypothesis.generated" for e in first + r) >= 6
                and sum(e["type"] == "incident.created" for e in first + r) >= 6
            ),
        )
    async with connect(ws_url(platform, tenant.token, since=0)) as ws:
        hello = await ready(ws)
        expected_count = len(first) + len(rest)
        everything = await events_until(ws, lambda r: len(r) >= expected_count)
    combined = [e["seq"] for e in first + rest]
    assert len(combined) == len(set(combined)), "duplicates across the resume"
    assert combined == [e["seq"] for e in everything][: len(combined)], "a gap across the resume"
    assert all(e["tenant_id"] == tenant.tenant_id for e in everything)
    assert hello["live_from"] >= combined[-1]


async def test_filters_by_type_and_incident(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    one = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    two = (await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)).json()
    url = ws_url(platform, tenant.token, since=0, types="incident.state_changed", incident_id=two["id"])
    async with connect(url) as ws:
        await ready(ws)
        await client.post(
            f"/api/v1/incidents/{one['id']}/transitions", json={"to": "resolved"}, headers=tenant.auth
        )
        await client.post(
            f"/api/v1/incidents/{two['id']}/transitions", json={"to": "resolved"}, headers=tenant.auth
        )
        got = await events_until(ws, lambda r: len(r) >= 1)
        assert got[0]["type"] == "incident.state_changed" and got[0]["aggregate_id"] == two["id"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)


async def test_tokens_are_required_and_checked(platform: Platform, tenant: Tenant) -> None:
    for url in (ws_url(platform, "not-a-token"), ws_url(platform, tenant.token[:-3] + "AAA")):
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # The token may also come as the first message.
    async with connect(ws_url(platform)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": tenant.token}))
        await ready(ws)
    async with connect(ws_url(platform)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "nope"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with connect(ws_url(platform, tenant.token, since=-1)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


def open_sleepy_socket(platform: Platform, token: str) -> tuple[socket.socket, bytes]:
    """A websocket client that will read nothing: a raw socket with a tiny receive buffer (set
    before connecting, so the window stays small) that only performs the handshake."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", platform.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/v1/stream?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def read_until_close(sock: socket.socket, pending: bytes, seconds: float) -> tuple[int, str, int]:
    """Read server frames (unmasked) until the close frame: its code, reason and the number of
    data frames before it."""
    sock.settimeout(seconds)
    buffer, frames = pending, 0

    def take(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            buffer += chunk
        out, buffer = buffer[:n], buffer[n:]
        return out

    while True:
        first, second = take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(take(2), "big")
        elif length == 127:
            length = int.from_bytes(take(8), "big")
        payload = take(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode(), frames
        frames += 1


async def test_a_slow_client_is_closed_and_others_carry_on(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant, js: JetStreamContext
) -> None:
    sleepy, pending = await asyncio.to_thread(open_sleepy_socket, platform, tenant.token)
    try:
        async with connect(ws_url(platform, tenant.token)) as attentive:
            await ready(attentive)
            # Notes on an incident of the test's own, big enough that socket buffers cannot hide the backlog.
            incident_id = str(uuid.uuid4())
            events = [
                EventEnvelope(
                    type="incident.note_added",
                    tenant_id=tenant.tenant_id,
                    aggregate_id=incident_id,
                    correlation_id="slow-client-test",
                    data=IncidentNoteAdded(
                        incident_id=incident_id,
                        note_id=str(uuid.uuid4()),
                        body="x" * 5_000,
                        added_at=datetime.now(UTC),
                    ).model_dump(mode="json"),
                )
                for _ in range(3_000)
            ]
            subject = f"events.{tenant.tenant_id}.incident.note_added"
            reader = asyncio.create_task(events_until(attentive, lambda r: len(r) >= len(events), seconds=60))
            for start in range(0, len(events), 100):
                await asyncio.gather(
                    *(
                        js.publish(subject, e.to_bytes(), headers={"Nats-Msg-Id": str(e.id)})
                        for e in events[start : start + 100]
                    )
                )
            got = await reader
            assert len(got) == len(events)  # a reader that keeps up is not held back by the sleepy one
        code, reason, delivered = await asyncio.to_thread(read_until_close, sleepy, pending, 30)
        assert code == 4408, (code, reason)
        resume_from = int(reason.rsplit("since=", 1)[1])
        assert delivered < len(events)  # cut off (the count includes "ready"), not served everything
        assert resume_from > 0
    finally:
        sleepy.close()
