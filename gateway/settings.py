from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from runtime.settings import JwtSettings, ServiceSettings


class GatewaySettings(ServiceSettings, JwtSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    # Other origins whose pages may call the API from a browser. None by default: the console is
    # served by the gateway itself (same origin), and `npm run dev` proxies through Vite.
    cors_origins: list[str] = Field(default_factory=list)
    # When set, `/metrics` asks for `Authorization: Bearer <METRICS_TOKEN>` (Prometheus's
    # `authorization` block); unset, it is open like `/health`.
    metrics_token: SecretStr | None = None
    # A write answers once the projector has applied its event, or after this long regardless.
    read_your_writes_timeout_seconds: float = 2.0
    max_request_bytes: int = 1_000_000
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; with none, the client
    # address is the TCP peer's. Rate limits are per client address, so only list your own proxies.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Events a websocket may have waiting before it counts as too slow and is closed (4408). The
    # projector hands over a whole batch at once, so a client that keeps up needs room for two.
    live_queue_size: int = Field(default=2_000, ge=1)

    @model_validator(mode="after")
    def _room_for_two_batches(self) -> GatewaySettings:
        if self.live_queue_size < 2 * self.projector_batch_size:
            raise ValueError("LIVE_QUEUE_SIZE must be at least twice PROJECTOR_BATCH_SIZE")
        return self
