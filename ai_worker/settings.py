from __future__ import annotations

from pydantic import Field, SecretStr

from runtime.settings import ServiceSettings


class AiWorkerSettings(ServiceSettings):
    anthropic_api_key: SecretStr | None = None
    # How far back past incidents count as evidence.
    history_days: int = Field(default=90, ge=1)
