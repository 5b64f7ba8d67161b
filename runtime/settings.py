"""Settings every service shares; each service's own `settings.py` extends them."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.bus import DUPLICATE_WINDOW_SECONDS


def _instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamSettings(BaseSettings):
    """The streams' replicas and the `DLQ`'s limits, declared by whoever starts first (every service,
    the gateway, `sre-copilot up`) and changed only by `sre-copilot streams apply`: give them all the
    same environment. `EVENTS` has no limits at all."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    # A dead letter is kept this long for an operator to inspect and replay (`sre-copilot dlq`).
    dlq_max_age_days: float = Field(default=30.0, gt=0)
    # Past either bound the oldest dead letters go first: a new one is never refused, so a consumer
    # that gives up on a message always moves on.
    dlq_max_messages: int = Field(default=100_000, ge=1)
    dlq_max_bytes: int = Field(default=256 * 1024**2, ge=1024**2)
    # Copies of EVENTS and DLQ kept by a NATS cluster (3 on a three-node cluster); consumers follow
    # their stream. An existing stream keeps its own until `sre-copilot streams apply`.
    stream_replicas: int = Field(default=1, ge=1, le=5)


class ServiceSettings(StreamSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/sre_copilot"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    instance: str = Field(default_factory=_instance_name)
    # How long a command waits for its reply before the caller gives up.
    command_timeout_seconds: float = 10.0
    # Published outbox rows are deleted once this old. Never less than the broker's duplicate window:
    # within it a row may still be published again (a relay whose lease ran out), which only the
    # broker's de-duplication makes harmless.
    outbox_retention_seconds: float = Field(default=3_600.0, ge=DUPLICATE_WINDOW_SECONDS)
    # How often each replica deletes what its retention settings let go (outbox rows, and each
    # service's finished work: inbound notifications, webhook deliveries, covered triggers).
    prune_interval_seconds: float = Field(default=60.0, gt=0)


class JwtSettings(BaseSettings):
    """What issuer and verifier agree on. Keys are not here: auth holds the private key, and the
    gateway fetches the public keys from auth (JWKS over the bus)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    jwt_issuer: str = "sre-copilot"
    jwt_audience: str = "sre-copilot-api"
    jwt_algorithm: Literal["RS256"] = "RS256"
    jwt_access_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
