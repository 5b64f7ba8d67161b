"""The websocket live feed: isolation, resume without gap or duplicate, filters, the slow-client
rule, token checks, sessions that end while a socket is open, and the per-organisation cap, on the
real platform."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from contracts.envelope import EventEnvelope
from contracts.events import IncidentNoteAdded
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, LIVE_MAX_CONNECTIONS_PER_TENANT, Tenant, register_tenant
from tests.e2e.test_auth_users import member

pytestmark = pytest.mark.e2e


def ws_url(platform: Platform, **params: object) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    encoded = "&".join(f"{k}={v}" for k, v in query.items())
    return (
        platform.gateway_url.replace("http://", "ws://")
        + "/api/v1/stream"
        + (f"?{encoded}" if encoded else "")
    )


@contextlib.asynccontextmanager
async def feed(platform: Platform, token: str, **params: object) -> AsyncIterator[ClientConnection]:
    """A websocket on the live feed, authenticated the one way there is: a first message."""
    async with connect(ws_url(platform, **params)) as ws:
        with contextlib.suppress(ConnectionClosed):  # refused before auth (bad parameters)
            await ws.send(json.dumps({"type": "auth", "token": token}))
        yield ws


async def close_code(ws: ClientConnection, seconds: float = 60.0) -> int:
    """Read (and drop) whatever comes until the server closes; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


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
        feed(platform, tenant.token) as mine,
        feed(platform, other.token) as theirs,
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
    async with feed(platform, tenant.token, since=0) as ws:
        await ready(ws)
        writer = asyncio.create_task(open_incidents(6))
        first = await events_until(ws, lambda r: sum(e["type"] == "incident.created" for e in r) >= 3)
        # The socket dies mid-stream.
    await writer
    last_seen = first[-1]["seq"]
    async with feed(platform, tenant.token, since=last_seen) as ws:
        await ready(ws)
        rest = await events_until(
            ws,
            lambda r: (
                sum(e["type"] == "hypothesis.generated" for e in first + r) >= 6
                and sum(e["type"] == "incident.created" for e in first + r) >= 6
            ),
        )
    async with feed(platform, tenant.token, since=0) as ws:
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
    async with feed(
        platform, tenant.token, since=0, types="incident.state_changed", incident_id=two["id"]
    ) as ws:
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
    for token in ("not-a-token", tenant.token[:-3] + "AAA", ""):
        async with feed(platform, token) as ws:
            assert await close_code(ws) == 4401
    async with feed(platform, tenant.token) as ws:
        await ready(ws)
    # Anything but an auth message first is refused too.
    async with connect(ws_url(platform)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": tenant.token}))
        assert await close_code(ws) == 4401
    async with feed(platform, tenant.token, since=-1) as ws:
        assert await close_code(ws) == 4400


async def test_a_token_in_the_url_is_refused(platform: Platform, tenant: Tenant) -> None:
    """`?token=` used to authenticate; tokens in URLs end up in access logs, so it no longer does."""
    async with connect(ws_url(platform, token=tenant.token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)  # the close, never "ready"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
        assert "first message" in closed.value.rcvd.reason
    # Even with the auth message as well: the URL form is refused outright, not ignored.
    async with connect(ws_url(platform, token=tenant.token)) as ws:
        with contextlib.suppress(ConnectionClosed):  # the server may have closed already
            await ws.send(json.dumps({"type": "auth", "token": tenant.token}))
        assert await close_code(ws) == 4400


async def test_a_socket_closes_when_its_user_is_deactivated(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    responder = await member(client, tenant, "responder")
    async with feed(platform, responder.token) as ws, feed(platform, tenant.token) as owners:
        await ready(ws)
        await ready(owners)
        deactivated = await client.post(f"/api/v1/users/{responder.user_id}/deactivate", headers=tenant.auth)
        assert deactivated.status_code == 200, deactivated.text
        assert await close_code(ws) == 4401
        # The owner's own socket is not affected: it still gets the tenant's events.
        await client.post("/api/v1/incidents", json=INCIDENT, headers=tenant.auth)
        got = await events_until(owners, lambda r: any(e["type"] == "incident.created" for e in r))
        assert got
    # And the deactivated user cannot open a new one.
    async with feed(platform, responder.token) as ws:
        assert await close_code(ws) == 4401


async def test_a_socket_closes_when_its_session_epoch_moves_on(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with feed(platform, tenant.token) as ws:
        await ready(ws)
        changed = await client.post(
            "/api/v1/auth/password",
            json={"current_password": tenant.password, "new_password": "a-whole-new-secret-77"},
            headers=tenant.auth,
        )
        assert changed.status_code == 200, changed.text
        assert await close_code(ws) == 4401
    # The fresh session's token opens a socket as usual.
    async with feed(platform, changed.json()["access_token"]) as ws:
        await ready(ws)


async def test_an_organisation_has_a_bounded_number_of_sockets(
    platform: Platform, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    other = await register_tenant(client, "Neighbour")
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(feed(platform, tenant.token))
            for _ in range(LIVE_MAX_CONNECTIONS_PER_TENANT)
        ]
        for ws in sockets:
            await ready(ws)
        async with feed(platform, tenant.token) as one_more:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(one_more.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            assert str(LIVE_MAX_CONNECTIONS_PER_TENANT) in closed.value.rcvd.reason
        # Another organisation is not held back by this one.
        async with feed(platform, other.token) as theirs:
            await ready(theirs)
        # A socket that closes frees its place (the server notices the close a moment later).
        await sockets.pop().close()
        for _ in range(100):
            async with feed(platform, tenant.token) as again:
                try:
                    hello = json.loads(await asyncio.wait_for(again.recv(), 30))
                except ConnectionClosed as refused:
                    assert refused.rcvd is not None and refused.rcvd.code == 4429
                    await asyncio.sleep(0.1)
                    continue
            assert hello["kind"] == "ready"
            break
        else:
            raise AssertionError("the place of a closed socket was not freed")


def open_sleepy_socket(platform: Platform, token: str) -> tuple[socket.socket, bytes]:
    """A websocket client that will read nothing: a raw socket with a tiny receive buffer (set
    before connecting, so the window stays small) that only performs the handshake."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", platform.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(masked_text_frame(json.dumps({"type": "auth", "token": token}).encode()))
    return sock, rest


def masked_text_frame(payload: bytes) -> bytes:
    """One client-to-server text frame (clients must mask, RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    if len(payload) < 126:
        length = bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        length = bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    else:
        length = bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81]) + length + mask + masked


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
        async with feed(platform, tenant.token) as attentive:
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
