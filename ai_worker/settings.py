from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from runtime.settings import ServiceSettings


class AiWorkerSettings(ServiceSettings):
    # "auto": Claude when ANTHROPIC_API_KEY is set, the offline rules otherwise.
    ai_engine: Literal["auto", "rules", "claude"] = "auto"

    anthropic_api_key: SecretStr | None = None
    # The SDK marks claude-sonnet-4-5 deprecated (end of life 2026-11-30): a current Sonnet instead.
    anthropic_model: str = "claude-sonnet-5-5"
    # A compatible gateway or proxy can stand in for the Anthropic API.
    anthropic_base_url: str | None = None
    # Per HTTP request; the SDK retries 429/5xx/timeouts with exponential back-off (honouring
    # retry-after) up to anthropic_max_retries times.
    anthropic_timeout_seconds: float = Field(default=30.0, gt=0)
    anthropic_max_retries: int = Field(default=3, ge=0, le=10)
    # The whole tool-use loop of one incident, retries included; past it the rules answer.
    anthropic_total_timeout_seconds: float = Field(default=90.0, gt=0)
    anthropic_max_tool_iterations: int = Field(default=6, ge=1, le=20)
    # Input + output tokens spent on one generation, over every turn of the loop.
    anthropic_max_tokens_per_incident: int = Field(default=40_000, ge=1_000)
    anthropic_max_output_tokens: int = Field(default=2_048, ge=256)
    # PromQL queries Claude may run for one generation (each bounded by prometheus_timeout_seconds).
    anthropic_max_metric_queries: int = Field(default=4, ge=0, le=20)

    # One Prometheus for every tenant (per-tenant configuration is not there yet).
    prometheus_url: str | None = None
    prometheus_timeout_seconds: float = Field(default=5.0, gt=0)
    # The label that names a service in your metrics, and PromQL templates that override the
    # defaults in ai_worker/prometheus.py by name ("cpu", "memory", "error_rate", "latency_p99",
    # "request_rate"); in a template `$label` is that label and `$service` the incident's service.
    # A JSON object in the environment.
    prometheus_service_label: str = "service"
    prometheus_queries: dict[str, str] = Field(default_factory=dict)

    # How far back past incidents count as evidence.
    history_days: int = Field(default=90, ge=1)
    # Deploys of the incident's service (or of a service its report names) this long before its
    # start are "recent changes".
    deploy_window_hours: float = Field(default=24.0, gt=0)
    # A directory extending the rules engine's evidence catalogue (ai_worker/signatures.yaml):
    # common.yaml for every tenant, <tenant_id>.yaml for one; re-read when a file changes.
    ai_signatures_dir: Path | None = None
    # Triggers for one incident within this long of its last generation make one more generation.
    coalesce_window_seconds: float = Field(default=2.0, ge=0)
    # How long one worker may hold an incident's generation before another may take over.
    generation_lease_seconds: float = Field(default=180.0, gt=0)
    # Triggers covered by a generation are deleted once this old (those still waiting never are).
    # A covered trigger is what makes a redelivered or replayed event a no-op, so it is kept longer
    # than a dead letter can wait for a replay (DLQ_MAX_AGE_DAYS, 30).
    trigger_retention_days: float = Field(default=35.0, gt=0)
