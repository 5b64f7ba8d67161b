"""integrations' pure rules: reading Alertmanager alerts (severity, title, service, fingerprint),
deciding what each alert of a notification does to the group's incidents (dedup by fingerprint),
signing webhook bodies, backing off, checking webhook targets, and the Slack message."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

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


# ---- signing (generic webhooks): runtime.signing, shared with oncall's webhook contact methods

SECRET_PREFIX = "whsec_"


# ---- retries


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float = 0.5) -> float:
    """Delay after failed attempt `attempt` (1, 2, ...): base * 2^(attempt-1), capped, spread by
    `jitter` (0..1, drawn by the caller) between 75 % and 125 %, so retries of many deliveries to one
    recovering endpoint do not arrive together."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return float(delay * (0.75 + 0.5 * min(1.0, max(0.0, jitter))))


def retryable(status_code: int | None) -> bool:
    """None is a network error or a timeout. A 4xx other than these will not change by itself
    (a wrong URL, a revoked Slack webhook, a payload the receiver refuses)."""
    return status_code is None or status_code >= 500 or status_code in (408, 425, 429)


# ---- webhook targets


def address_allowed(address: str, allow_private: bool) -> bool:
    """Only public unicast addresses, unless private targets are allowed: a tenant's webhook must
    not reach the platform's own network (cloud metadata, databases, admin ports)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why a webhook URL is refused, or None. Names are resolved again at each delivery."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("https", "http"):
        return "the URL must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not accepted"
    if port == 0:
        return "not a valid port"
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not allow_private and (
            host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
        ):
            return "the URL must point to a public address"
        return None
    if not address_allowed(host, allow_private):
        return "the URL must point to a public address"
    return None


# ---- the Slack message


@dataclass(frozen=True)
class IncidentFacts:
    id: str
    key: str
    title: str
    service_name: str
    severity: str
    state: str
    top_hypothesis: str | None = None
    top_confidence: float | None = None


SEVERITY_MARK = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
}


def slack_escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup; a title must not become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Block Kit message: what happened, severity, state, service, the top hypothesis, a link."""
    if event_type == "incident.created":
        what = "Incident opened"
    elif event_type == "incident.state_changed":
        what = f"{data.get('from_state', '?')} → {data.get('to_state', incident.state)}"
    elif event_type == "hypothesis.generated":
        what = "Hypotheses ready"
    else:
        what = event_type
    headline = f"{incident.key} · {incident.title}"
    if incident.top_hypothesis:
        confidence = f" ({incident.top_confidence:.0%})" if incident.top_confidence is not None else ""
        hypothesis = f"*Top hypothesis*{confidence}\n{slack_escape(_clip(incident.top_hypothesis, 2_500))}"
    else:
        hypothesis = "*Top hypothesis*\n_pending_"
    mark = SEVERITY_MARK.get(incident.severity, ":white_circle:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, 150), "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{mark} {incident.severity}"},
                {"type": "mrkdwn", "text": f"*State*\n{incident.state}"},
                {"type": "mrkdwn", "text": f"*Service*\n{slack_escape(incident.service_name)}"},
                {"type": "mrkdwn", "text": f"*Event*\n{slack_escape(what)}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": hypothesis}},
    ]
    note = str(data.get("note") or "").strip() if event_type == "incident.state_changed" else ""
    if note:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(_clip(note, 2_000))}]}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open incident"}, "url": link}
            ],
        }
    )
    fallback = f"[{incident.severity}] {headline} ({incident.service_name}): {what}, {incident.state}"
    return {"text": slack_escape(_clip(fallback, 3_000)), "blocks": blocks}
