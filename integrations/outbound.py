"""Notifications out: the `integrations_notifier` consumer turns events into queued deliveries (one
per event and matching webhook, idempotent), and the delivery loop sends them.

The loop claims due deliveries (row locks with SKIP LOCKED, then a lease, so replicas share the
queue and a crashed sender's deliveries come due again), sends each in its own task with a hard
timeout, at most `WEBHOOK_CONCURRENCY` at once and `WEBHOOK_CONCURRENCY_PER_ENDPOINT` per webhook
(counted over every replica: claims take turns under an advisory lock and count every running lease):
a slow or dead endpoint holds only its own slots, never another webhook's or another tenant's. A failure
is retried with exponential back-off until `WEBHOOK_MAX_ATTEMPTS`, then the delivery is `failed`.

Webhook targets are resolved at each attempt and must be public addresses (unless private targets are
allowed); the request then goes to the address that was checked (the TLS name stays the host's), so a
DNS answer that changes between check and connect cannot point it inside the platform's network."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import EventEnvelope
from contracts.events import (
    EventData,
    HypothesisGenerated,
    IncidentCreated,
    IncidentStateChanged,
    IncidentUpdated,
)
from contracts.integrations import DeliveryStatus, NotifiedEvent, WebhookKind
from integrations import db
from integrations.crypto import SecretBox
from integrations.domain import (
    CHAT_MESSAGES,
    IncidentFacts,
    Outcome,
    address_allowed,
    backoff_seconds,
    delivery_after,
    pick_deliveries,
    retryable,
    slack_message,
)
from integrations.settings import IntegrationsSettings
from runtime.consumer import RetryLater
from runtime.service import Service
from runtime.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header
from runtime.views import apply_snapshot

log = structlog.get_logger(__name__)

USER_AGENT = "SRE-Copilot-Webhooks/1.0"
NOTIFIED = frozenset(e.value for e in NotifiedEvent)
VIEW_FIELDS = ("title", "service_name", "severity")


def _uuid7() -> uuid.UUID:
    from uuid6 import uuid7

    return uuid.UUID(str(uuid7()))


async def apply_to_view(conn: AsyncConnection, event: EventEnvelope, data: EventData) -> uuid.UUID | None:
    """Keep integrations' view of incidents current; returns the incident the event is about."""
    if isinstance(data, IncidentCreated | IncidentStateChanged | IncidentUpdated):
        incident_id = uuid.UUID(data.incident_id)
        if data.incident is not None:
            await apply_snapshot(conn, db.known_incidents, event.tenant_id, data.incident)
            return incident_id
        # History written before snapshots: a change over an older version of a known incident.
        if isinstance(data, IncidentStateChanged):
            values: dict[str, Any] = {"state": data.to_state.value}
        elif isinstance(data, IncidentUpdated):
            values = {f: c.new for f, c in data.changes.items() if f in VIEW_FIELDS and c.new is not None}
        else:
            raise ValueError("an incident.created always carries its snapshot")
        if not await db.change_incident(
            conn, event.tenant_id, incident_id, event.aggregate_version, **values
        ):
            raise RetryLater(f"incident {data.incident_id} not known yet")
        return incident_id
    if isinstance(data, HypothesisGenerated):
        incident_id = uuid.UUID(data.incident_id)
        top = min(data.hypotheses, key=lambda h: h.rank, default=None)
        if top is not None and not await db.record_hypotheses(
            conn, event.tenant_id, incident_id, data.generation, top.claim, top.confidence
        ):
            raise RetryLater(f"incident {data.incident_id} not known yet")
        return incident_id
    return None


def render(
    kind: str, event: EventEnvelope, raw: bytes, incident: Any, base_url: str, interactive: str | None = None
) -> bytes:
    """What a webhook of this kind receives for this event (`interactive`: the id of a Slack webhook
    with a signing secret, whose messages carry buttons)."""
    if kind == WebhookKind.GENERIC.value:
        # The envelope exactly as it is on the log.
        return raw
    facts = IncidentFacts(
        id=str(incident.id),
        key=incident.key,
        title=incident.title,
        service_name=incident.service_name,
        severity=incident.severity,
        state=incident.state,
        top_hypothesis=incident.top_hypothesis,
        top_confidence=incident.top_confidence,
    )
    link = f"{base_url.rstrip('/')}/incidents/{incident.id}"
    if kind == WebhookKind.SLACK.value and interactive:
        return json.dumps(
            slack_message(event.type, event.data, facts, link, interactive=interactive)
        ).encode()
    return json.dumps(CHAT_MESSAGES[kind](event.type, event.data, facts, link)).encode()


async def enqueue_for(
    service: Service,
    settings: IntegrationsSettings,
    event: EventEnvelope,
    data: EventData,
    raw: bytes,
    notify: bool,
) -> int:
    """Apply the event to the view and queue its deliveries, in one transaction; how many were queued.
    With no webhook to send it to (most events of most tenants), the view's one statement is applied
    on its own, with no BEGIN and COMMIT around it."""
    hooks: list[Any] = []
    if notify and event.type in NOTIFIED:
        async with service.single_statements.connect() as conn:
            hooks = await db.subscribed_webhooks(conn, event.tenant_id, event.type, event.occurred_at)
    if not hooks:
        async with service.single_statements.connect() as conn:
            await apply_to_view(conn, event, data)
        return 0
    async with service.engine.begin() as conn:
        incident_id = await apply_to_view(conn, event, data)
        if incident_id is None:
            return 0
        incident = await db.incident(conn, incident_id)
        if incident is None or incident.tenant_id != event.tenant_id:
            raise RetryLater(f"incident {incident_id} not known yet")
        now = datetime.now(UTC)
        rows = [
            {
                "id": _uuid7(),
                "tenant_id": event.tenant_id,
                "webhook_id": hook.id,
                "event_id": event.id,
                "event_type": event.type,
                "incident_id": incident_id,
                "body": render(
                    hook.kind,
                    event,
                    raw,
                    incident,
                    settings.public_base_url,
                    str(hook.id) if hook.secret_encrypted is not None else None,
                ),
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for hook in hooks
        ]
        await db.enqueue(conn, rows)
    return len(rows)


# ---- sending


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


class TargetRefused(Exception):
    pass


async def pin_target(url: str, allow_private: bool) -> Target:
    """Resolve the host, check every address, and aim the request at a checked one."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError("the host did not resolve")
    if not all(address_allowed(a, allow_private) for a in addresses):
        raise TargetRefused("the webhook's host resolves to a non-public address")
    headers = {"Host": parsed.netloc.decode()}
    extensions = {"sni_hostname": host} if parsed.scheme == "https" and addresses[0] != host else {}
    return Target(str(parsed.copy_with(host=addresses[0])), headers, extensions)


def scrub(message: str, url: str) -> str:
    """An error message without the URL, its path or its query: a webhook URL can be a credential
    (a Slack webhook's is), and the error is shown to admins and logged."""
    parsed = httpx.URL(url)
    secrets = [
        url,
        parsed.raw_path.decode(errors="replace"),
        parsed.path,
        parsed.query.decode(errors="replace"),
    ]
    for secret in sorted(filter(lambda part: len(part) > 1, secrets), key=len, reverse=True):
        message = message.replace(secret, "<redacted>")
    return message


class DeliveryLoop:
    def __init__(self, service: Service, settings: IntegrationsSettings, box: SecretBox) -> None:
        self.service, self.settings, self.box = service, settings, box
        self.wake = asyncio.Event()
        self._in_flight: Counter[uuid.UUID] = Counter()
        self._sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def kick(self) -> None:
        self.wake.set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            # A fresh connection per delivery: requests go to pinned addresses, and a pooled
            # connection must never carry a request for another host name.
            limits=httpx.Limits(max_keepalive_connections=0, max_connections=None),
        )
        self._task = asyncio.create_task(self.run(), name="integrations-deliveries")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def run(self) -> None:
        while True:
            self.wake.clear()
            delay = self.settings.poll_seconds
            try:
                for row in await self._claim():
                    task = asyncio.create_task(self._deliver(row))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                delay = await self._until_next_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("delivery_poll_failed", error=str(exc))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=delay)

    def _saturated(self) -> list[uuid.UUID]:
        per_endpoint = self.settings.webhook_concurrency_per_endpoint
        return [w for w, n in self._in_flight.items() if n >= per_endpoint]

    async def _claim(self) -> list[Any]:
        free = self.settings.webhook_concurrency - len(self._sending)
        if free <= 0:
            return []
        per_endpoint = self.settings.webhook_concurrency_per_endpoint
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        async with self.service.engine.begin() as conn:
            # One replica claims at a time and counts what every replica is sending: the limit
            # per webhook holds however many replicas there are.
            await db.lock_claims(conn)
            sending = await db.sending_now(conn, now)
            saturated = [webhook for webhook, n in sending.items() if n >= per_endpoint]
            candidates = await db.claim_due(conn, now, saturated, free * 4)
            picked = pick_deliveries([(c.id, c.webhook_id) for c in candidates], sending, free, per_endpoint)
            if not picked:
                return []
            rows = await db.lease_deliveries(conn, picked, now + lease, now)
        for row in rows:
            self._in_flight[row.webhook_id] += 1
        return list(rows)

    async def _until_next_due(self) -> float:
        """Seconds until a delivery this replica could claim comes due (0: one is due now)."""
        if len(self._sending) >= self.settings.webhook_concurrency:
            return self.settings.poll_seconds  # woken when a send finishes
        async with self.service.engine.connect() as conn:
            due = await db.next_due(conn, self._saturated())
        if due is None:
            return self.settings.poll_seconds
        return min(self.settings.poll_seconds, max(0.0, (due - datetime.now(UTC)).total_seconds()))

    async def _deliver(self, row: Any) -> None:
        try:
            with structlog.contextvars.bound_contextvars(
                delivery_id=str(row.id), webhook_id=str(row.webhook_id), tenant_id=row.tenant_id
            ):
                try:
                    outcome = await self._send(row)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("delivery_crashed")
                    outcome = Outcome(False, None, f"{type(exc).__name__}", retry=True)
                await self._record(row, outcome)
        finally:
            self._in_flight[row.webhook_id] -= 1
            if self._in_flight[row.webhook_id] <= 0:
                del self._in_flight[row.webhook_id]
            self.wake.set()

    async def _send(self, row: Any) -> Outcome:
        async with self.service.engine.connect() as conn:
            hook = await db.webhook(conn, row.tenant_id, row.webhook_id)
        if hook is None or not hook.enabled:
            return Outcome(False, None, "the webhook is disabled", retry=False)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if hook.kind == WebhookKind.GENERIC.value:
            secret = self.box.open(hook.secret_encrypted)
            headers[SIGNATURE_HEADER] = signature_header(secret, int(time.time()), row.body)
            headers[EVENT_HEADER] = row.event_type
            headers[DELIVERY_HEADER] = str(row.id)
        timeout = self.settings.webhook_timeout_seconds
        try:
            # One deadline for everything, resolution included: httpx's timeouts are per operation, and
            # an endpoint trickling its answer a byte at a time would never trip them.
            async with asyncio.timeout(timeout):
                target = await pin_target(hook.url, self.settings.webhook_allow_private_targets)
                assert self._client is not None
                async with self._client.stream(
                    "POST",
                    target.url,
                    content=row.body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response:
                    status = response.status_code
                    answer = b""
                    async for chunk in response.aiter_bytes():
                        answer += chunk
                        if len(answer) >= 512:
                            break
        except TargetRefused as exc:
            return Outcome(False, None, str(exc), retry=False)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(False, None, f"no answer within {timeout:g} s", retry=True)
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(False, None, scrub(f"{type(exc).__name__}: {exc}", hook.url)[:300], retry=True)
        if 200 <= status < 300:
            return Outcome(True, status, None, retry=False)
        text = answer[:512].decode(errors="replace").strip()
        return Outcome(
            False, status, f"HTTP {status}" + (f": {text}" if text else ""), retry=retryable(status)
        )

    async def _record(self, row: Any, outcome: Outcome) -> None:
        delay = backoff_seconds(
            row.attempts,
            self.settings.webhook_backoff_base_seconds,
            self.settings.webhook_backoff_max_seconds,
            random.random(),  # noqa: S311 - jitter, not a secret
        )
        values = delivery_after(
            outcome,
            row.attempts,
            self.settings.webhook_max_attempts,
            timedelta(seconds=delay),
            datetime.now(UTC),
        )
        log.info(
            "webhook_delivery",
            outcome=values["status"],
            attempt=row.attempts,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        async with self.service.engine.begin() as conn:
            await db.record_attempt(conn, row.id, values)
