"""Reading Alertmanager alerts (severity, title, service, fingerprint) and deciding what each alert
of a notification does to the group's incidents (dedup by fingerprint, start times by key)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts.events import Severity
from contracts.integrations import AlertmanagerAlert, AlertmanagerPayload

# ---- reading alerts

# Alertmanager has no standard severity scale; these are the words seen in the wild (Prometheus
# mixins, Grafana, PagerDuty-style P1-P5, SEV1-SEV5, syslog levels).
SEVERITY_WORDS: dict[Severity, tuple[str, ...]] = {
    Severity.CRITICAL: (
        "critical",
        "crit",
        "emergency",
        "emerg",
        "alert",
        "page",
        "fatal",
        "disaster",
        "p1",
        "sev1",
    ),
    Severity.HIGH: ("high", "error", "err", "major", "p2", "sev2"),
    Severity.MEDIUM: ("warning", "warn", "medium", "moderate", "average", "minor", "p3", "sev3"),
    Severity.LOW: (
        "low",
        "info",
        "informational",
        "notice",
        "debug",
        "none",
        "ok",
        "p4",
        "p5",
        "sev4",
        "sev5",
    ),
}
SEVERITY_OF = {word: severity for severity, words in SEVERITY_WORDS.items() for word in words}
# An alert without a recognisable severity is worth a look, not a page.
DEFAULT_SEVERITY = Severity.MEDIUM

SERVICE_CHARS = re.compile(r"[^A-Za-z0-9._:/-]+")
TITLE_MAX, SERVICE_MAX, DESCRIPTION_MAX = 200, 100, 10_000


def map_severity(value: str | None) -> Severity:
    word = re.sub(r"[\s_-]", "", (value or "").lower())
    return SEVERITY_OF.get(word, DEFAULT_SEVERITY)


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """For senders that send no fingerprint: a stable hash of the label set, like Alertmanager's."""
    canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def group_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


@dataclass(frozen=True)
class AlertInstance:
    """One alert as integrations keeps it."""

    fingerprint: str
    status: str  # "firing" | "resolved"
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None


def normalise(alert: AlertmanagerAlert) -> AlertInstance:
    ends_at = alert.endsAt
    # A firing alert's endsAt is Alertmanager's guess (or year 1); only a resolution's is a fact.
    if alert.status == "firing" or ends_at is None or ends_at.year <= 1 or ends_at.tzinfo is None:
        ends_at = None
    return AlertInstance(
        fingerprint=alert.fingerprint or labels_fingerprint(alert.labels),
        status=alert.status,
        alertname=alert.labels.get("alertname") or "unnamed alert",
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=alert.startsAt,
        ends_at=ends_at,
        generator_url=alert.generatorURL or None,
    )


def incident_title(alert: AlertInstance, payload: AlertmanagerPayload) -> str:
    summary = alert.annotations.get("summary") or payload.commonAnnotations.get("summary") or ""
    title = " ".join((summary or alert.alertname).split())
    return title[:TITLE_MAX] or "Alert"


def incident_service(alert: AlertInstance, payload: AlertmanagerPayload) -> str:
    raw = (
        alert.labels.get("service")
        or payload.commonLabels.get("service")
        or alert.labels.get("job")
        or payload.commonLabels.get("job")
        or ""
    )
    cleaned = SERVICE_CHARS.sub("-", raw.strip()).strip("-")[:SERVICE_MAX]
    return cleaned or "unknown"


def incident_description(alert: AlertInstance, payload: AlertmanagerPayload) -> str:
    text = alert.annotations.get("description") or alert.annotations.get("message") or ""
    lines = [text.strip()] if text.strip() else []
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    lines.append(f"Alert {alert.alertname} firing since {alert.starts_at.isoformat()} ({labels}).")
    if alert.generator_url:
        lines.append(f"Source: {alert.generator_url}")
    if payload.externalURL:
        lines.append(f"Alertmanager: {payload.externalURL}")
    return "\n".join(lines)[:DESCRIPTION_MAX]


NAMESPACE = uuid.UUID("5d1c6a3e-9b7f-4c2a-8e51-3f0b7c2d9a14")


def incident_id_for(delivery_id: uuid.UUID, group: str) -> uuid.UUID:
    """The id of the incident a delivery opens: the same on every attempt at that delivery, so the
    incidents service answers a repeated create with the incident it already made."""
    return uuid.uuid5(NAMESPACE, f"{delivery_id}/{group}")


# ---- what each alert does


@dataclass(frozen=True)
class Known:
    """What integrations last recorded for a fingerprint of the group."""

    status: str
    starts_at: datetime
    incident_id: uuid.UUID | None


class Target(StrEnum):
    CURRENT = "current"  # the group's open incident
    NEW = "new"  # the incident this notification opens
    OWN = "own"  # the incident the alert fired into (its resolution goes there)
    NONE = "none"  # recorded, attached to nothing (resolved before we saw it fire, no incident open)


@dataclass(frozen=True)
class Change:
    alert: AlertInstance
    target: Target
    incident_id: uuid.UUID | None = None  # for OWN


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    duplicates: int = 0

    @property
    def opener(self) -> AlertInstance | None:
        """The first firing alert that needs a new incident: it names the incident."""
        return next((c.alert for c in self.changes if c.target is Target.NEW), None)


def with_known_starts(
    alerts: Sequence[AlertInstance], known: Mapping[str, Known], by_key: Set[str]
) -> list[AlertInstance]:
    """`by_key`: the statuses whose alerts are named by their key alone, not by key and start time
    (a PagerDuty resolve, a generic sender's repeat): such an alert takes the start time recorded
    for its key when that is of the same status (a repeat) or when it ends what fires (a resolution)."""
    return [
        dataclasses.replace(a, starts_at=known[a.fingerprint].starts_at)
        if a.status in by_key
        and a.fingerprint in known
        and (a.status == "resolved" or known[a.fingerprint].status == a.status)
        else a
        for a in alerts
    ]


def plan_alerts(
    alerts: Sequence[AlertInstance], known: Mapping[str, Known], open_incident: uuid.UUID | None
) -> Plan:
    """Decide, for each alert of one notification of one group, what changes.

    An alert is one instance per (fingerprint, startsAt): Alertmanager re-sends the same instance
    every repeat interval, and that changes nothing. A firing alert joins the group's open incident,
    or, when the group has none (never had one, or it was resolved), a new one. A resolution goes to
    the incident its alert fired into."""
    plan = Plan()
    seen: set[str] = set()
    for alert in alerts:
        if alert.fingerprint in seen:
            continue
        seen.add(alert.fingerprint)
        before = known.get(alert.fingerprint)
        same_instance = before is not None and before.starts_at == alert.starts_at
        if same_instance and before is not None and before.status == alert.status:
            plan.duplicates += 1
        elif alert.status == "firing":
            plan.changes.append(Change(alert, Target.CURRENT if open_incident else Target.NEW))
        elif same_instance and before is not None and before.incident_id is not None:
            plan.changes.append(Change(alert, Target.OWN, before.incident_id))
        else:
            plan.changes.append(Change(alert, Target.CURRENT if open_incident else Target.NONE))
    return plan
