from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from runtime.settings import JwtSettings, ServiceSettings


class GatewaySettings(ServiceSettings, JwtSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    # Listen with SO_REUSEPORT, so that several gateways on one machine share the port
    # (`sre-copilot up --replicas 2` sets it).
    reuse_port: bool = False
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
    # Live-feed websockets one organisation may hold open on one gateway; one more is closed (4429).
    live_max_connections_per_tenant: int = Field(default=200, ge=1)
    # How often an open websocket checks that its user may still read (deactivation, a password
    # change): the bound when the projector's own notice is missed. Usually it closes at once.
    live_recheck_seconds: float = Field(default=30.0, gt=0)
    # `Idempotency-Key`: how long an answer is kept for retries, how long a request in progress holds
    # its key before a retry may take it over (its gateway died), how often expired keys are pruned.
    idempotency_key_ttl_seconds: int = Field(default=86_400, ge=60)
    idempotency_lock_seconds: float = Field(default=60.0, gt=0)
    idempotency_prune_interval_seconds: float = Field(default=600.0, gt=0)
    # Revoking a key or deactivating a user answers once the gateway refuses the credential; past
    # read-your-writes' wait it looks at its read model for this much longer, then answers 503.
    revocation_confirm_seconds: float = Field(default=2.0, ge=0)
    # Drafting a postmortem waits this long for ai_worker: Claude writing the narrative takes longer
    # than a command usually may (its own budget is ANTHROPIC_TOTAL_TIMEOUT_SECONDS on ai_worker).
    postmortem_draft_timeout_seconds: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _room_for_two_batches(self) -> GatewaySettings:
        if self.live_queue_size < 2 * self.projector_batch_size:
            raise ValueError("LIVE_QUEUE_SIZE must be at least twice PROJECTOR_BATCH_SIZE")
        return self
