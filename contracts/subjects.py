"""Subject and stream names: the only place they are spelled out."""

from __future__ import annotations

import re

EVENTS_STREAM = "EVENTS"
EVENTS_PREFIX = "events"
DLQ_STREAM = "DLQ"
DLQ_PREFIX = "dlq"

# Durable consumers, one per purpose: `<service>_<purpose>`.
GATEWAY_PROJECTOR = "gateway_projector"
AI_WORKER_CONSUMER = "ai_worker"
INCIDENTS_DIRECTORY = "incidents_directory"
INTEGRATIONS_NOTIFIER = "integrations_notifier"
ONCALL_ESCALATOR = "oncall_escalator"

# Header on events that `sre-copilot events import` publishes: consumers update their views from
# them but take no action (no new hypotheses, no notifications) for history that happened elsewhere.
IMPORTED_HEADER = "Sre-Imported"

# A subject token: no dots, wildcards or spaces.
TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Auth's public keys, asked for with an empty body (no command model): `PublicKeys` comes back.
AUTH_JWKS = "cmd.auth.jwks"

SERVICES = ("auth", "incidents", "ai_worker", "integrations", "oncall")


def event_subject(tenant_id: str, event_type: str) -> str:
    """`incident.created` of tenant t_1 travels on `events.t_1.incident.created`."""
    if not TENANT_ID.fullmatch(tenant_id):
        raise ValueError(
            f"tenant id {tenant_id!r} must be letters, digits, '_' or '-' (no dots or wildcards)"
        )
    return f"{EVENTS_PREFIX}.{tenant_id}.{event_type}"


def tenant_events(tenant_id: str) -> str:
    return f"{EVENTS_PREFIX}.{tenant_id}.>"


def events_of_type(event_type: str) -> str:
    """Every tenant's events of one type, e.g. `events.*.incident.created`."""
    return f"{EVENTS_PREFIX}.*.{event_type}"


def all_events() -> str:
    return f"{EVENTS_PREFIX}.>"


def dead_letter_subject(consumer: str) -> str:
    return f"{DLQ_PREFIX}.{consumer}"


def dead_letter_replay_subject(consumer: str) -> str:
    """Request/reply to the consumer that gave up on a message: the request carries the dead letter
    (its data and headers as stored in `DLQ`); the reply is `{"ok": true}` once the consumer has
    handled it (idempotent by event id), or a typed error."""
    return f"cmd.dlq.{consumer}.replay"


def command_subject(service: str, command: str) -> str:
    return f"cmd.{service}.{command}"


def ping_subject(service: str) -> str:
    """Answered by any one replica (a queue group): is the service there at all."""
    return command_subject(service, "ping")


def host_ping_subject(service: str, host: str) -> str:
    """Answered only by the replicas on `host` (a container's or pod's hostname): a probe run inside
    a container asks this one, so that another replica's answer cannot hide a stuck one."""
    token = re.sub(r"[^A-Za-z0-9_-]", "_", host)[:64] or "_"
    return f"{ping_subject(service)}.{token}"


def metrics_subject(service: str) -> str:
    """Asked of every replica at once (no queue group): each answers with its own metrics."""
    return command_subject(service, "metrics")
