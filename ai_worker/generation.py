"""From a trigger to a published generation: coalescing, evidence, the engine, the outbox.

One generation for one incident goes through three steps:
1. under the incident's lock, a short transaction records the trigger, decides (coalescing, see
   `domain.decide`), takes a lease on the incident and reads a snapshot of what the worker knows
   (the incident, its alerts, the service's deploys, past incidents, the pending triggers);
2. with no transaction open, metrics are read and the engine runs (Claude may take a while);
3. under the lock again, the generation gets the next number, covers the triggers of the snapshot,
   and `evidence.collected` then `hypothesis.generated` are staged in the outbox together.
A trigger already covered is a no-op, so a redelivered event never makes a second generation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Histogram

from ai_worker import db, signatures
from ai_worker.domain import Decision, GenerationState, decide
from ai_worker.engines import rules
from ai_worker.engines.claude import ClaudeEngine, EngineResult, ToolOutput
from ai_worker.evidence import (
    AlertFact,
    DeployFact,
    Evidence,
    IncidentFacts,
    MetricReading,
    PastIncident,
    deploy_summary,
    evidence_items,
    gather,
    metric_summary,
    rank_similar,
    services_named,
    similar_summary,
)
from ai_worker.prometheus import PrometheusClient, PrometheusError, service_queries
from ai_worker.settings import AiWorkerSettings
from contracts.envelope import EventEnvelope
from contracts.events import EvidenceCollected, EvidenceItem, HypothesisGenerated
from runtime import tracing
from runtime.metrics import SLOW_BUCKETS
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)

GENERATION_SECONDS = Histogram(
    "sre_copilot_hypothesis_generation_duration_seconds",
    "Time an engine took to produce one generation of hypotheses (evidence gathering excluded).",
    ["engine"],
    buckets=SLOW_BUCKETS,
)
GENERATIONS = Counter(
    "sre_copilot_hypothesis_generations",
    "Generations of hypotheses produced, by engine and whether it fell back to the rules.",
    ["engine", "fallback"],
)

Heartbeat = Callable[[], Awaitable[None]]
HEARTBEAT_SECONDS = 10.0
# Generations at once per replica (each reads evidence, runs an engine, may wait on Claude).
MAX_GENERATING = 8


async def no_heartbeat() -> None:
    return None


@dataclass(frozen=True)
class Trigger:
    event_id: uuid.UUID
    kind: str  # "incident.created", "alert.attached", "deploy.recorded" or "regenerate"
    incident_id: uuid.UUID
    tenant_id: str
    correlation_id: str
    actor: str = "ai_worker"
    # Alerts and deploys only matter while the incident is open; a regenerate request always does.
    only_if_open: bool = False


@dataclass
class Snapshot:
    facts: IncidentFacts
    history: list[PastIncident]
    alerts: list[AlertFact]
    deploys: list[DeployFact]
    covers: list[uuid.UUID]


@dataclass(frozen=True)
class Step:
    """What deciding about a trigger came to. Nothing set: no generation to make."""

    decision: Decision | None = None
    snapshot: Snapshot | None = None  # generate from it, then commit (the three steps)
    written: list[EventEnvelope] | None = None  # generated and staged already (`at_once`)


def _facts(row: Any) -> IncidentFacts:
    return IncidentFacts(
        id=str(row.id),
        tenant_id=row.tenant_id,
        key=row.key,
        title=row.title,
        description=row.description,
        service_name=row.service_name,
        severity=row.severity,
        created_at=row.created_at,
    )


def _deploy(row: Any) -> DeployFact:
    return DeployFact(
        deploy_id=row.deploy_id,
        service_name=row.service_name,
        version=row.version,
        environment=row.environment,
        deployed_at=row.deployed_at,
        commit=row.commit,
        author=row.author,
    )


def _alert(row: Any) -> AlertFact:
    return AlertFact(
        fingerprint=row.fingerprint,
        alertname=row.alertname,
        status=row.status,
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        generator_url=row.generator_url,
    )


class IncidentTools:
    """The evidence tools Claude may call, bound to one incident."""

    def __init__(self, generator: Generator, evidence: Evidence) -> None:
        self.generator, self.evidence = generator, evidence

    @property
    def metrics_available(self) -> bool:
        return self.generator.prometheus is not None

    async def recent_deploys(self, hours: float) -> ToolOutput:
        incident, start = self.evidence.incident, self.evidence.started_at
        async with self.generator.service.engine.connect() as conn:
            rows = await db.deploys_of_service(
                conn,
                incident.tenant_id,
                incident.service_name,
                start - timedelta(hours=hours),
                datetime.now(UTC),
            )
        found = [_deploy(r) for r in rows]
        view = gather(incident, [], alerts=self.evidence.alerts, deploys=found)
        deploys = [*view.deploys, *view.deploys_after]
        return ToolOutput(
            content=[
                {
                    "deploy_id": d.deploy_id,
                    "version": d.version,
                    "environment": d.environment,
                    "deployed_at": d.deployed_at.isoformat(),
                    "minutes_before_start": round(view.minutes_before_start(d), 1),
                    "commit": d.commit,
                    "author": d.author,
                }
                for d in deploys
            ],
            items=[
                EvidenceItem(
                    kind="deploy",
                    summary=deploy_summary(d, view),
                    source=f"deploy {d.deploy_id}",
                    time=d.deployed_at,
                )
                for d in deploys
            ],
        )

    async def similar_incidents(self, query: str | None, limit: int) -> ToolOutput:
        incident = self.evidence.incident
        history = await self.generator.history(incident)
        found = rank_similar(query or incident.text, incident.service_name, history)[:limit]
        return ToolOutput(
            content=[
                {
                    "key": s.incident.key,
                    "title": s.incident.title,
                    "service": s.incident.service_name,
                    "state": s.incident.state,
                    "created_at": s.incident.created_at.isoformat(),
                    "resolved_at": s.incident.resolved_at.isoformat() if s.incident.resolved_at else None,
                    "root_cause": s.incident.resolution,
                    "similarity": round(s.score, 2),
                }
                for s in found
            ],
            items=[
                EvidenceItem(
                    kind="similar_incident",
                    summary=similar_summary(s),
                    source="incident history",
                    time=s.incident.created_at,
                    link=f"/api/v1/incidents/{s.incident.id}" if s.incident.id else None,
                )
                for s in found
            ],
        )

    async def query_metrics(
        self, metric: str | None, promql: str | None, minutes_before: int, minutes_after: int
    ) -> ToolOutput:
        prometheus, settings = self.generator.prometheus, self.generator.settings
        if prometheus is None:
            return ToolOutput({"error": "no Prometheus is configured"})
        incident = self.evidence.incident
        if metric is not None:
            expr, unit = service_queries(
                incident.service_name, settings.prometheus_service_label, settings.prometheus_queries
            )[metric]
            name = metric
        else:
            expr, unit, name = promql or "", "", "promql"
        try:
            reading = await prometheus.reading(
                name,
                expr,
                unit,
                self.evidence.started_at,
                datetime.now(UTC),
                before=timedelta(minutes=minutes_before),
                after=timedelta(minutes=minutes_after),
            )
        except PrometheusError as exc:
            return ToolOutput({"error": str(exc)})
        if reading is None:
            return ToolOutput({"expr": expr, "result": "no data"})
        return ToolOutput(
            content={
                "expr": expr,
                "unit": unit or None,
                "baseline_before_start": reading.baseline,
                "at_start": reading.at_start,
                "peak_after_start": reading.peak,
            },
            items=[
                EvidenceItem(
                    kind="metric",
                    summary=metric_summary(reading, incident.service_name),
                    source="prometheus",
                    time=self.evidence.started_at,
                    link=reading.link,
                )
            ],
        )


RULES_LEASE_SECONDS = 10.0


class Generator:
    def __init__(
        self,
        service: Service,
        settings: AiWorkerSettings,
        *,
        claude: ClaudeEngine | None = None,
        prometheus_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.service, self.settings = service, settings
        self.claude = claude
        self.slots = asyncio.Semaphore(MAX_GENERATING)
        self.prometheus = (
            PrometheusClient(settings.prometheus_url, prometheus_http or httpx.AsyncClient())
            if settings.prometheus_url
            else None
        )

    @property
    def lease_seconds(self) -> float:
        """How long a generation may hold its incident. Claude may take its whole time budget; the
        rules take milliseconds, and a short lease means a generation cut off by an outage (whose
        release could not be written) is taken over quickly."""
        if self.claude is not None:
            return self.settings.generation_lease_seconds
        return min(self.settings.generation_lease_seconds, RULES_LEASE_SECONDS)

    @classmethod
    def from_settings(cls, service: Service, settings: AiWorkerSettings) -> Generator:
        wants_claude = settings.ai_engine == "claude" or (
            settings.ai_engine == "auto" and settings.anthropic_api_key is not None
        )
        claude = ClaudeEngine(settings) if wants_claude and settings.anthropic_api_key is not None else None
        http = (
            httpx.AsyncClient(timeout=settings.prometheus_timeout_seconds)
            if settings.prometheus_url
            else None
        )
        return cls(service, settings, claude=claude, prometheus_http=http)

    async def close(self) -> None:
        if self.prometheus is not None:
            await self.prometheus.http.aclose()

    # ---------------------------------------------------------------- the three steps

    async def handle(self, trigger: Trigger, heartbeat: Heartbeat = no_heartbeat) -> list[EventEnvelope]:
        """Generate for `trigger` unless a generation already covers it; returns what to publish
        (after commit, already staged in the outbox). At most `MAX_GENERATING` generations run at
        once; a trigger waiting out a coalescing window or another worker's lease holds no slot, so
        an alert storm's waiting triggers do not queue the next incidents' first generations."""
        window = timedelta(seconds=self.settings.coalesce_window_seconds)
        lease = timedelta(seconds=self.lease_seconds)
        waited = timedelta(0)
        last_beat = 0.0
        while True:
            await self._take_slot(heartbeat)
            try:
                step = await self._decide(trigger, window, lease, waited, heartbeat)
            except BaseException:
                self.slots.release()
                raise
            if step.decision is None or step.decision.generate:
                break  # the slot is kept for the generation
            self.slots.release()
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                # Tell JetStream the message is being worked on, so it is not redelivered meanwhile.
                await heartbeat()
                last_beat = time.monotonic()
            await asyncio.sleep(step.decision.wait_seconds)
            waited += timedelta(seconds=step.decision.wait_seconds)

        try:
            if step.written is not None:
                return step.written
            if step.snapshot is None:
                return []
            try:
                evidence, result = await self._run(step.snapshot, heartbeat)
            except BaseException:
                await self._release(trigger.incident_id)
                raise
            return await self._commit(trigger, step.snapshot, evidence, result)
        finally:
            self.slots.release()

    @property
    def at_once(self) -> bool:
        """The rules with no Prometheus to ask take milliseconds and wait on nothing: a generation is
        then decided, made and written in the one transaction that holds the incident's lock, with
        no lease to take and give back (half the statements of the three steps)."""
        return self.claude is None and self.prometheus is None

    async def _take_slot(self, heartbeat: Heartbeat) -> None:
        while True:
            try:
                await asyncio.wait_for(self.slots.acquire(), HEARTBEAT_SECONDS)
                return
            except TimeoutError:
                await heartbeat()  # waiting for a slot is being worked on too

    async def _decide(
        self, trigger: Trigger, window: timedelta, lease: timedelta, waited: timedelta, heartbeat: Heartbeat
    ) -> Step:
        """Step 1 in one transaction: record the trigger and decide (and, `at_once`, generate)."""
        async with self.service.engine.begin() as conn:
            await db.lock_incident(conn, trigger.incident_id)
            state = await db.trigger_state(conn, trigger.event_id, trigger.incident_id)
            if state.covered_by is not None:
                return Step()
            row = state.incident
            if row is None:
                # Its incident.created has not been seen yet: the incident's first generation
                # will cover this trigger (it reads the pending ones under the same lock).
                await self._record_waiting(conn, trigger, state)
                return Step()
            if row.tenant_id != trigger.tenant_id:
                log.warning("trigger_for_another_tenant", incident_id=str(trigger.incident_id))
                return Step()
            if trigger.only_if_open and row.state == "resolved":
                return Step()
            now = _now()
            decision = decide(
                GenerationState(state.last[1] if state.last else None, row.claimed_until),
                now,
                window,
                waited,
                max_wait=lease + window,
            )
            if decision.generate and self.at_once:
                snapshot = await self._snapshot(conn, row, state.waiting)
                evidence, result = await self._run(snapshot, heartbeat)
                number = (state.last[0] if state.last else 0) + 1
                written = await self._write(
                    conn, trigger, snapshot, evidence, result, number, recorded=state.seen, received_at=now
                )
            else:
                await self._record_waiting(conn, trigger, state)
                if not decision.generate:
                    return Step(decision)
                await db.set_claim(conn, trigger.incident_id, now + lease)
                return Step(decision, snapshot=await self._snapshot(conn, row, state.waiting))
        self._generated(trigger, snapshot, result, number)
        return Step(decision, written=written)

    @staticmethod
    async def _record_waiting(conn: Any, trigger: Trigger, state: db.TriggerState) -> None:
        if not state.seen:
            await db.add_trigger(
                conn, trigger.event_id, trigger.incident_id, trigger.tenant_id, trigger.kind, _now()
            )

    async def _snapshot(self, conn: Any, row: Any, waiting: list[uuid.UUID]) -> Snapshot:
        facts = _facts(row)
        history = await db.history(
            conn,
            facts.tenant_id,
            before=facts.created_at,
            since=facts.created_at - timedelta(days=self.settings.history_days),
            exclude=row.id,
        )
        alerts = [
            _alert(a) for a in await db.alerts_of_incident(conn, row.id) if a.tenant_id == facts.tenant_id
        ]
        start = min([facts.created_at, *(a.starts_at for a in alerts)])
        since = start - timedelta(hours=self.settings.deploy_window_hours)
        deploys = await db.deploys_of_service(conn, facts.tenant_id, facts.service_name, since, _now())
        # A deploy of another service the report names is evidence too ("since catalog-api started
        # returning the new shape").
        deployed = await db.deployed_services(conn, facts.tenant_id, since, _now())
        for name in services_named(facts.text, [n for n in deployed if n != facts.service_name]):
            deploys += await db.deploys_of_service(conn, facts.tenant_id, name, since, _now())
        return Snapshot(
            facts=facts,
            history=history,
            alerts=alerts,
            deploys=[_deploy(d) for d in deploys],
            covers=waiting,
        )

    async def history(self, facts: IncidentFacts) -> list[PastIncident]:
        async with self.service.engine.connect() as conn:
            return await db.history(
                conn,
                facts.tenant_id,
                before=facts.created_at,
                since=facts.created_at - timedelta(days=self.settings.history_days),
                exclude=uuid.UUID(facts.id),
            )

    async def metrics(
        self, facts: IncidentFacts, start: datetime, alerts: Sequence[AlertFact]
    ) -> list[MetricReading]:
        if self.prometheus is None:
            return []
        try:
            return await self.prometheus.around(
                facts.service_name,
                start,
                _now(),
                label=self.settings.prometheus_service_label,
                overrides=self.settings.prometheus_queries,
                alerts=alerts,
            )
        except Exception as exc:
            log.warning("metrics_unavailable", error=type(exc).__name__)
            return []

    async def _run(self, snapshot: Snapshot, heartbeat: Heartbeat) -> tuple[Evidence, EngineResult]:
        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                await heartbeat()

        beating = asyncio.create_task(beat())
        try:
            evidence = gather(
                snapshot.facts, snapshot.history, alerts=snapshot.alerts, deploys=snapshot.deploys
            )
            metrics = await self.metrics(snapshot.facts, evidence.started_at, snapshot.alerts)
            if metrics:
                evidence = replace(evidence, metrics=metrics)
            started = time.perf_counter()
            with tracing.span("hypotheses.generate") as span:
                result = await self.run_engine(evidence)
                tracing.set_attributes(span, engine=result.engine, fallback_reason=result.fallback_reason)
            GENERATION_SECONDS.labels(result.engine).observe(time.perf_counter() - started)
            GENERATIONS.labels(result.engine, "true" if result.fallback_reason else "false").inc()
            return evidence, result
        finally:
            beating.cancel()

    async def run_engine(self, evidence: Evidence) -> EngineResult:
        window = self.settings.deploy_window_hours * 60
        if self.claude is not None:
            return await self.claude.generate(
                evidence,
                evidence_items(evidence),
                IncidentTools(self, evidence),
                catalogue=self.catalogue(evidence.incident.tenant_id),
            )
        reason = None
        if self.settings.ai_engine == "claude":
            reason = "claude: ANTHROPIC_API_KEY is not set"
        catalogue = self.catalogue(evidence.incident.tenant_id)
        return EngineResult(
            rules.generate(evidence, deploy_window_minutes=window, catalogue=catalogue), rules.ENGINE, reason
        )

    def catalogue(self, tenant_id: str) -> signatures.Catalogue:
        return signatures.for_tenant(self.settings.ai_signatures_dir, tenant_id)

    async def _release(self, incident_id: uuid.UUID) -> None:
        try:
            async with self.service.engine.begin() as conn:
                await db.set_claim(conn, incident_id, None)
        except Exception as exc:  # the lease runs out by itself
            log.warning("release_failed", error=str(exc))

    async def _commit(
        self, trigger: Trigger, snapshot: Snapshot, evidence: Evidence, result: EngineResult
    ) -> list[EventEnvelope]:
        """Step 3: under the lock again, unless another worker covered the trigger meanwhile (its
        lease had run out), the generation gets the next number and is written."""
        async with self.service.engine.begin() as conn:
            await db.lock_incident(conn, trigger.incident_id)
            state = await db.trigger_state(conn, trigger.event_id, trigger.incident_id)
            if state.covered_by is not None:
                return []
            number = (state.last[0] if state.last else 0) + 1
            written = await self._write(conn, trigger, snapshot, evidence, result, number, recorded=True)
            await db.set_claim(conn, trigger.incident_id, None)
        self._generated(trigger, snapshot, result, number)
        return written

    async def _write(
        self,
        conn: Any,
        trigger: Trigger,
        snapshot: Snapshot,
        evidence: Evidence,
        result: EngineResult,
        number: int,
        *,
        recorded: bool,
        received_at: datetime | None = None,
    ) -> list[EventEnvelope]:
        """Generation `number`: its row, the triggers it covers, and `evidence.collected` then
        `hypothesis.generated` staged in the outbox. `recorded`: the trigger has its row already."""
        items = evidence_items(evidence) + result.extra_items
        now = _now()
        common = {
            "tenant_id": snapshot.facts.tenant_id,
            "aggregate_id": snapshot.facts.id,
            "aggregate_version": number,
            "actor": trigger.actor,
            "correlation_id": trigger.correlation_id,
            "causation_id": str(trigger.event_id),
        }
        collected = EventEnvelope(
            type="evidence.collected",
            data=EvidenceCollected(
                incident_id=snapshot.facts.id, generation=number, items=items, collected_at=now
            ).model_dump(mode="json"),
            **common,
        )
        generated = EventEnvelope(
            type="hypothesis.generated",
            data=HypothesisGenerated(
                incident_id=snapshot.facts.id,
                engine=result.engine,
                hypotheses=result.hypotheses,
                generated_at=now,
                generation=number,
                trigger=trigger.kind,
                fallback_reason=result.fallback_reason,
            ).model_dump(mode="json"),
            **common,
        )
        await conn.execute(
            db.generations.insert().values(
                incident_id=trigger.incident_id,
                generation=number,
                tenant_id=snapshot.facts.tenant_id,
                engine=result.engine,
                trigger=trigger.kind,
                fallback_reason=result.fallback_reason,
                event_id=generated.id,
                evidence_event_id=collected.id,
                hypotheses=[h.model_dump(mode="json") for h in result.hypotheses],
                evidence=[i.model_dump(mode="json") for i in items],
                generated_at=now,
            )
        )
        if recorded:
            await db.cover_triggers(conn, trigger.incident_id, [*snapshot.covers, trigger.event_id], number)
        else:
            await db.cover_triggers(conn, trigger.incident_id, snapshot.covers, number)
            await db.add_covered_trigger(
                conn,
                trigger.event_id,
                trigger.incident_id,
                trigger.tenant_id,
                trigger.kind,
                received_at or now,
                number,
            )
        # Evidence first: the hypotheses that cite it come after it in the stream.
        await stage(conn, db.outbox, [collected, generated])
        return [collected, generated]

    @staticmethod
    def _generated(trigger: Trigger, snapshot: Snapshot, result: EngineResult, number: int) -> None:
        log.info(
            "hypotheses_generated",
            incident_id=snapshot.facts.id,
            generation=number,
            engine=result.engine,
            trigger=trigger.kind,
            fallback_reason=result.fallback_reason,
            covered=len(snapshot.covers),
        )


def _now() -> datetime:
    return datetime.now(UTC)
