"""integrations' pure rules: reading Alertmanager alerts (severity, title, service, fingerprint),
deciding what each alert of a notification does to the group's incidents (dedup by fingerprint),
whether a correlation rule puts a new group's alerts into another group's open incident (and what a
rule would have grouped, for its preview), signing webhook bodies, backing off, checking webhook
targets, and the Slack message."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import json
import re
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
import jmespath.parser
from pydantic import ValidationError

from contracts.commands import CommandFailed, ErrorCode
from contracts.events import Severity
from contracts.integrations import (
    AlertmanagerAlert,
    AlertmanagerPayload,
    CorrelationRuleSpec,
    CorrelationSource,
    DeliveryStatus,
    DeployReport,
    EqualityMatcher,
    JsonMapping,
    MappedAlert,
    PagerDutyChangePayload,
    PagerDutyLink,
    PagerDutyTrigger,
    PagerDutyUpdate,
    Recurrence,
    RegexMatcher,
    SilenceSpec,
    SilenceState,
)
from contracts.slack import INCIDENT_ACKNOWLEDGE, INCIDENT_OPEN, INCIDENT_RESOLVE

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


# ---- PagerDuty Events v2, read as an Alertmanager notification of one alert

PAGERDUTY_GROUP_PREFIX = "pagerduty:"
ANNOTATION_MAX = 32_000


def read_timestamp(raw: str) -> datetime | None:
    """An Events v2 timestamp (ISO 8601, `+0000` offsets included), or None when it does not read
    or names no offset."""
    try:
        parsed = datetime.fromisoformat(raw.strip())
        # An offset that takes the time out of datetime's range (year 1 at +01:00) reads as nothing.
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def pagerduty_group_key(dedup_key: str) -> str:
    """Every event of one dedup_key is one alert group: one open incident at a time."""
    return f"{PAGERDUTY_GROUP_PREFIX}{dedup_key}"


def pagerduty_fingerprint(dedup_key: str) -> str:
    return hashlib.sha256(dedup_key.encode()).hexdigest()[:32]


def _details_text(details: Any) -> str:
    if details is None or details == {} or details == "":
        return ""
    if isinstance(details, dict):
        return "\n".join(
            f"{key}: {value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"
            for key, value in details.items()
        )
    return details if isinstance(details, str) else json.dumps(details, sort_keys=True)


def _first_link(links: Sequence[PagerDutyLink], client_url: str) -> str:
    return next((link.href for link in links if link.href.strip()), client_url.strip())


def pagerduty_notification(
    event: PagerDutyTrigger | PagerDutyUpdate, received_at: datetime
) -> AlertmanagerPayload:
    """A trigger or resolve as the one alert of the group of its dedup_key: summary -> title,
    severity (critical/error/warning/info) -> severity, custom_details.service, component, group or
    source -> service, custom_details and links -> the description."""
    assert event.dedup_key is not None  # made by the gateway when a trigger came without one
    payload = event.payload
    labels: dict[str, str] = {"alertname": "pagerduty", "dedup_key": event.dedup_key}
    annotations: dict[str, str] = {}
    starts = received_at
    if payload is not None:
        details = payload.custom_details
        named = details.get("service") if isinstance(details, dict) else None
        service = named[:SERVICE_MAX] if isinstance(named, str) and named.strip() else ""
        service = service or payload.component or payload.group or payload.source
        fields = {
            "alertname": payload.class_ or "pagerduty",
            "severity": payload.severity or "",
            "source": payload.source,
            "component": payload.component,
            "group": payload.group,
            "class": payload.class_,
            "service": service,
        }
        labels.update({k: v for k, v in fields.items() if v})
        text = _details_text(details)
        lines = [text] if text else []
        lines += [f"{link.text or 'Link'}: {link.href}" for link in event.links]
        lines += [f"Image: {image.src}" for image in event.images]
        if payload.summary:
            annotations["summary"] = payload.summary
        if lines:
            annotations["description"] = "\n".join(lines)[:ANNOTATION_MAX]
        starts = read_timestamp(payload.timestamp) or received_at
    if event.client:
        annotations["client"] = event.client
    firing = event.event_action == "trigger"
    alert = AlertmanagerAlert(
        status="firing" if firing else "resolved",
        labels=labels,
        annotations=annotations,
        startsAt=starts,
        endsAt=None if firing else received_at,
        generatorURL=_first_link(event.links, event.client_url),
        fingerprint=pagerduty_fingerprint(event.dedup_key),
    )
    return AlertmanagerPayload(
        version="pagerduty-v2",
        groupKey=pagerduty_group_key(event.dedup_key),
        status=alert.status,
        receiver=event.client[:512],
        alerts=[alert],
    )


def _detail(details: Any, *names: str) -> str:
    if not isinstance(details, dict):
        return ""
    for name in names:
        value = details.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ""


def change_as_deploy(payload: PagerDutyChangePayload) -> DeployReport:
    """A change event as a deploy: service from custom_details.service (else source), version from
    custom_details.version (else the summary), environment from custom_details.environment (else
    `unknown`), commit and author from custom_details when present."""
    details = payload.custom_details
    raw_service = _detail(details, "service", "service_name", "app", "application") or payload.source
    service = SERVICE_CHARS.sub("-", raw_service.strip()).strip("-")[:SERVICE_MAX] or "unknown"
    version = _detail(details, "version", "revision", "tag") or " ".join(payload.summary.split())
    environment = _detail(details, "environment", "env", "stage") or "unknown"
    return DeployReport(
        service_name=service,
        version=version[:200].strip() or "unknown",
        environment=environment[:200].strip() or "unknown",
        commit=_detail(details, "commit", "sha", "commit_sha", "git_sha")[:200] or None,
        author=_detail(details, "author", "user", "triggered_by", "deployer")[:200] or None,
        deployed_at=read_timestamp(payload.timestamp),
    )


# ---- generic JSON: a JMESPath mapping from any body to one alert

MAPPED_FIELDS = ("title", "severity", "dedup_key", "status", "service", "labels")
RESOLVED_WORDS = frozenset({"resolved", "ok", "closed", "recovered", "normal", "inactive", "cleared"})
FIRING_WORDS = frozenset({"firing", "alerting", "triggered", "open", "problem", "active", "alert"})
JSON_GROUP_PREFIX = "json:"


class MappingProblem(ValueError):
    """An expression that does not compile: which field, and why."""

    def __init__(self, field_name: str, expression: str, reason: str) -> None:
        super().__init__(f"{field_name}: `{expression}` is not a JMESPath expression ({reason})")
        self.field_name = field_name


class Unreadable(ValueError):
    """A body the mapping cannot read, and why."""


def compile_mapping(mapping: JsonMapping) -> dict[str, jmespath.parser.ParsedResult]:
    compiled = {}
    for name in MAPPED_FIELDS:
        expression = getattr(mapping, name)
        if expression is None:
            continue
        try:
            compiled[name] = jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as exc:
            reason = " ".join(str(exc).split())[:200]
            raise MappingProblem(name, expression, reason) from exc
    return compiled


def _scalar(value: Any) -> str | None:
    """A found value as text: strings and numbers (and booleans), without NUL; None for nothing."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        try:
            text = str(value)
        except ValueError:  # an integer past Python's 4300-digit limit for text
            return None
    text = text.replace("\x00", "").strip()
    return text or None


def apply_mapping(
    compiled: Mapping[str, jmespath.parser.ParsedResult], mapping: JsonMapping, body: Any
) -> MappedAlert:
    """The alert `body` reads as, or Unreadable naming the field and its expression."""

    def search(name: str) -> Any:
        try:
            return compiled[name].search(body) if name in compiled else None
        except jmespath.exceptions.JMESPathError as exc:  # a function given the wrong type
            raise Unreadable(f"{name}: `{getattr(mapping, name)}` failed: {exc}") from exc

    title = _scalar(search("title"))
    if title is None:
        raise Unreadable(f"title: `{mapping.title}` found no text in the payload")
    labels: dict[str, str] = {}
    found = search("labels")
    if found is not None:
        if not isinstance(found, dict):
            raise Unreadable(f"labels: `{mapping.labels}` found {type(found).__name__}, not an object")
        for key, value in list(found.items())[:150]:
            try:
                text = _scalar(value) if not isinstance(value, dict | list) else json.dumps(value)[:4_000]
            except ValueError:
                text = None
            name = str(key).replace("\x00", "").strip()[:256]
            if name and text is not None:
                labels[name] = text[:4_000]
    raw_status = _scalar(search("status"))
    status = "firing"
    if raw_status is not None:
        word = raw_status.lower()
        if word in RESOLVED_WORDS:
            status = "resolved"
        elif word not in FIRING_WORDS:
            raise Unreadable(
                f"status: `{mapping.status}` found {raw_status[:100]!r}, neither firing nor resolved"
            )
    severity = _scalar(search("severity")) or ""
    service = _scalar(search("service"))
    dedup = _scalar(search("dedup_key"))
    if dedup is None:
        identity = {"title": title, "service": service or "", "labels": labels}
        dedup = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return MappedAlert(
        title=title[:TITLE_MAX],
        severity=map_severity(severity).value,
        dedup_key=dedup[:255],
        status=status,  # type: ignore[arg-type]
        service=service[:SERVICE_MAX] if service else None,
        labels=labels,
    )


def json_notification(
    source_id: str, source_name: str, alert: MappedAlert, body: Any, received_at: datetime
) -> AlertmanagerPayload:
    """One mapped alert as an Alertmanager notification of the group of its dedup key; the body as
    received is the description, for the responders."""
    labels = {**alert.labels, "alertname": source_name[:256], "severity": alert.severity}
    if alert.service:
        labels["service"] = alert.service
    try:
        pretty = json.dumps(body, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        pretty = str(body)
    firing = alert.status == "firing"
    return AlertmanagerPayload(
        version="json",
        groupKey=f"{JSON_GROUP_PREFIX}{source_id}:{alert.dedup_key}",
        status=alert.status,
        receiver=source_name[:512],
        alerts=[
            AlertmanagerAlert(
                status=alert.status,
                labels=labels,
                annotations={
                    "summary": alert.title,
                    "description": pretty.replace("\x00", "")[:ANNOTATION_MAX],
                },
                startsAt=received_at,
                endsAt=None if firing else received_at,
                fingerprint=pagerduty_fingerprint(alert.dedup_key),
            )
        ],
    )


# ---- maintenance windows and silences

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@functools.lru_cache(maxsize=1_024)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def silence_problem(spec: SilenceSpec) -> tuple[str, str] | None:
    """(field, why) for what the schema cannot check (a time zone that exists, a regular expression
    that compiles), or None."""
    if spec.recurrence is not None:
        try:
            zoneinfo.ZoneInfo(spec.recurrence.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return "recurrence.timezone", f"{spec.recurrence.timezone!r} is not an IANA time zone"
    for index, matcher in enumerate(spec.matchers):
        if matcher.op in ("=~", "!~"):
            try:
                _pattern(matcher.value)
            except re.error as exc:
                return f"matchers.{index}.value", f"not a regular expression: {exc}"
    return None


def _starts(spec: SilenceSpec, recurrence: Recurrence, day: date) -> datetime:
    """The occurrence on `day` (local to the recurrence's zone), at `starts_at`'s local time of day."""
    zone = zoneinfo.ZoneInfo(recurrence.timezone)
    try:
        at = spec.starts_at.astimezone(zone)
    except OverflowError:
        # At either end of datetime's range: a week later (or earlier) has the same time of day.
        week = timedelta(days=7 if spec.starts_at.year < 5_000 else -7)
        at = (spec.starts_at + week).astimezone(zone)
    return datetime.combine(day, dt_time(at.hour, at.minute, at.second), tzinfo=zone).astimezone(UTC)


def _occurrence(spec: SilenceSpec, recurrence: Recurrence, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence `at` falls in, or None."""
    length = timedelta(minutes=spec.duration_minutes)
    local = at.astimezone(zoneinfo.ZoneInfo(recurrence.timezone)).date()
    for back in range(spec.duration_minutes // 1_440 + 2):
        day = local - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in recurrence.weekdays:
            continue
        start = _starts(spec, recurrence, day)
        if spec.starts_at <= start <= at < start + length:
            if recurrence.until is None or start < recurrence.until:
                return start, start + length
    return None


def _next_start(spec: SilenceSpec, recurrence: Recurrence, after: datetime) -> datetime | None:
    local = after.astimezone(zoneinfo.ZoneInfo(recurrence.timezone)).date()
    for ahead in range(-1, 8):
        day = local + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in recurrence.weekdays:
            continue
        start = _starts(spec, recurrence, day)
        if start >= after and start >= spec.starts_at:
            return start if recurrence.until is None or start < recurrence.until else None
    return None


def silence_state(spec: SilenceSpec, now: datetime) -> tuple[SilenceState, datetime | None]:
    """Active (and when this window closes), upcoming (and when the next opens), or expired."""
    try:
        return _silence_state(spec, now)
    except OverflowError:
        # A window whose end or next occurrence is past year 9999: it starts, and never ends.
        if now < spec.starts_at:
            return SilenceState.UPCOMING, spec.starts_at
        return SilenceState.ACTIVE, None


def _silence_state(spec: SilenceSpec, now: datetime) -> tuple[SilenceState, datetime | None]:
    recurrence = spec.recurrence
    if recurrence is None:
        ends = spec.starts_at + timedelta(minutes=spec.duration_minutes)
        if now < spec.starts_at:
            return SilenceState.UPCOMING, spec.starts_at
        return (SilenceState.ACTIVE, ends) if now < ends else (SilenceState.EXPIRED, None)
    current = _occurrence(spec, recurrence, now)
    if current is not None:
        return SilenceState.ACTIVE, current[1]
    following = _next_start(spec, recurrence, max(now, spec.starts_at))
    return (SilenceState.UPCOMING, following) if following else (SilenceState.EXPIRED, None)


def _matcher_holds(matcher: EqualityMatcher | RegexMatcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.label, "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    found = _pattern(matcher.value).fullmatch(value) is not None
    return found if matcher.op == "=~" else not found


def silence_matches(spec: SilenceSpec, labels: Mapping[str, str], service: str, at: datetime) -> bool:
    """Whether an alert with these labels, of this service, arriving `at`, is silenced by `spec`."""
    if silence_state(spec, at)[0] is not SilenceState.ACTIVE:
        return False
    if spec.services and service not in spec.services:
        return False
    return all(_matcher_holds(m, labels) for m in spec.matchers)


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


# ---- signing (generic webhooks): runtime.signing, shared with oncall's webhook contact methods

SECRET_PREFIX = "whsec_"


# ---- retries


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float = 0.5) -> float:
    """Delay after failed attempt `attempt` (1, 2, ...): base * 2^(attempt-1), capped, spread by
    `jitter` (0..1, drawn by the caller) between 75 % and 125 %, so retries of many deliveries to one
    recovering endpoint do not arrive together."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return float(delay * (0.75 + 0.5 * min(1.0, max(0.0, jitter))))


# Command errors that retrying will not change: the notification is marked failed at once.
FINAL_ERRORS = frozenset({ErrorCode.VALIDATION, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.CONFLICT})


def inbound_gives_up(error: Exception, attempts: int, max_attempts: int) -> bool:
    """Whether a notification whose `attempts`-th attempt failed with `error` fails for good: a stored
    payload that no longer reads, or a refusal by incidents, will not change; anything else is tried
    again until the attempts run out."""
    final = isinstance(error, ValidationError) or (
        isinstance(error, CommandFailed) and error.code in FINAL_ERRORS
    )
    return final or attempts >= max_attempts


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


# ---- the messages chat targets get


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


@dataclass(frozen=True)
class Notice:
    """What every chat message says, whatever its format: what happened, to which incident, the top
    hypothesis, a note, and the link to the incident."""

    incident: IncidentFacts
    what: str
    headline: str
    note: str
    link: str

    @property
    def confidence(self) -> str:
        value = self.incident.top_confidence
        return f" ({value:.0%})" if value is not None and self.incident.top_hypothesis else ""

    @property
    def fallback(self) -> str:
        i = self.incident
        return f"[{i.severity}] {self.headline} ({i.service_name}): {self.what}, {i.state}"


def notice(event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str) -> Notice:
    if event_type == "incident.created":
        what = "Incident opened"
    elif event_type == "incident.state_changed":
        what = f"{data.get('from_state', '?')} → {data.get('to_state', incident.state)}"
    elif event_type == "hypothesis.generated":
        what = "Hypotheses ready"
    else:
        what = event_type
    note = str(data.get("note") or "").strip() if event_type == "incident.state_changed" else ""
    return Notice(incident, what, f"{incident.key} · {incident.title}", note, link)


SEVERITY_MARK = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
}
# Hex colours by severity, for the formats that colour a message (Mattermost, Discord).
SEVERITY_COLOUR = {"critical": "#d92d20", "high": "#f79009", "medium": "#fdb022", "low": "#98a2b3"}


def slack_escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup; a title must not become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_action_value(webhook_id: str, incident_id: str) -> str:
    """A button's `value`: which webhook's signing secret verifies the click, and which incident."""
    return f"{webhook_id}:{incident_id}"


def read_action_value(value: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    webhook, _, incident = value.partition(":")
    try:
        return uuid.UUID(webhook), uuid.UUID(incident)
    except ValueError:
        return None


def slack_buttons(webhook_id: str, incident: IncidentFacts) -> list[dict[str, Any]]:
    """Acknowledge and Resolve, as far as the incident's state still allows them."""
    value = slack_action_value(webhook_id, incident.id)
    buttons: list[dict[str, Any]] = []
    if incident.state == "detected":
        buttons.append(
            {
                "type": "button",
                "action_id": INCIDENT_ACKNOWLEDGE,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "style": "primary",
                "value": value,
            }
        )
    if incident.state != "resolved":
        buttons.append(
            {
                "type": "button",
                "action_id": INCIDENT_RESOLVE,
                "text": {"type": "plain_text", "text": "Resolve"},
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Resolve the incident?"},
                    "text": {"type": "plain_text", "text": _clip(f"{incident.key} · {incident.title}", 300)},
                    "confirm": {"type": "plain_text", "text": "Resolve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        )
    return buttons


def slack_message(
    event_type: str,
    data: Mapping[str, Any],
    incident: IncidentFacts,
    link: str,
    *,
    interactive: str | None = None,
    done_by: str = "",
) -> dict[str, Any]:
    """A Block Kit message: what happened, severity, state, service, the top hypothesis, a link; with
    `interactive` (the id of a Slack webhook that has a signing secret) the Acknowledge and Resolve
    buttons; `done_by` says who clicked (the message as updated in place after a click)."""
    n = notice(event_type, data, incident, link)
    if incident.top_hypothesis:
        text = slack_escape(_clip(incident.top_hypothesis, 2_500))
        hypothesis = f"*Top hypothesis*{n.confidence}\n{text}"
    else:
        hypothesis = "*Top hypothesis*\n_pending_"
    mark = SEVERITY_MARK.get(incident.severity, ":white_circle:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(n.headline, 150), "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{mark} {incident.severity}"},
                {"type": "mrkdwn", "text": f"*State*\n{incident.state}"},
                {"type": "mrkdwn", "text": f"*Service*\n{slack_escape(incident.service_name)}"},
                {"type": "mrkdwn", "text": f"*Event*\n{slack_escape(n.what)}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": hypothesis}},
    ]
    if n.note:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(_clip(n.note, 2_000))}]}
        )
    if done_by:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(done_by, 3_000)}]})
    buttons = slack_buttons(interactive, incident) if interactive else []
    open_button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": "Open incident"}}
    if interactive:
        # Slack posts a click on a link button to the app too: ours, verified and answered, no effect.
        open_button |= {"action_id": INCIDENT_OPEN, "value": slack_action_value(interactive, incident.id)}
    open_button["url"] = link
    blocks.append({"type": "actions", "elements": [*buttons, open_button]})
    return {"text": slack_escape(_clip(n.fallback, 3_000)), "blocks": blocks}


MARKDOWN_SPECIAL = re.compile(r"([\\`*_~\[\]()>#|])")
# "@channel", "@here", "@all", "@everyone", "@someone": a zero-width joiner after the @ keeps the
# text and stops the chat from notifying everybody because an alert's title says so.
MENTION = re.compile(r"@(?=[A-Za-z0-9_])")


def no_mentions(text: str) -> str:
    return MENTION.sub("@\u200b", text)


def markdown_escape(text: str) -> str:
    """Text shown literally in Markdown (Mattermost, Discord): no links, no formatting, no mass
    mentions."""
    return no_mentions(MARKDOWN_SPECIAL.sub(r"\\\1", text))


def teams_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Teams Workflows ("When a Teams webhook request is received") message: one Adaptive Card
    (schema 1.4, what Teams renders) with the headline, the facts, the top hypothesis and a button.
    Text goes as it is: cards show no backslash escapes, and a Teams mention needs an explicit
    `msteams.entities` entry, so "@channel" in a title notifies nobody."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}: {(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**: _pending_"
    )
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": (_clip(n.headline, 300)),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention" if incident.severity in ("critical", "high") else "Default",
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Severity", "value": incident.severity},
                {"title": "State", "value": incident.state},
                {"title": "Service", "value": (incident.service_name)},
                {"title": "Event", "value": (n.what)},
            ],
        },
        {"type": "TextBlock", "text": hypothesis, "wrap": True},
    ]
    if n.note:
        body.append({"type": "TextBlock", "text": (_clip(n.note, 2_000)), "wrap": True, "isSubtle": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": _clip(n.fallback, 3_000),
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def mattermost_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Mattermost incoming-webhook message: a line of text and one message attachment (colour by
    severity, the facts as short fields, the top hypothesis)."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}\n{markdown_escape(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**\n_pending_"
    )
    text = hypothesis + (f"\n\n{markdown_escape(_clip(n.note, 2_000))}" if n.note else "")
    return {
        "text": f"{markdown_escape(n.what)}: [{markdown_escape(incident.key)}]({link})",
        "attachments": [
            {
                "fallback": markdown_escape(_clip(n.fallback, 3_000)),
                "color": SEVERITY_COLOUR.get(incident.severity, "#98a2b3"),
                # Plain text in an attachment (no Markdown), but a mention would still be read.
                "title": no_mentions(_clip(n.headline, 250)),
                "title_link": link,
                "text": text,
                "fields": [
                    {"short": True, "title": "Severity", "value": incident.severity},
                    {"short": True, "title": "State", "value": incident.state},
                    {"short": True, "title": "Service", "value": markdown_escape(incident.service_name)},
                    {"short": True, "title": "Event", "value": markdown_escape(n.what)},
                ],
            }
        ],
    }


def discord_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Discord webhook message: one embed within Discord's limits (title 256, description 4096,
    field values 1024), and no mentions parsed at all."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}\n{markdown_escape(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**\n*pending*"
    )
    description = hypothesis + (f"\n\n{markdown_escape(_clip(n.note, 1_000))}" if n.note else "")
    colour = SEVERITY_COLOUR.get(incident.severity, "#98a2b3")
    return {
        "content": _clip(markdown_escape(n.fallback), 2_000),
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": _clip(n.headline, 256),
                "url": link,
                "description": _clip(description, 4_096),
                "color": int(colour[1:], 16),
                "fields": [
                    {"name": "Severity", "value": incident.severity, "inline": True},
                    {"name": "State", "value": incident.state, "inline": True},
                    {
                        "name": "Service",
                        "value": _clip(markdown_escape(incident.service_name), 1_024),
                        "inline": True,
                    },
                    {"name": "Event", "value": _clip(markdown_escape(n.what), 1_024), "inline": True},
                ],
            }
        ],
    }


Renderer = Callable[[str, Mapping[str, Any], IncidentFacts, str], dict[str, Any]]
# The chat formats, by webhook kind (`generic` sends the envelope itself, signed).
CHAT_MESSAGES: dict[str, Renderer] = {
    "slack": slack_message,
    "teams": teams_message,
    "mattermost": mattermost_message,
    "discord": discord_message,
}


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


# ---- deploys and deliveries, as the commands about them decide

DEPLOY_NAMESPACE = uuid.UUID("0b6f3f0e-61a4-4a39-9a5e-7d2c84e1f5b3")


def deploy_identity(tenant_id: str, report: DeployReport) -> str | None:
    """The id a deploy report with its own time always gets (CI retrying a request sends the same
    deploy twice); None for one without a time, which is a new deploy each time."""
    if report.deployed_at is None:
        return None
    parts = (tenant_id, report.service_name, report.environment, report.version)
    identity = "\x00".join((*parts, report.commit or "", report.deployed_at.isoformat()))
    return str(uuid.uuid5(DEPLOY_NAMESPACE, identity))


def retried_delivery(status: DeliveryStatus, now: datetime) -> dict[str, Any] | None:
    """What retrying a delivery by hand changes: a failed one gets a fresh series of attempts, a
    pending one is made due now; None for one that succeeded already."""
    if status is DeliveryStatus.SUCCEEDED:
        return None
    values: dict[str, Any] = {
        "status": DeliveryStatus.PENDING.value,
        "next_attempt_at": now,
        "updated_at": now,
    }
    if status is DeliveryStatus.FAILED:
        values["attempts"] = 0
    return values


@dataclass(frozen=True)
class Outcome:
    """What one attempt to send a delivery gave."""

    ok: bool
    status_code: int | None
    error: str | None
    retry: bool


def delivery_after(
    outcome: Outcome, attempts: int, max_attempts: int, retry_in: timedelta, now: datetime
) -> dict[str, Any]:
    """What an attempt changes in its delivery (its lease ends): succeeded; pending again in
    `retry_in` while the failure may pass and attempts remain; else failed."""
    values: dict[str, Any] = {
        "lease_until": None,
        "updated_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.ok:
        values.update(status=DeliveryStatus.SUCCEEDED.value, delivered_at=now)
    elif outcome.retry and attempts < max_attempts:
        values.update(status=DeliveryStatus.PENDING.value, next_attempt_at=now + retry_in)
    else:
        values.update(status=DeliveryStatus.FAILED.value)
    return values


def pick_deliveries(
    candidates: Sequence[tuple[uuid.UUID, uuid.UUID]],
    sending: Mapping[uuid.UUID, int],
    free: int,
    per_endpoint: int,
) -> list[uuid.UUID]:
    """Of the due deliveries (id, webhook id), oldest due first, those a sender takes: at most `free`,
    and no webhook past `per_endpoint` counting what is being sent to it already."""
    counts = Counter(sending)
    picked: list[uuid.UUID] = []
    for delivery_id, webhook_id in candidates:
        if len(picked) < free and counts[webhook_id] < per_endpoint:
            picked.append(delivery_id)
            counts[webhook_id] += 1
    return picked


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
