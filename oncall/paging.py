"""Escalations at work: incidents start them (the `oncall_escalator` consumer), a timer loop fires
their steps, a notifier sends the notifications, and the acknowledge link stops them.

Timers are rows of `oncall.escalations` with a due time, claimed with `FOR UPDATE SKIP LOCKED`: the
step's pages, its notifications, the escalation's next due time and the events (in the outbox) are
written in the transaction that holds the claim, so a step is recorded as fired exactly when its
events exist. A replica that dies before its commit leaves the row due (another replica, or itself
restarted, fires it at its next look); after the commit nothing fires it again. Replicas skip the
rows another holds, so no step waits for a slow replica and none fires twice.

Notifications are sent at least once (a sender that dies between sending and recording leaves its
lease to run out, and the notification is sent again, with the same `SRE-Copilot-Delivery` id for
webhooks): a network send cannot share a transaction with the database."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
import socket
import time as clock
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import (
    Caller,
    CommandFailed,
    ErrorCode,
    IncidentAccepted,
    TransitionIncident,
)
from contracts.envelope import EventEnvelope
from contracts.events import (
    EscalationStarted,
    EscalationStepReached,
    EscalationStopped,
    EventData,
    IncidentCreated,
    IncidentSnapshot,
    IncidentState,
    IncidentStateChanged,
    PageAcknowledged,
    PageNotified,
    Role,
)
from contracts.oncall import ChannelKind
from oncall import db
from oncall.domain import (
    PageFacts,
    ack_token,
    attempted,
    layers_of,
    policy_of,
    rules_of,
    schedule_of,
    slack_blocks,
    stored_overrides,
    subject,
    text_body,
)
from oncall.escalation import (
    Escalation,
    Target,
    TargetKind,
    Team,
    decide,
    people,
    route,
)
from oncall.schedule import Schedule, on_call_at
from oncall.settings import OncallSettings
from runtime.commands import CommandClient
from runtime.outbox import stage
from runtime.service import Service
from runtime.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header

log = structlog.get_logger(__name__)

PAGES_SENT = Counter(
    "sre_copilot_oncall_notifications",
    "Notifications of pages, by channel and outcome (delivered or failed).",
    ["channel", "outcome"],
)
ACK_SECONDS = Histogram(
    "sre_copilot_oncall_time_to_acknowledge_seconds",
    "From an escalation's start to the acknowledgement of one of its pages.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)
ESCALATIONS_EXHAUSTED = Counter(
    "sre_copilot_oncall_escalations_exhausted",
    "Escalations that reached the last step of their last round.",
)
# Someone moving the incident on (to investigating, without acknowledging first) has seen it too.
STOPPING_STATES = {
    IncidentState.ACKNOWLEDGED: "acknowledged",
    IncidentState.INVESTIGATING: "investigating",
    IncidentState.RESOLVED: "resolved",
}
NO_POLICY = uuid.UUID(int=0)
# What auth's events say of a person, for oncall's view (the consumer keeps one user's events in order).
PERSON_STATUS = {
    "user.created": "active",
    "user.invited": "invited",
    "user.activated": "active",
    "user.reactivated": "active",
    "user.deactivated": "deactivated",
}
BATCH = 50


def new_id() -> uuid.UUID:
    from uuid6 import uuid7

    return uuid.UUID(str(uuid7()))


async def schedules_for(conn: AsyncConnection, tenant_id: str, ids: set[str]) -> dict[str, Schedule]:
    """The schedules of these ids (of this tenant), with their overrides; unknown ids are left out."""
    rows = await db.schedules_in(conn, tenant_id, ids)
    overrides = await db.overrides_of(conn, [r.id for r in rows])
    return {str(r.id): schedule_of(layers_of(r), stored_overrides(overrides[r.id])) for r in rows}


async def teams_for(conn: AsyncConnection, tenant_id: str, ids: set[str]) -> dict[str, Team]:
    """The teams of these ids (of this tenant); unknown ids are left out."""
    rows = await db.teams_in(conn, tenant_id, ids)
    return {str(r.id): Team(tuple(r.members), str(r.schedule_id) if r.schedule_id else None) for r in rows}


async def resolver(
    conn: AsyncConnection, tenant_id: str, targets: list[Target], now: datetime
) -> tuple[Callable[[str], str | None], dict[str, Team]]:
    """What `people` needs for these targets: who each schedule (named, or a team's) has on call
    now, and the teams."""
    teams = await teams_for(conn, tenant_id, {t.id for t in targets if t.kind is TargetKind.TEAM})
    schedule_ids = {t.id for t in targets if t.kind is TargetKind.SCHEDULE}
    schedule_ids |= {team.schedule_id for team in teams.values() if team.schedule_id is not None}
    return on_call_now(await schedules_for(conn, tenant_id, schedule_ids), now), teams


def on_call_now(found: dict[str, Schedule], now: datetime) -> Callable[[str], str | None]:
    def who(schedule_id: str) -> str | None:
        schedule = found.get(schedule_id)
        answer = on_call_at(schedule, now) if schedule is not None else None
        return answer.user_id if answer else None

    return who


def _event(
    tenant_id: str, incident_id: str, data: EventData, kind: str, correlation_id: str
) -> EventEnvelope:
    return EventEnvelope(
        type=kind,
        tenant_id=tenant_id,
        aggregate_id=incident_id,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json"),
    )


def _facts(snapshot: IncidentSnapshot) -> dict[str, Any]:
    return {
        "key": snapshot.key,
        "title": snapshot.title,
        "service_name": snapshot.service_name,
        "severity": snapshot.severity.value,
    }


async def stop(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, reason: str, correlation_id: str
) -> list[EventEnvelope]:
    """Stop an active escalation and cancel its pending notifications; its event, if it was active."""
    now = datetime.now(UTC)
    row = await db.stop_escalation(conn, tenant_id, incident_id, reason, now)
    if row is None:
        return []
    await db.cancel_notifications(conn, incident_id, now)
    data = EscalationStopped(incident_id=str(incident_id), policy_id=str(row.policy_id), reason=reason)
    return [_event(tenant_id, str(incident_id), data, "escalation.stopped", correlation_id)]


class Paging:
    """The timer loop and the notifier of one replica, and what the consumer does with an event."""

    def __init__(self, service: Service, settings: OncallSettings) -> None:
        self.service, self.settings = service, settings
        self.commands = CommandClient(lambda: service.broker.connection, settings.command_timeout_seconds)
        self.wake = asyncio.Event()
        self.key = b""
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.key = await self._signing_key()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.notify_timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )
        self._tasks = [
            asyncio.create_task(self._loop(self.fire_due), name="oncall-escalations"),
            asyncio.create_task(self._loop(self.send_due), name="oncall-notifications"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def kick(self) -> None:
        self.wake.set()

    async def _signing_key(self) -> bytes:
        if self.settings.ack_signing_key is not None:
            return self.settings.ack_signing_key.get_secret_value().encode()
        async with self.service.engine.begin() as conn:
            stored = await db.shared_secret(conn, "ack", secrets.token_urlsafe(32))
        return stored.encode()

    async def _loop(self, work: Callable[[], Awaitable[int]]) -> None:
        while True:
            busy = 0
            try:
                busy = await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("oncall_loop_failed", error=str(exc), work=work.__name__)
            if busy < BATCH:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.escalation_poll_seconds)

    async def _publish(self, events: list[EventEnvelope]) -> None:
        if events:
            with contextlib.suppress(Exception):  # the relay publishes what the fast path could not
                await self.service.relay.publish_now(events)

    # ---- events in

    async def apply(self, event: EventEnvelope, data: EventData, act: bool) -> None:
        if isinstance(data, IncidentCreated):
            events = await self._start(event, data.incident, data.labels) if act else []
        else:
            async with self.service.engine.begin() as conn:
                events = await self._apply_change(conn, event, data)
        await self._publish(events)
        if events:
            self.kick()

    async def _apply_change(
        self, conn: AsyncConnection, event: EventEnvelope, data: EventData
    ) -> list[EventEnvelope]:
        """A person's status, or an incident's state change that stops its escalation."""
        status = PERSON_STATUS.get(event.type)
        if status is not None:
            user_id = getattr(data, "user_id", "")
            await db.save_person(conn, event.tenant_id, user_id, status, event.occurred_at)
            return []
        if not (isinstance(data, IncidentStateChanged) and data.to_state in STOPPING_STATES):
            return []
        incident_id = uuid.UUID(data.incident_id)
        events = await stop(
            conn, event.tenant_id, incident_id, STOPPING_STATES[data.to_state], event.correlation_id
        )
        await stage(conn, db.outbox, events)
        # Arrived before its incident.created (order is not guaranteed): a stopped row keeps the
        # late creation from starting an escalation nobody needs.
        await db.insert_escalation(
            conn,
            {
                "incident_id": incident_id,
                "tenant_id": event.tenant_id,
                "policy_id": NO_POLICY,
                "policy": {"steps": [], "repeat": 0},
                "incident": {},
                "started_at": event.occurred_at,
                "state": "stopped",
                "fired": [],
                "stopped_reason": STOPPING_STATES[data.to_state],
                "updated_at": datetime.now(UTC),
            },
        )
        return events

    async def _start(
        self, event: EventEnvelope, incident: IncidentSnapshot, labels: dict[str, str]
    ) -> list[EventEnvelope]:
        if incident.state is not IncidentState.DETECTED:
            return []
        # Older than what retention keeps (a replayed consumer): its escalation, if it had one, may
        # have been pruned, and starting it again would page people for an incident long gone.
        if incident.created_at < datetime.now(UTC) - timedelta(days=self.settings.escalation_retention_days):
            return []
        # Most incidents route to no policy (a tenant without routing, or none that matches): that
        # is known after one statement, with no transaction around it.
        async with self.service.single_statements.connect() as conn:
            routing = await db.tenant_routing(conn, event.tenant_id)
        rules, default = rules_of(routing)
        chosen = route(rules, default, incident.service_name, incident.severity.value, labels)
        if chosen is None:
            return []
        async with self.service.engine.begin() as conn:
            return await self._start_routed(conn, event, incident, uuid.UUID(chosen))

    async def _start_routed(
        self, conn: AsyncConnection, event: EventEnvelope, incident: IncidentSnapshot, chosen: uuid.UUID
    ) -> list[EventEnvelope]:
        policy = await db.policy(conn, event.tenant_id, chosen)
        if policy is None:
            log.warning("routed_policy_missing", policy_id=chosen, incident_id=incident.id)
            return []
        now = datetime.now(UTC)
        inserted = await db.insert_escalation(
            conn,
            {
                "incident_id": uuid.UUID(incident.id),
                "tenant_id": event.tenant_id,
                "policy_id": policy.id,
                "policy": {"steps": policy.steps, "repeat": policy.repeat, "name": policy.name},
                "incident": _facts(incident),
                "started_at": now,
                "state": "active",
                "fired": [],
                "next_due_at": now,
                "updated_at": now,
            },
        )
        if not inserted:
            return []
        data = EscalationStarted(incident_id=incident.id, policy_id=str(policy.id), policy_name=policy.name)
        events = [_event(event.tenant_id, incident.id, data, "escalation.started", event.correlation_id)]
        await stage(conn, db.outbox, events)
        return events

    # ---- timers

    async def fire_due(self) -> int:
        """Fire the steps that have come due, one transaction for the rows claimed."""
        now = datetime.now(UTC)
        events: list[EventEnvelope] = []
        async with self.service.engine.begin() as conn:
            rows = await db.claim_due_escalations(conn, now, BATCH)
            for row in rows:
                # One escalation that cannot fire (a bug, a bad stored policy) stays due and is
                # logged; the others in the batch fire.
                try:
                    async with conn.begin_nested():
                        events += await self._fire(conn, row, now)
                except Exception:
                    log.exception("escalation_step_failed", incident_id=str(row.incident_id))
            await stage(conn, db.outbox, events)
        await self._publish(events)
        return len(rows)

    async def _fire(self, conn: AsyncConnection, row: Any, now: datetime) -> list[EventEnvelope]:
        policy = policy_of(row.policy)
        fired = {(int(r), int(s)) for r, s in row.fired}
        decision = decide(policy, Escalation(row.started_at, False, frozenset(fired)), now)
        incident_id, tenant_id = str(row.incident_id), row.tenant_id
        events: list[EventEnvelope] = []
        if not decision.due:
            # Nothing due at its due time: the last step's wait ran out, nobody acknowledged.
            await db.update_escalation(
                conn,
                row.incident_id,
                {"state": "stopped", "stopped_reason": "exhausted", "next_due_at": None, "updated_at": now},
            )
            stopped = EscalationStopped(
                incident_id=incident_id, policy_id=str(row.policy_id), reason="exhausted"
            )
            return [_event(tenant_id, incident_id, stopped, "escalation.stopped", incident_id)]
        who, teams = await resolver(conn, tenant_id, [t for d in decision.due for t in d.targets], now)
        next_at = decision.next_at
        for due in decision.due:
            users = await self._active(conn, tenant_id, people(due.targets, who, teams))
            await self._page(conn, row, due.round, due.step, users, now)
            fired.add((due.round, due.step))
            if due.last:
                ESCALATIONS_EXHAUSTED.inc()
                next_at = due.due_at + policy.steps[-1].wait
            data = EscalationStepReached(
                incident_id=incident_id,
                policy_id=str(row.policy_id),
                round=due.round,
                step=due.step,
                user_ids=users,
                last=due.last,
            )
            events.append(_event(tenant_id, incident_id, data, "escalation.step_reached", incident_id))
        await db.update_escalation(
            conn, row.incident_id, {"fired": sorted(fired), "next_due_at": next_at or now, "updated_at": now}
        )
        log.info("escalation_steps_fired", incident_id=incident_id, steps=len(decision.due))
        return events

    async def _active(self, conn: AsyncConnection, tenant_id: str, users: list[str]) -> list[str]:
        """Those of `users` not deactivated (as far as oncall's view of people knows)."""
        if not users:
            return users
        gone = await db.deactivated(conn, tenant_id, users)
        return [u for u in users if u not in gone]

    async def _page(
        self, conn: AsyncConnection, row: Any, round_: int, step: int, users: list[str], now: datetime
    ) -> None:
        if not users:
            return
        methods = await db.contact_methods_of(conn, row.tenant_id, users)
        expires = now + timedelta(seconds=self.settings.ack_link_ttl_seconds)
        for user in users:
            page_id = new_id()
            await db.insert_page(
                conn,
                {
                    "id": page_id,
                    "tenant_id": row.tenant_id,
                    "incident_id": row.incident_id,
                    "user_id": user,
                    "round": round_,
                    "step": step,
                    "created_at": now,
                    "expires_at": expires,
                },
            )
            rows = [
                {
                    "id": new_id(),
                    "tenant_id": row.tenant_id,
                    "page_id": page_id,
                    "incident_id": row.incident_id,
                    "contact_method_id": m.id,
                    "status": "pending",
                    "due_at": now + timedelta(minutes=m.delay_minutes),
                    "attempts": 0,
                    "updated_at": now,
                }
                for m in methods
                if m.user_id == user
            ]
            await db.insert_notifications(conn, rows)

    # ---- notifications

    async def send_due(self) -> int:
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.notify_timeout_seconds + 30)
        async with self.service.engine.begin() as conn:
            claimed = await db.claim_due_notifications(conn, now, now + lease, BATCH)
        await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: Any) -> None:
        async with self.service.engine.connect() as conn:
            escalation = await db.escalation(conn, row.incident_id)
            page = await db.page(conn, row.page_id)
            method = await db.contact_method_by_id(conn, row.contact_method_id)
        now = datetime.now(UTC)
        if escalation is None or escalation.state != "active" or page is None or method is None:
            async with self.service.engine.begin() as conn:
                await db.update_notification(conn, row.id, {"status": "cancelled", "updated_at": now})
            return
        expires = int(page.expires_at.timestamp())
        base = self.settings.public_base_url.rstrip("/")
        facts = PageFacts(
            incident_id=str(row.incident_id),
            key=escalation.incident.get("key", ""),
            title=escalation.incident.get("title", ""),
            service_name=escalation.incident.get("service_name", ""),
            severity=escalation.incident.get("severity", ""),
            incident_url=f"{base}/incidents/{row.incident_id}",
            ack_url=f"{base}/api/v1/pages/{page.id}/ack?token={ack_token(self.key, str(page.id), expires)}",
        )
        error: str | None = None
        try:
            async with asyncio.timeout(self.settings.notify_timeout_seconds):
                await self._send(ChannelKind(method.kind), method, facts, row, page)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = f"no answer within {self.settings.notify_timeout_seconds:g} s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        outcome = attempted(error is None, row.attempts, self.settings.notify_max_attempts, datetime.now(UTC))
        final = outcome.final
        values: dict[str, Any] = {"lease_until": None, "last_error": error, "updated_at": datetime.now(UTC)}
        if final:
            values["status"] = outcome.status
        else:
            values["due_at"] = outcome.retry_at
        events: list[EventEnvelope] = []
        async with self.service.engine.begin() as conn:
            await db.update_notification(conn, row.id, values)
            if final:
                data = PageNotified(
                    incident_id=str(row.incident_id),
                    page_id=str(page.id),
                    user_id=page.user_id,
                    channel=method.kind,
                    delivered=error is None,
                    error=error,
                )
                events = [
                    _event(row.tenant_id, str(row.incident_id), data, "page.notified", str(row.incident_id))
                ]
                await stage(conn, db.outbox, events)
        if final:
            PAGES_SENT.labels(method.kind, "delivered" if error is None else "failed").inc()
        log.info("page_notification", channel=method.kind, attempt=row.attempts, error=error)
        await self._publish(events)

    async def _send(self, kind: ChannelKind, method: Any, facts: PageFacts, row: Any, page: Any) -> None:
        if kind is ChannelKind.EMAIL:
            message = EmailMessage()
            message["From"] = self.settings.smtp_from
            message["To"] = method.address
            message["Subject"] = subject(facts)
            message.set_content(text_body(facts))
            password = self.settings.smtp_password
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                username=self.settings.smtp_username,
                password=password.get_secret_value() if password else None,
                start_tls=self.settings.smtp_starttls,
                timeout=self.settings.notify_timeout_seconds,
            )
            return
        assert self._client is not None
        if kind is ChannelKind.WEBHOOK:
            await self._check_target(method.address)
            body = json.dumps(
                {
                    "type": "page",
                    "page_id": str(page.id),
                    "user_id": page.user_id,
                    "incident": {
                        "id": facts.incident_id,
                        "key": facts.key,
                        "title": facts.title,
                        "service_name": facts.service_name,
                        "severity": facts.severity,
                    },
                    "subject": subject(facts),
                    "incident_url": facts.incident_url,
                    "ack_url": facts.ack_url,
                }
            ).encode()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature_header(method.secret or "", int(clock.time()), body),
                EVENT_HEADER: "page",
                DELIVERY_HEADER: str(row.id),
            }
            response = await self._client.post(method.address, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"HTTP {response.status_code}")
            return
        token = self.settings.slack_bot_token
        if token is None:
            raise RuntimeError("Slack is not configured (SLACK_BOT_TOKEN)")
        response = await self._client.post(
            f"{self.settings.slack_api_url.rstrip('/')}/chat.postMessage",
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            json={
                "channel": method.address,
                "text": subject(facts),
                "blocks": slack_blocks(facts, str(page.id) if self.settings.slack_signing_secret else None),
            },
        )
        answer = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200 or not answer.get("ok"):
            raise RuntimeError(f"Slack: {answer.get('error') or response.status_code}")

    async def _check_target(self, url: str) -> None:
        """A webhook goes to public addresses only, unless private targets are allowed."""
        if self.settings.notify_allow_private_targets:
            return
        parsed = httpx.URL(url)
        infos = await asyncio.get_running_loop().getaddrinfo(
            parsed.host, parsed.port or 443, type=socket.SOCK_STREAM
        )
        for info in infos:
            if not ipaddress.ip_address(str(info[4][0])).is_global:
                raise RuntimeError("the webhook's host resolves to a non-public address")

    # ---- acknowledgement

    async def acknowledge(
        self, page_id: uuid.UUID, correlation_id: str, note: str = "acknowledged from a page"
    ) -> Any:
        """The incident acknowledged as the paged person, then the page marked and the escalation
        stopped (one transaction). A page already acknowledged is a conflict."""
        async with self.service.engine.connect() as conn:
            page = await db.page(conn, page_id)
        if page is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "page not found")
        if page.acknowledged_at is not None:
            raise CommandFailed(ErrorCode.CONFLICT, "the page was acknowledged already")
        command = TransitionIncident(
            correlation_id=correlation_id,
            caller=Caller(tenant_id=page.tenant_id, user_id=page.user_id, role=Role.RESPONDER),
            incident_id=str(page.incident_id),
            to=IncidentState.ACKNOWLEDGED,
            note=note,
        )
        try:
            await self.commands.call(command, IncidentAccepted)
        except CommandFailed as exc:
            # Acknowledged or resolved meanwhile: the page's acknowledgement still counts.
            if exc.code is not ErrorCode.CONFLICT:
                raise
        now = datetime.now(UTC)
        async with self.service.engine.begin() as conn:
            marked = await db.mark_acknowledged(conn, page_id, now)
            if marked is None:
                raise CommandFailed(ErrorCode.CONFLICT, "the page was acknowledged already")
            escalation = await db.escalation(conn, page.incident_id)
            data = PageAcknowledged(
                incident_id=str(page.incident_id),
                page_id=str(page_id),
                user_id=page.user_id,
                acknowledged_at=now,
            )
            events = [
                _event(page.tenant_id, str(page.incident_id), data, "page.acknowledged", correlation_id)
            ]
            events += await stop(conn, page.tenant_id, page.incident_id, "acknowledged", correlation_id)
            await stage(conn, db.outbox, events)
        if escalation is not None:
            ACK_SECONDS.observe((now - escalation.started_at).total_seconds())
        await self._publish(events)
        return marked
