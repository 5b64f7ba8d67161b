from __future__ import annotations

from pydantic import Field

from runtime.settings import JwtSettings, ServiceSettings


class GatewaySettings(ServiceSettings, JwtSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"]
    )
    # A write answers once the projector has applied its event, or after this long regardless.
    read_your_writes_timeout_seconds: float = 2.0
    max_request_bytes: int = 1_000_000
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
