from __future__ import annotations

from pydantic import Field, SecretStr

from runtime.settings import ServiceSettings


class IntegrationsSettings(ServiceSettings):
    # Where people open an incident: notifications link to `<PUBLIC_BASE_URL>/incidents/<id>`.
    public_base_url: str = "http://127.0.0.1:8000"
    # Fernet keys (comma-separated; the first encrypts, all decrypt, so a key can be rotated) for the
    # webhook signing secrets kept in the database. Unset: a key is generated once and kept in the
    # database itself, which protects nothing against a database leak; set it in production.
    webhook_encryption_keys: SecretStr | None = None
    # Each attempt of a delivery, connection to last byte.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    # Delay after attempt n: base * 2^(n-1), at most max (with +-25 % jitter).
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3_600.0, gt=0)
    # Deliveries in flight per replica, and per webhook (a slow endpoint holds at most this many).
    webhook_concurrency: int = Field(default=64, ge=1)
    webhook_concurrency_per_endpoint: int = Field(default=2, ge=1)
    # Allow webhook URLs that point to loopback, private or link-local addresses (tests, on-premises).
    webhook_allow_private_targets: bool = False
    max_webhooks_per_tenant: int = Field(default=20, ge=1)
    max_json_sources_per_tenant: int = Field(default=50, ge=1)
    max_silences_per_tenant: int = Field(default=200, ge=1)
    max_correlation_rules_per_tenant: int = Field(default=50, ge=1)
    # Firing alerts of open incidents a new alert is compared with (those that started closest).
    correlation_candidates: int = Field(default=2_000, ge=1)
    # Firing alerts (the newest) a correlation preview reads from the last day's notifications.
    correlation_preview_alerts: int = Field(default=5_000, ge=1)
    # How often a replica looks for work that another replica stored or a crash left behind.
    poll_seconds: float = Field(default=1.0, gt=0)
    # Processing a stored Alertmanager notification: attempts before it is marked failed, back-off.
    inbound_max_attempts: int = Field(default=10, ge=1)
    inbound_backoff_base_seconds: float = Field(default=1.0, gt=0)
    # Tenants whose notifications are worked on at once per replica, and notifications (of different
    # alert groups; a group's own are applied one after another, in arrival order).
    inbound_concurrency: int = Field(default=4, ge=1)
    inbound_parallel_notifications: int = Field(default=8, ge=1)
    rejections_kept_per_tenant: int = Field(default=500, ge=1)
    # Finished work is deleted once this old (never pending or in-progress rows): inbound
    # notifications processed or failed (and what they did, shown by `GET .../inbound`), and webhook
    # deliveries that succeeded or failed (the delivery log). A delivery is also what keeps an event
    # from being sent twice, so it is kept longer than a dead letter can wait for a replay
    # (DLQ_MAX_AGE_DAYS, 30).
    inbound_retention_days: float = Field(default=14.0, gt=0)
    delivery_retention_days: float = Field(default=35.0, gt=0)
