"""PagerDuty Events v2, read as an Alertmanager notification of one alert, and its change events
as deploys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.integrations import (
    AlertmanagerAlert,
    AlertmanagerPayload,
    DeployReport,
    PagerDutyChangePayload,
    PagerDutyLink,
    PagerDutyTrigger,
    PagerDutyUpdate,
)
from integrations.domain.alerts import SERVICE_CHARS, SERVICE_MAX

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
