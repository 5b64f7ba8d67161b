"""Alertmanager (and Grafana) notifications, after the 202: each stored notification is worked on in
the background, in arrival order per tenant (a per-tenant advisory lock lets one replica at a time
work on a tenant's queue; tenants proceed side by side), and a restart resumes whatever was left.

For one notification, under the row lock of its group (tenant + groupKey): each alert is compared
with what was recorded for its fingerprint (a re-sent alert changes nothing and publishes nothing), a
firing alert joins the group's open incident or, when it has none, the open incident of another
group that a correlation rule matches (`alert.correlated`), or opens one (through
`cmd.incidents.create`, with an id derived from the notification, so a retry after a crash finds the
incident it made), every change
is published as `alert.attached`, and an incident whose alerts are all resolved is queued for
resolution. Resolutions run after that commit, with `system` as the actor."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from uuid6 import uuid7

from contracts.commands import (
    Caller,
    CommandFailed,
    CreateIncident,
    ErrorCode,
    IncidentAccepted,
    TransitionIncident,
)
from contracts.envelope import SYSTEM_ACTOR, EventEnvelope
from contracts.events import AlertAttached, AlertCorrelated, IncidentState, Role
from contracts.integrations import (
    AlertmanagerPayload,
    CorrelationRuleSpec,
    InboundSource,
    PagerDutyAlert,
    PagerDutyTrigger,
    PagerDutyUpdate,
    SilenceSpec,
)
from integrations import db
from integrations.domain import (
    FINAL_ERRORS,
    Candidate,
    Change,
    Correlation,
    Known,
    Plan,
    ReceivedAlert,
    Rule,
    Target,
    backoff_seconds,
    candidate_span,
    correlate,
    group_hash,
    inbound_gives_up,
    incident_description,
    incident_id_for,
    incident_service,
    incident_title,
    map_severity,
    normalise,
    pagerduty_group_key,
    pagerduty_notification,
    plan_alerts,
    silence_matches,
    source_of_group,
    with_known_starts,
)
from integrations.settings import IntegrationsSettings
from runtime.commands import CommandClient
from runtime.outbox import stage
from runtime.service import Service
from runtime.views import apply_snapshot

log = structlog.get_logger(__name__)

PAGERDUTY_ALERT: TypeAdapter[PagerDutyTrigger | PagerDutyUpdate] = TypeAdapter(PagerDutyAlert)


class InboundProcessor:
    def __init__(self, service: Service, settings: IntegrationsSettings) -> None:
        self.service, self.settings = service, settings
        self.commands = CommandClient(lambda: service.broker.connection, settings.command_timeout_seconds)
        self.wake = asyncio.Event()
        self._active: set[str] = set()
        self._slots = asyncio.Semaphore(settings.inbound_concurrency)
        self._working = asyncio.Semaphore(settings.inbound_parallel_notifications)
        self._task: asyncio.Task[None] | None = None
        self._tenant_tasks: set[asyncio.Task[None]] = set()

    def kick(self) -> None:
        self.wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="integrations-inbound")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._tenant_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                async with self.service.engine.connect() as conn:
                    tenants = await db.tenants_with_work(conn, datetime.now(UTC), 200)
                for tenant_id in tenants:
                    if tenant_id not in self._active:
                        self._active.add(tenant_id)
                        task = asyncio.create_task(self._drain(tenant_id))
                        self._tenant_tasks.add(task)
                        task.add_done_callback(self._tenant_tasks.discard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inbound_poll_failed", error=str(exc))
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.poll_seconds)
            except TimeoutError:
                pass

    async def _drain(self, tenant_id: str) -> None:
        """Work through one tenant's queue, oldest first, while this replica holds the tenant."""
        progressed = False
        try:
            async with self._slots, self.service.engine.connect() as lock_conn:
                held = await db.try_lock_inbound(lock_conn, tenant_id)
                await lock_conn.commit()
                if not held:
                    return
                try:
                    while await self._step(tenant_id):
                        progressed = True
                finally:
                    await db.unlock_inbound(lock_conn, tenant_id)
                    await lock_conn.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("inbound_tenant_failed", tenant_id=tenant_id, error=str(exc))
        finally:
            self._active.discard(tenant_id)
            if progressed:
                # A notification stored while this drain was finishing was skipped by the poll that
                # saw the tenant still active: look again now rather than at the next poll.
                self.kick()

    async def _step(self, tenant_id: str) -> bool:
        """Resolve what is queued for resolution, then work on the head of each alert group at
        once; False when there is nothing (due) left."""
        await self._resolve_pending(tenant_id)
        async with self.service.engine.connect() as conn:
            heads = await db.next_inbound(conn, tenant_id, self.settings.inbound_parallel_notifications)
        now = datetime.now(UTC)
        due = [row for row in heads if row.next_attempt_at <= now]
        if not due:
            return False
        return any(await asyncio.gather(*(self._attempt_in_context(row) for row in due)))

    async def _attempt_in_context(self, row: Any) -> bool:
        async with self._working:
            with structlog.contextvars.bound_contextvars(
                correlation_id=row.correlation_id, tenant_id=row.tenant_id, delivery_id=str(row.id)
            ):
                return await self._attempt(row)

    async def _attempt(self, row: Any) -> bool:
        try:
            events = await self.process(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempts = row.attempts + 1
            failed = inbound_gives_up(exc, attempts, self.settings.inbound_max_attempts)
            jitter = random.random()  # noqa: S311 - spreading retries, not a secret
            delay = backoff_seconds(attempts, self.settings.inbound_backoff_base_seconds, 300.0, jitter)
            log.warning("inbound_attempt_failed", attempt=attempts, final=failed, error=str(exc))
            now = datetime.now(UTC)
            async with self.service.engine.begin() as conn:
                await db.inbound_failed(
                    conn,
                    row.id,
                    attempts,
                    f"{type(exc).__name__}: {exc}",
                    failed,
                    now + timedelta(seconds=delay),
                    now,
                )
            # A failed notification no longer holds up the ones behind it.
            return failed
        if events:
            await self.service.relay.publish_now(events)
        return True

    async def process(self, row: Any) -> list[EventEnvelope]:
        """Apply one stored notification; returns the events to publish after commit."""
        if row.source == InboundSource.PAGERDUTY.value:
            event = PAGERDUTY_ALERT.validate_python(row.payload)
            if isinstance(event, PagerDutyUpdate) and event.event_action == "acknowledge":
                await self._acknowledge(row, event)
                return []
            # A resolve names its alert by dedup_key only: it ends whatever instance is recorded.
            return await self._apply(row, pagerduty_notification(event, row.received_at), {"resolved"})
        payload = AlertmanagerPayload.model_validate(row.payload)
        if row.source == InboundSource.JSON.value:
            # A generic sender re-sending "firing" means the same alert still fires, not a new one.
            return await self._apply(row, payload, {"firing", "resolved"})
        return await self._apply(row, payload, set())

    async def _apply(self, row: Any, payload: AlertmanagerPayload, by_key: set[str]) -> list[EventEnvelope]:
        """`by_key`: the statuses whose alerts are named by their key alone (domain.with_known_starts)."""
        tenant_id, now = row.tenant_id, datetime.now(UTC)
        actor = f"integration:{row.key_id}"
        alerts = [normalise(a) for a in payload.alerts]
        group = group_hash(payload.groupKey)
        async with self.service.engine.begin() as conn:
            group_row = await db.lock_group(conn, tenant_id, group, payload.groupKey, now)
            current: uuid.UUID | None = group_row.incident_id
            open_incident = None
            if current is not None:
                known_incident = await db.incident(conn, current)
                if known_incident is None or known_incident.state != IncidentState.RESOLVED.value:
                    open_incident = current
            known = {
                r.fingerprint: Known(r.status, r.starts_at, r.incident_id)
                for r in await db.known_alerts(conn, tenant_id, group, [a.fingerprint for a in alerts])
            }
            alerts = with_known_starts(alerts, known, by_key)
            plan = plan_alerts(alerts, known, open_incident)
            plan, silenced, silenced_by = await self._silence(conn, row, payload, plan)
            opened: uuid.UUID | None = None
            correlation = None
            if plan.opener is not None:
                correlation = await self._correlation(conn, row, payload, plan, group)
            if correlation is not None:
                await db.set_group_incident(conn, tenant_id, group, correlation.incident_id, now)
            elif plan.opener is not None:
                opened = await self._open_incident(conn, row, payload, plan.opener, group, current, actor)
            joined = correlation.incident_id if correlation is not None else None
            events: list[EventEnvelope] = []
            if correlation is not None:
                events.append(self._correlated_event(row, actor, correlation))
            resolved_into: set[uuid.UUID] = set()
            for change in plan.changes:
                alert = change.alert
                target = {
                    Target.CURRENT: open_incident,
                    Target.NEW: opened or joined,
                    Target.OWN: change.incident_id,
                    Target.NONE: None,
                }[change.target]
                await db.save_alert(
                    conn,
                    {
                        "tenant_id": tenant_id,
                        "group_hash": group,
                        "fingerprint": alert.fingerprint,
                        "incident_id": target,
                        # Not "firing": once the window is over, the same alert sent again is new.
                        "status": "silenced" if alert.fingerprint in silenced else alert.status,
                        "alertname": alert.alertname,
                        "starts_at": alert.starts_at,
                        "ends_at": alert.ends_at,
                        "labels": alert.labels,
                        "annotations": alert.annotations,
                        "generator_url": alert.generator_url,
                        "updated_at": now,
                    },
                )
                if target is None:
                    continue
                if alert.status == "resolved":
                    resolved_into.add(target)
                events.append(
                    EventEnvelope(
                        type="alert.attached",
                        tenant_id=tenant_id,
                        aggregate_id=str(target),
                        actor=actor,
                        correlation_id=row.correlation_id,
                        causation_id=str(row.id),
                        data=AlertAttached(
                            incident_id=str(target),
                            fingerprint=alert.fingerprint,
                            status=alert.status,
                            alertname=alert.alertname,
                            labels=alert.labels,
                            annotations=alert.annotations,
                            starts_at=alert.starts_at,
                            ends_at=alert.ends_at,
                            generator_url=alert.generator_url,
                        ).model_dump(mode="json"),
                    )
                )
            attachments = [e for e in events if e.type == "alert.attached"]
            queued = await self._queue_resolutions(conn, tenant_id, resolved_into, row.correlation_id, now)
            await stage(conn, db.outbox, events)
            await db.inbound_processed(
                conn,
                row.id,
                row.attempts + 1,
                now,
                {
                    "opened_incident_id": str(opened) if opened else None,
                    "incident_id": str(into) if (into := opened or joined or open_incident) else None,
                    "attached": sum(1 for e in attachments if e.data["status"] == "firing"),
                    "resolved": sum(1 for e in attachments if e.data["status"] == "resolved"),
                    "duplicates": plan.duplicates,
                    "unattached": sum(1 for c in plan.changes if c.target is Target.NONE),
                    "resolving": [str(i) for i in queued],
                    "silenced": len(silenced),
                    "silences": sorted(silenced_by),
                    "correlated": {
                        "rule_id": correlation.rule.id,
                        "incident_id": str(correlation.incident_id),
                        "reason": correlation.reason,
                    }
                    if correlation is not None
                    else None,
                },
            )
        return events

    async def _correlation(
        self, conn: AsyncConnection, row: Any, payload: AlertmanagerPayload, plan: Plan, group: str
    ) -> Correlation | None:
        """The open incident of another group that this notification's new alerts join by a
        correlation rule, or None (no rule enabled, or no match: a new incident opens)."""
        rules = [
            Rule.of(str(r.id), CorrelationRuleSpec.model_validate(r.spec))
            for r in await db.tenant_correlation_rules(conn, row.tenant_id)
        ]
        rules = [r for r in rules if r.enabled]
        source = source_of_group(payload.groupKey)
        if not any(r.applies_to(source) for r in rules):
            return None
        # Groups are worked on side by side: the first of two correlating alerts must have committed
        # its incident before the second looks (held until this transaction ends).
        await db.lock_correlation(conn, row.tenant_id)
        new = [c.alert for c in plan.changes if c.target is Target.NEW]
        earliest, latest = candidate_span([a.starts_at for a in new], max(r.window for r in rules))
        rows = await db.correlation_candidates(
            conn, row.tenant_id, earliest, latest, self.settings.correlation_candidates
        )
        candidates = [
            Candidate(
                fingerprint=r.fingerprint,
                group_hash=r.group_hash,
                source=source_of_group(r.group_key),
                alertname=r.alertname,
                labels=r.labels,
                starts_at=r.starts_at,
                incident_id=r.incident_id,
            )
            for r in rows
        ]
        found = correlate(rules, new, source, group, candidates)
        if found is not None:
            log.info(
                "alerts_correlated", incident_id=str(found.incident_id), rule_id=found.rule.id, group=group
            )
        return found

    @staticmethod
    def _correlated_event(row: Any, actor: str, found: Correlation) -> EventEnvelope:
        return EventEnvelope(
            type="alert.correlated",
            tenant_id=row.tenant_id,
            aggregate_id=str(found.incident_id),
            actor=actor,
            correlation_id=row.correlation_id,
            causation_id=str(row.id),
            data=AlertCorrelated(
                incident_id=str(found.incident_id),
                rule_id=found.rule.id,
                rule_name=found.rule.name,
                labels=found.labels,
                window_minutes=int(found.rule.window.total_seconds() // 60),
                fingerprint=found.alert.fingerprint,
                alertname=found.alert.alertname,
                source=found.source.value,
                matched_fingerprint=found.matched.fingerprint,
                matched_alertname=found.matched.alertname,
                matched_source=found.matched.source.value,
                reason=found.reason,
            ).model_dump(mode="json"),
        )

    async def _silence(
        self, conn: AsyncConnection, row: Any, payload: AlertmanagerPayload, plan: Plan
    ) -> tuple[Plan, set[str], set[str]]:
        """The plan with every firing alert that an active silence matches (when it arrived) attached
        to nothing; the fingerprints silenced, and by which silences."""
        firing = [
            c for c in plan.changes if c.alert.status == "firing" and c.target in (Target.CURRENT, Target.NEW)
        ]
        if not firing:
            return plan, set(), set()
        specs = [
            (str(r.id), SilenceSpec.model_validate(r.spec))
            for r in await db.tenant_silences(conn, row.tenant_id)
        ]
        if not specs:
            return plan, set(), set()
        silenced: set[str] = set()
        silenced_by: set[str] = set()
        changes: list[Change] = []
        for change in plan.changes:
            if change in firing:
                service = incident_service(change.alert, payload)
                hits = {
                    silence_id
                    for silence_id, spec in specs
                    if silence_matches(spec, change.alert.labels, service, row.received_at)
                }
                if hits:
                    silenced.add(change.alert.fingerprint)
                    silenced_by |= hits
                    changes.append(Change(change.alert, Target.NONE))
                    continue
            changes.append(change)
        return Plan(changes=changes, duplicates=plan.duplicates), silenced, silenced_by

    async def _acknowledge(self, row: Any, event: PagerDutyUpdate) -> None:
        """An Events v2 acknowledge: the open incident of its dedup_key moves to `acknowledged` if it
        is still `detected`; anything else (no incident, already further along) is recorded as is."""
        tenant_id, now = row.tenant_id, datetime.now(UTC)
        group_key = pagerduty_group_key(event.dedup_key)
        outcome: dict[str, Any] = {"incident_id": None, "acknowledged": False}
        async with self.service.engine.begin() as conn:
            group_row = await db.lock_group(conn, tenant_id, group_hash(group_key), group_key, now)
            incident_id = group_row.incident_id
            known = await db.incident(conn, incident_id) if incident_id is not None else None
            if known is not None and known.state != IncidentState.RESOLVED.value:
                outcome["incident_id"] = str(incident_id)
            if known is not None and known.state == IncidentState.DETECTED.value:
                command = TransitionIncident(
                    correlation_id=row.correlation_id,
                    caller=Caller(
                        tenant_id=tenant_id, user_id=f"integration:{row.key_id}", role=Role.RESPONDER
                    ),
                    incident_id=str(incident_id),
                    to=IncidentState.ACKNOWLEDGED,
                    note="",
                )
                try:
                    accepted = await self.commands.call(command, IncidentAccepted)
                except CommandFailed as exc:
                    # Moved meanwhile (by a person, or by this very event before a crash): as it is.
                    if exc.code is not ErrorCode.CONFLICT:
                        raise
                    outcome["reason"] = exc.message
                else:
                    await apply_snapshot(conn, db.known_incidents, tenant_id, accepted.incident)
                    outcome["acknowledged"] = True
            await db.inbound_processed(conn, row.id, row.attempts + 1, now, outcome)

    async def _open_incident(
        self,
        conn: AsyncConnection,
        row: Any,
        payload: AlertmanagerPayload,
        opener: Any,
        group: str,
        previous: uuid.UUID | None,
        actor: str,
    ) -> uuid.UUID:
        incident_id = incident_id_for(row.id, group)
        command = CreateIncident(
            correlation_id=row.correlation_id,
            caller=Caller(tenant_id=row.tenant_id, user_id=actor, role=Role.RESPONDER),
            title=incident_title(opener, payload),
            description=incident_description(opener, payload),
            service_name=incident_service(opener, payload),
            severity=map_severity(opener.labels.get("severity") or payload.commonLabels.get("severity")),
            incident_id=str(incident_id),
            related_incident_id=str(previous) if previous else None,
            labels=dict(opener.labels),
        )
        accepted = await self.commands.call(command, IncidentAccepted)
        await apply_snapshot(conn, db.known_incidents, row.tenant_id, accepted.incident)
        await db.set_group_incident(conn, row.tenant_id, group, incident_id, datetime.now(UTC))
        log.info("incident_opened_from_alerts", incident_id=str(incident_id), related=str(previous))
        return incident_id

    async def _queue_resolutions(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        candidates: set[uuid.UUID],
        correlation_id: str,
        now: datetime,
    ) -> list[uuid.UUID]:
        if not candidates or not await db.auto_resolve(conn, tenant_id):
            return []
        queued = []
        for incident_id in sorted(candidates):
            known = await db.incident(conn, incident_id)
            if known is None or known.state == IncidentState.RESOLVED.value:
                continue
            if await db.firing_alerts_of(conn, incident_id) == 0:
                await db.queue_resolution(conn, incident_id, tenant_id, correlation_id, now)
                queued.append(incident_id)
        return queued

    async def _resolve_pending(self, tenant_id: str) -> None:
        async with self.service.engine.connect() as conn:
            rows = await db.queued_resolutions(conn, tenant_id)
        for pending in rows:
            async with self.service.engine.begin() as conn:
                known = await db.incident(conn, pending.incident_id)
                # A human resolved it meanwhile, or an alert fired again into it: nothing to do.
                due = (
                    known is not None
                    and known.state != IncidentState.RESOLVED.value
                    and await db.firing_alerts_of(conn, pending.incident_id) == 0
                )
                if due:
                    await self._resolve(conn, pending)
                await db.drop_resolution(conn, pending.incident_id)

    async def _resolve(self, conn: AsyncConnection, pending: Any) -> None:
        command = TransitionIncident(
            correlation_id=pending.correlation_id,
            caller=Caller(tenant_id=pending.tenant_id, user_id=SYSTEM_ACTOR, role=Role.RESPONDER),
            incident_id=str(pending.incident_id),
            to=IncidentState.RESOLVED,
            # No note: the note an incident is resolved with is read as its root cause.
            note="",
        )
        try:
            accepted = await self.commands.call(command, IncidentAccepted)
        except CommandFailed as exc:
            if exc.code not in FINAL_ERRORS:
                raise
            log.info("auto_resolve_skipped", incident_id=str(pending.incident_id), reason=exc.message)
            return
        await apply_snapshot(conn, db.known_incidents, pending.tenant_id, accepted.incident)
        log.info("incident_auto_resolved", incident_id=str(pending.incident_id))


def new_delivery_id() -> uuid.UUID:
    return uuid.UUID(str(uuid7()))


def received_alerts(row: Any) -> list[ReceivedAlert]:
    """The firing alerts a stored notification brought (for the correlation preview), with the
    incident it opened or joined; nothing for one that no longer reads (or an acknowledge)."""
    try:
        if row.source == InboundSource.PAGERDUTY.value:
            event = PAGERDUTY_ALERT.validate_python(row.payload)
            if event.event_action != "trigger":
                return []
            payload = pagerduty_notification(event, row.received_at)
        else:
            payload = AlertmanagerPayload.model_validate(row.payload)
    except ValidationError:
        return []
    outcome = row.outcome if isinstance(row.outcome, dict) else {}
    incident = outcome.get("incident_id")
    return [
        ReceivedAlert(
            delivery_id=str(row.id),
            received_at=row.received_at,
            group_key=payload.groupKey,
            alert=alert,
            incident_id=incident if isinstance(incident, str) else None,
        )
        for alert in (normalise(a) for a in payload.alerts)
        if alert.status == "firing"
    ]
