"""Re-running hypothesis generation over recorded history, without publishing anything.

The event log is replayed in order into an in-memory picture of each tenant (incidents, their
resolutions, deploys). At each `incident.created` the chosen engine sees only what existed before
that incident: its report, the earlier incidents and the deploys recorded before it. The results
sit next to what was generated live, so a team can judge a new engine or model on its own past."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ai_worker.engines import rules
from ai_worker.engines.claude import ClaudeEngine, ToolOutput
from ai_worker.evidence import (
    DeployFact,
    Evidence,
    IncidentFacts,
    PastIncident,
    evidence_items,
    gather,
    rank_similar,
)
from ai_worker.settings import AiWorkerSettings
from contracts.envelope import EventEnvelope
from contracts.events import (
    DeployRecorded,
    EventData,
    HypothesisFeedbackRecorded,
    HypothesisGenerated,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    UnknownEventType,
    payload_of,
)


@dataclass
class RerunGeneration:
    incident_id: str
    engine: str
    generated_at: datetime
    hypotheses: list[dict[str, Any]]


@dataclass
class Replayed:
    """What the log says happened, and what the rerun produced."""

    rerun: list[RerunGeneration] = field(default_factory=list)
    live: list[RerunGeneration] = field(default_factory=list)
    confirmations: list[tuple[str, str, datetime]] = field(default_factory=list)  # incident, claim, at
    resolved: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # created, resolved
    incidents_seen: int = 0


@dataclass
class _Tenant:
    incidents: dict[str, PastIncident] = field(default_factory=dict)
    deploys: list[DeployFact] = field(default_factory=list)


class HistoryTools:
    """Claude's evidence tools over the replayed history: only what existed before the incident."""

    def __init__(self, evidence: Evidence, history: list[PastIncident], deploys: list[DeployFact]) -> None:
        self.evidence, self.history, self.deploys = evidence, history, deploys

    @property
    def metrics_available(self) -> bool:
        return False  # past metrics are not in the log

    async def recent_deploys(self, hours: float) -> ToolOutput:
        start = self.evidence.started_at
        found = [d for d in self.deploys if start - timedelta(hours=hours) <= d.deployed_at <= start]
        return ToolOutput(
            content=[
                {"deploy_id": d.deploy_id, "version": d.version, "deployed_at": d.deployed_at.isoformat()}
                for d in found
            ]
        )

    async def similar_incidents(self, query: str | None, limit: int) -> ToolOutput:
        incident = self.evidence.incident
        found = rank_similar(query or incident.text, incident.service_name, self.history)[:limit]
        return ToolOutput(
            content=[
                {"key": s.incident.key, "title": s.incident.title, "root_cause": s.incident.resolution}
                for s in found
            ]
        )

    async def query_metrics(
        self, metric: str | None, promql: str | None, minutes_before: int, minutes_after: int
    ) -> ToolOutput:
        return ToolOutput(content={"error": "metrics are not available when re-running history"})


async def rerun(
    events: AsyncIterator[EventEnvelope],
    engine: str,
    settings: AiWorkerSettings,
    since: datetime | None = None,
    claude: ClaudeEngine | None = None,
) -> Replayed:
    """Replay `events` (in stream order) and generate with `engine` ("rules" or "claude") for every
    incident created at or after `since`."""
    result = Replayed()
    tenants: dict[str, _Tenant] = {}
    if engine == "claude" and claude is None:
        claude = ClaudeEngine(settings)
    async for event in events:
        try:
            data: EventData = payload_of(event)
        except (UnknownEventType, ValueError):
            continue
        tenant = tenants.setdefault(event.tenant_id, _Tenant())
        if isinstance(data, IncidentCreated):
            incident = data.incident
            facts = IncidentFacts(
                id=data.incident_id,
                tenant_id=event.tenant_id,
                key=incident.key,
                title=incident.title,
                description=incident.description,
                service_name=incident.service_name,
                severity=incident.severity.value,
                created_at=incident.created_at,
            )
            if since is None or incident.created_at >= since:
                result.incidents_seen += 1
                history = [
                    p
                    for p in tenant.incidents.values()
                    if p.created_at < incident.created_at
                    and p.created_at >= incident.created_at - timedelta(days=settings.history_days)
                ]
                deploys = [
                    d
                    for d in tenant.deploys
                    if d.service_name == incident.service_name
                    and d.deployed_at >= incident.created_at - timedelta(hours=settings.deploy_window_hours)
                ]
                evidence = gather(facts, history, deploys=deploys)
                if engine == "claude" and claude is not None:
                    answer = await claude.generate(
                        evidence, evidence_items(evidence), HistoryTools(evidence, history, deploys)
                    )
                    hypotheses, used = answer.hypotheses, answer.engine
                else:
                    hypotheses, used = rules.generate(evidence), rules.ENGINE
                result.rerun.append(
                    RerunGeneration(
                        data.incident_id,
                        f"rerun:{used}",
                        incident.created_at,
                        [h.model_dump(mode="json") for h in hypotheses],
                    )
                )
            tenant.incidents[data.incident_id] = PastIncident(
                key=incident.key,
                title=incident.title,
                description=incident.description,
                service_name=incident.service_name,
                state=incident.state.value,
                created_at=incident.created_at,
                id=data.incident_id,
            )
        elif isinstance(data, IncidentStateChanged):
            past = tenant.incidents.get(data.incident_id)
            if past is None:
                continue
            resolved = data.to_state is IncidentState.RESOLVED
            tenant.incidents[data.incident_id] = PastIncident(
                key=past.key,
                title=past.title,
                description=past.description,
                service_name=past.service_name,
                state=data.to_state.value,
                created_at=past.created_at,
                id=past.id,
                resolved_at=data.changed_at if resolved else None,
                resolution=((data.root_cause or data.note).strip() or None) if resolved else past.resolution,
            )
            if resolved:
                result.resolved[data.incident_id] = (past.created_at, data.changed_at)
            else:
                result.resolved.pop(data.incident_id, None)
        elif isinstance(data, DeployRecorded):
            tenant.deploys.append(
                DeployFact(
                    deploy_id=data.deploy_id,
                    service_name=data.service_name,
                    version=data.version,
                    environment=data.environment,
                    deployed_at=data.deployed_at,
                    commit=data.commit,
                    author=data.author,
                )
            )
        elif isinstance(data, HypothesisGenerated):
            result.live.append(
                RerunGeneration(
                    data.incident_id,
                    data.engine,
                    data.generated_at,
                    [h.model_dump(mode="json") for h in data.hypotheses],
                )
            )
        elif isinstance(data, HypothesisFeedbackRecorded) and data.verdict.value == "confirmed":
            result.confirmations.append((data.incident_id, data.claim, data.given_at))
    return result
