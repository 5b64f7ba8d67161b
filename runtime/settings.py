"""Settings every service shares; each service's own `settings.py` extends them."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/sre_copilot"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    instance: str = Field(default_factory=_instance_name)
    # How long a command waits for its reply before the caller gives up.
    command_timeout_seconds: float = 10.0


class JwtSettings(BaseSettings):
    """What issuer and verifier agree on. Keys are not here: auth holds the private key, and the
    gateway fetches the public keys from auth (JWKS over the bus)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    jwt_issuer: str = "sre-copilot"
    jwt_audience: str = "sre-copilot-api"
    jwt_algorithm: Literal["RS256"] = "RS256"
    jwt_access_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
