"""`/api/v1/stream`: the tenant's events over a websocket, live, with resume from a sequence."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from contracts.envelope import EventEnvelope
from contracts.subjects import EVENTS_STREAM, tenant_events
from gateway.auth.tokens import AccessClaims
from gateway.errors import ApiError
from gateway.state import gateway_of
from gateway.stream.fanout import FanOut, Subscription, TooManyConnections, refusal

log = structlog.get_logger(__name__)
router = APIRouter(tags=["stream"])

# Close codes (4000-4999 are the application's own).
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401  # a missing, invalid or expired token: log in again, then resume
CLOSE_TOO_SLOW = 4408  # the client fell too far behind: reconnect with since=<last seq seen>
CLOSE_TOO_MANY = 4429  # the organisation holds as many live connections as one gateway serves it
AUTH_TIMEOUT_SECONDS = 10.0
MAX_TYPES = 50
CLOSE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Filters:
    types: frozenset[str]
    incident_id: str | None

    def wants(self, event: EventEnvelope) -> bool:
        if self.types and event.type not in self.types:
            return False
        if self.incident_id is not None:
            return self.incident_id in (event.aggregate_id, event.data.get("incident_id"))
        return True


class Feed:
    """One connection's sender: replay from JetStream up to the live position, then the fan-out."""

    def __init__(self, websocket: WebSocket, subscription: Subscription, filters: Filters) -> None:
        self.websocket, self.subscription, self.filters = websocket, subscription, filters
        self.last_sent = 0

    async def send(self, seq: int, event: EventEnvelope) -> None:
        # The fan-out may hand over what the replay already sent; sequences make that harmless.
        if seq <= self.last_sent:
            return
        self.last_sent = seq
        if self.filters.wants(event):
            # Blocks while the client is not reading (the server's write buffer is full); meanwhile
            # its queue fills, and a full queue is what closes it as too slow.
            await self.websocket.send_json({"kind": "event", "seq": seq, **event.model_dump(mode="json")})

    async def replay(self, js: JetStreamContext, since: int, live_from: int) -> None:
        """Everything of the tenant after `since`, up to what the projector had applied when this
        connection subscribed to the fan-out; what comes after arrives through the fan-out."""
        self.last_sent = since
        if since >= live_from:
            return
        sub = await js.pull_subscribe(
            tenant_events(self.subscription.tenant_id),
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=since + 1,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
            ),
        )
        try:
            if (await sub.consumer_info()).num_pending == 0:
                return
            while True:
                try:
                    msgs = await sub.fetch(256, timeout=1.0)
                except TimeoutError:
                    # A busy server can be slower than the fetch timeout; only an empty consumer is done.
                    if ((await sub.consumer_info()).num_pending or 0) > 0:
                        continue
                    return
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq > live_from:
                        return
                    try:
                        event = EventEnvelope.from_bytes(msg.data)
                    except (ValidationError, ValueError):
                        continue  # the projector dead-lettered it too: it never reached the read models
                    await self.send(seq, event)
                    if msg.metadata.num_pending == 0:
                        return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def live(self) -> None:
        while True:
            seq, event = await self.subscription.queue.get()
            await self.send(seq, event)


async def _authenticate(websocket: WebSocket) -> tuple[Any, AccessClaims] | None:
    """The caller and its token's claims, from a first message `{"type":"auth","token":...}`. (Not
    from the URL: a token there ends up in proxies' and servers' access logs.)"""
    try:
        first = await asyncio.wait_for(websocket.receive_json(), AUTH_TIMEOUT_SECONDS)
        token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
    except (TimeoutError, ValueError, WebSocketDisconnect):
        token = None
    if not isinstance(token, str) or not token:
        return None
    try:
        verified: tuple[Any, AccessClaims] = await gateway_of(websocket).verifier.verify_with_claims(token)
    except ApiError:
        return None
    return verified


async def _until_refused(subscription: Subscription, engine: Any, every: float) -> None:
    """Every `every` seconds, the credential is checked again; ends the subscription once refused.
    (The projector's SessionWatch usually ends it at once; this bounds the time when it does not,
    e.g. another gateway projected the change.)"""
    while not subscription.ended.is_set():
        await asyncio.sleep(every)
        try:
            reason = await refusal(engine, subscription)
        except Exception as exc:  # the database is away: keep serving, look again next time
            log.warning("stream_recheck_failed", error=str(exc))
            continue
        if reason is not None:
            subscription.end(reason)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/api/v1/stream")
async def stream(
    websocket: WebSocket,
    since: int | None = None,
    types: str | None = None,
    incident_id: str | None = None,
) -> None:
    """Your organisation's events as JSON, each `{"kind":"event","seq",...envelope}`, as soon as the
    read models include them. Authenticate with a first message `{"type":"auth","token":...}`.
    `?since=SEQ` first replays everything after SEQ, with no gap and no duplicate. Optional
    `types=a,b` and `incident_id=` filters. Close codes: 4401 token missing, invalid or expired, or
    the session ended (user deactivated, password changed); 4408 too slow (resume with `since`); 4400
    bad parameters (a `token` in the URL included); 4429 too many connections for the organisation."""
    await websocket.accept()
    if "token" in websocket.query_params:
        await websocket.close(
            CLOSE_BAD_REQUEST,
            'send the token as the first message {"type":"auth","token":...}, not in the URL',
        )
        return
    if (since is not None and since < 0) or (types and len(types.split(",")) > MAX_TYPES):
        await websocket.close(CLOSE_BAD_REQUEST, "since must be >= 0; at most 50 types")
        return
    identity = await _authenticate(websocket)
    if identity is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "invalid or expired token")
        return
    caller, claims = identity
    expires_at = float(claims.expires_at)
    state = gateway_of(websocket)
    fanout: FanOut = state.fanout
    try:
        subscription = fanout.subscribe(caller.tenant_id, caller.user_id, claims.session_epoch)
    except TooManyConnections:
        limit = state.settings.live_max_connections_per_tenant
        log.warning("stream_refused_too_many", tenant_id=caller.tenant_id, limit=limit)
        await websocket.close(
            CLOSE_TOO_MANY, f"too many live connections for this organisation (at most {limit})"
        )
        return
    live_from = state.projector.checkpoint
    filters = Filters(frozenset(t.strip() for t in (types or "").split(",") if t.strip()), incident_id)
    feed = Feed(websocket, subscription, filters)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await websocket.send_json({"kind": "ready", "since": since, "live_from": live_from})

        async def send_all() -> None:
            if since is not None:
                await feed.replay(state.js, since, live_from)
            else:
                feed.last_sent = live_from
            await feed.live()

        sender = asyncio.create_task(send_all())
        client_gone = asyncio.create_task(_until_disconnect(websocket))
        expired = asyncio.create_task(asyncio.sleep(max(0.0, expires_at - time.time())))
        lagging = asyncio.create_task(subscription.lagging.wait())
        ended = asyncio.create_task(subscription.ended.wait())
        recheck = asyncio.create_task(
            _until_refused(subscription, state.engine, state.settings.live_recheck_seconds)
        )
        tasks = [sender, client_gone, expired, lagging, ended, recheck]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if client_gone in done:
            return
        for task in tasks:
            task.cancel()
        if expired in done:
            code, reason = CLOSE_UNAUTHORIZED, "token expired"
        elif ended in done or recheck in done:
            code, reason = CLOSE_UNAUTHORIZED, f"session ended ({subscription.end_reason}): log in again"
        elif lagging in done:
            code, reason = CLOSE_TOO_SLOW, f"too slow; resume with since={feed.last_sent}"
        else:
            log.warning("stream_failed", error=str(sender.exception()))
            code, reason = 1011, "internal error"
        # A client that reads nothing cannot take even the close frame; the server's keep-alive
        # pings then end the connection.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_SECONDS)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        fanout.unsubscribe(subscription)
