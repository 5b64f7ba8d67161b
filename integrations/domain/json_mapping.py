"""Generic JSON sources: a JMESPath mapping from any body to one alert."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser

from contracts.integrations import AlertmanagerAlert, AlertmanagerPayload, JsonMapping, MappedAlert
from integrations.domain.alerts import SERVICE_MAX, TITLE_MAX, map_severity
from integrations.domain.pagerduty import ANNOTATION_MAX, pagerduty_fingerprint

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
