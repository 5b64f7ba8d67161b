"""Sending and retrying: the webhook secret's prefix, backing off, when a notification gives up,
which webhook targets are allowed, and what an attempt or a retry by hand does to a delivery."""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from contracts.commands import CommandFailed, ErrorCode
from contracts.integrations import DeliveryStatus

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
