"""integrations' tables (schema `integrations`) and the advisory-lock ids its queries take."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from runtime.consumer import consumed_table
from runtime.outbox import outbox_table
from runtime.slack import seen_requests_table

SCHEMA = "integrations"
metadata = MetaData(schema=SCHEMA)

# Per-tenant options.
tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("auto_resolve", Boolean, nullable=False, server_default=text("true")),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every accepted Alertmanager/Grafana notification, stored before the sender gets its 202 and
# worked on in the background, in arrival order per tenant.
inbound = Table(
    "inbound",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: arrival order
    Column("tenant_id", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("alert_count", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("outcome", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True)),
    Index("ix_inbound_pending", "tenant_id", "id", postgresql_where=text("status = 'pending'")),
    Index("ix_inbound_tenant", "tenant_id", "id"),
    # What pruning reads: finished notifications by age.
    Index("ix_inbound_finished", "processed_at", postgresql_where=text("status <> 'pending'")),
)

# Invalid payloads, kept (a bounded number per tenant) so that an admin can see what was refused.
rejections = Table(
    "rejections",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB),
    Column("body", Text, nullable=False),
    Column("body_truncated", Boolean, nullable=False),
    Index("ix_rejections_tenant", "tenant_id", "id"),
)

# One row per Alertmanager group (groupKey, hashed: keys can be long): the incident it opened last.
# Its row lock serialises everything that happens to the group.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("group_hash", String(64), primary_key=True),
    Column("group_key", Text, nullable=False),
    Column("incident_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The last known state of each alert of a group, by fingerprint: what makes a re-sent alert a no-op.
alerts = Table(
    "alerts",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("group_hash", String(64), primary_key=True),
    Column("fingerprint", String(128), primary_key=True),
    Column("incident_id", Uuid),
    Column("status", String(16), nullable=False),
    Column("alertname", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True)),
    Column("labels", JSONB, nullable=False),
    Column("annotations", JSONB, nullable=False),
    Column("generator_url", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_alerts_incident", "incident_id"),
    # What correlation reads: a tenant's firing alerts by when they started.
    Index("ix_alerts_firing_starts", "tenant_id", "starts_at", postgresql_where=text("status = 'firing'")),
)

# Incidents whose alerts are all resolved, to be resolved (written with the alert changes, done
# after their commit, so that a crash in between still resolves them).
pending_resolutions = Table(
    "pending_resolutions",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Index("ix_pending_resolutions_tenant", "tenant_id"),
)

deploys = Table(
    "deploys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("service_name", String(100), nullable=False),
    Column("version", String(200), nullable=False),
    Column("environment", String(200), nullable=False),
    Column("commit", String(200)),
    Column("author", String(200)),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# integrations' own view of incidents, from incidents' and ai_worker's events (and from the replies
# to the commands it sends): what a notification says, and whether a group's incident is open.
known_incidents = Table(
    "known_incidents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("service_name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("related_incident_id", Uuid),
    Column("hypotheses_generation", Integer, nullable=False, server_default=text("0")),
    Column("top_hypothesis", Text),
    Column("top_confidence", Float),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(120), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", JSONB, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # Fernet token of the signing secret (generic webhooks): it must be recoverable to sign.
    Column("secret_encrypted", LargeBinary),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhooks_tenant", "tenant_id", "id"),
)

# Generic JSON sources: a name and a JMESPath mapping each; bodies POSTed to one are read with it.
json_sources = Table(
    "json_sources",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("mapping", JSONB, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_json_sources_tenant", "tenant_id", "id"),
)

# Maintenance windows and silences: while one is on, matching firing alerts are recorded (status
# `silenced`) and open no incident. `spec` is the SilenceSpec as written.
silences = Table(
    "silences",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7
    Column("tenant_id", String(64), nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_silences_tenant", "tenant_id", "id"),
)

# Correlation rules: firing alerts of other groups sharing the rule's labels within its window join
# one open incident. `spec` is the CorrelationRuleSpec as written; they are tried oldest first.
correlation_rules = Table(
    "correlation_rules",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: creation order, the order rules are tried in
    Column("tenant_id", String(64), nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_correlation_rules_tenant", "tenant_id", "id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7
    Column("tenant_id", String(64), nullable=False),
    Column("webhook_id", Uuid, ForeignKey(webhooks.c.id, ondelete="CASCADE"), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("incident_id", Uuid),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # While set and in the future, a sender holds it; an expired lease makes it due again.
    Column("lease_until", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("webhook_id", "event_id", name="uq_deliveries_webhook_event"),
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_deliveries_webhook", "webhook_id", "id"),
    # What pruning reads: finished deliveries by their last change.
    Index("ix_deliveries_finished", "updated_at", postgresql_where=text("status <> 'pending'")),
)

# The Fernet key webhook secrets are encrypted with when WEBHOOK_ENCRYPTION_KEYS is not set.
keyring = Table(
    "keyring",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Who a click on a Slack button acts as: one Slack member per user of the organisation, and a Slack
# member (of a workspace) is one user.
slack_links = Table(
    "slack_links",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("slack_team_id", String(64), nullable=False),
    Column("slack_user_id", String(64), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "slack_team_id", "slack_user_id", name="uq_slack_links_member"),
)
slack_requests = seen_requests_table(metadata)

outbox = outbox_table(metadata)
consumed = consumed_table(metadata)

# Advisory-lock class for "this tenant's inbound queue is being worked on".
INBOUND_LOCK_CLASS = 0x1A7E
# Transaction-level advisory-lock class for "a notification of this tenant is deciding whether it
# correlates": groups are worked on side by side, and two alerts that correlate must not both open.
CORRELATION_LOCK_CLASS = 0x1A7F

# Advisory lock id: the delivery claims of every replica, one at a time, so that each webhook's
# concurrency limit counts what all of them are sending.
DELIVERY_CLAIM_LOCK = 0x5EC0_0101
