"""Correlation rules (alerts of different groups or sources sharing labels join one incident) and
the preview of what a rule would have grouped over the alerts received lately."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts.integrations import CorrelationRuleSpec, CorrelationSource
from integrations.domain.alerts import AlertInstance
from integrations.domain.json_mapping import JSON_GROUP_PREFIX
from integrations.domain.pagerduty import PAGERDUTY_GROUP_PREFIX

# ---- correlation rules: alerts of different groups or sources sharing labels, one incident


def source_of_group(group_key: str) -> CorrelationSource:
    """Where a group's alerts come from, by the shape of its key (PagerDuty's and JSON sources'
    keys are made by integrations; anything else came from an Alertmanager or Grafana webhook)."""
    if group_key.startswith(PAGERDUTY_GROUP_PREFIX):
        return CorrelationSource.PAGERDUTY
    if group_key.startswith(JSON_GROUP_PREFIX):
        return CorrelationSource.JSON
    return CorrelationSource.ALERTMANAGER


@dataclass(frozen=True)
class Rule:
    """A correlation rule as the decision reads it; `rules` are tried in the order given (oldest
    first), and the first that finds an incident decides."""

    id: str
    name: str
    labels: tuple[str, ...]
    window: timedelta
    sources: frozenset[CorrelationSource]
    enabled: bool = True

    @classmethod
    def of(cls, rule_id: str, spec: CorrelationRuleSpec) -> Rule:
        return cls(
            id=rule_id,
            name=spec.name,
            labels=tuple(spec.labels),
            window=timedelta(minutes=spec.window_minutes),
            sources=frozenset(spec.sources),
            enabled=spec.enabled,
        )

    def applies_to(self, source: CorrelationSource) -> bool:
        return self.enabled and (not self.sources or source in self.sources)

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...] | None:
        """The alert's values for the rule's labels; None when one is missing or empty (an alert
        without them is correlated with nothing: an absent `cluster` is no shared cluster)."""
        values = tuple(labels.get(name, "") for name in self.labels)
        return None if any(not v.strip() for v in values) else values


@dataclass(frozen=True)
class Candidate:
    """A firing alert already attached to an open incident."""

    fingerprint: str
    group_hash: str
    source: CorrelationSource
    alertname: str
    labels: Mapping[str, str]
    starts_at: datetime
    incident_id: uuid.UUID


@dataclass(frozen=True)
class Correlation:
    rule: Rule
    alert: AlertInstance
    source: CorrelationSource
    matched: Candidate

    @property
    def incident_id(self) -> uuid.UUID:
        return self.matched.incident_id

    @property
    def labels(self) -> dict[str, str]:
        return {name: self.alert.labels[name] for name in self.rule.labels}

    @property
    def reason(self) -> str:
        shared = ", ".join(f"{k}={v}" for k, v in self.labels.items())
        minutes = int(self.rule.window.total_seconds() // 60)
        return (
            f"correlation rule {self.rule.name!r}: {self.alert.alertname} ({self.source.value}) shares "
            f"{shared} with {self.matched.alertname} ({self.matched.source.value}), "
            f"started within {minutes} min of it"
        )


def candidate_span(starts: Sequence[datetime], window: timedelta) -> tuple[datetime, datetime]:
    """When candidates for alerts of these starts may have started: the window either side, held
    within datetime's range (a sender may say year 1)."""
    lowest, highest = min(starts), max(starts)
    floor, ceiling = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    earliest = lowest - window if lowest - floor > window else floor
    latest = highest + window if ceiling - highest > window else ceiling
    return earliest, latest


def correlate(
    rules: Sequence[Rule],
    alerts: Sequence[AlertInstance],
    source: CorrelationSource,
    group_hash: str,
    candidates: Sequence[Candidate],
) -> Correlation | None:
    """Whether a notification's firing alerts that need a new incident join an open one instead.

    Rules are tried in order, and for each the notification's alerts in order; the first pair that
    finds a candidate decides (the whole notification is one group: its alerts stay together). A
    candidate matches when it is of another group, its source is one the rule applies to, it has the
    same values for every one of the rule's labels, and it started within the rule's window of the
    alert (either side, the edge included). Of several matches the one that started closest wins,
    then the newest incident (UUIDv7 ids), so the choice does not depend on the order rows came in."""
    for rule in rules:
        if not rule.applies_to(source):
            continue
        for alert in alerts:
            key = rule.key(alert.labels)
            if key is None:
                continue
            matches = [
                c
                for c in candidates
                if c.group_hash != group_hash
                and rule.applies_to(c.source)
                and rule.key(c.labels) == key
                and abs(c.starts_at - alert.starts_at) <= rule.window
            ]
            if matches:
                best = min(matches, key=lambda c: (abs(c.starts_at - alert.starts_at), -c.incident_id.int))
                return Correlation(rule, alert, source, best)
    return None


# ---- the preview: what a rule would have grouped over the alerts received lately


@dataclass(frozen=True)
class ReceivedAlert:
    """One firing alert as a notification brought it, for the preview."""

    delivery_id: str
    received_at: datetime
    group_key: str
    alert: AlertInstance
    incident_id: str | None


@dataclass
class Cluster:
    key: tuple[str, ...]
    members: list[ReceivedAlert] = field(default_factory=list)

    @property
    def groups(self) -> int:
        return len({m.group_key for m in self.members})

    @property
    def last_start(self) -> datetime:
        return max(m.alert.starts_at for m in self.members)


def preview_clusters(rule: Rule, received: Sequence[ReceivedAlert]) -> list[Cluster]:
    """The clusters `rule` (taken as enabled) would have made of `received`: alerts in order of
    their start, an alert joining the cluster of its label values while it started within the window
    of that cluster's latest start, else starting a new one. Only clusters spanning more than one
    group are returned (one group is one incident anyway), newest first. An approximation of the live
    decision: resolutions in between and other rules are not replayed."""
    active = dataclasses.replace(rule, enabled=True)
    open_clusters: dict[tuple[str, ...], Cluster] = {}
    clusters: list[Cluster] = []
    for item in sorted(received, key=lambda r: (r.alert.starts_at, r.received_at, r.delivery_id)):
        if not active.applies_to(source_of_group(item.group_key)):
            continue
        key = active.key(item.alert.labels)
        if key is None:
            continue
        cluster = open_clusters.get(key)
        if cluster is None or item.alert.starts_at - cluster.last_start > active.window:
            cluster = Cluster(key)
            open_clusters[key] = cluster
            clusters.append(cluster)
        cluster.members.append(item)
    return sorted((c for c in clusters if c.groups > 1), key=lambda c: c.last_start, reverse=True)


def incidents_after(received: Sequence[ReceivedAlert], clusters: Sequence[Cluster]) -> tuple[int, int]:
    """How many incidents the alerts opened or joined, and how many they would have with the rule:
    each cluster's incidents count as one."""
    before = {r.incident_id for r in received if r.incident_id}
    merged = 0
    for cluster in clusters:
        ids = {m.incident_id for m in cluster.members if m.incident_id}
        merged += max(0, len(ids) - 1)
    return len(before), len(before) - merged


def distinct_instances(received: Sequence[ReceivedAlert]) -> list[ReceivedAlert]:
    """Each firing alert once: Alertmanager re-sends one every repeat_interval, so an instance is its
    group, fingerprint and start."""
    seen: set[tuple[str, str, datetime]] = set()
    kept: list[ReceivedAlert] = []
    for item in received:
        instance = (item.group_key, item.alert.fingerprint, item.alert.starts_at)
        if instance not in seen:
            seen.add(instance)
            kept.append(item)
    return kept
