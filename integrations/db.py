"""integrations' tables (schema `integrations`) and queries: inbound deliveries and what they did,
alert groups and their alerts, deploys, its own view of incidents (for notifications and to know
whether a group's incident is still open), webhooks and their deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
    and_,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from contracts.integrations import REJECTED_BODY_KEPT, InboundStatus
from runtime.consumer import consumed_table
from runtime.outbox import outbox_table
from runtime.retention import delete_in_batches
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


# ---- what several queries share


async def lock_and_count(conn: AsyncConnection, table: Table, tenant_id: str) -> int:
    """Lock the tenant's rows of `table` and count them: creations of one tenant are serialised,
    so that a per-tenant cap holds under concurrent requests."""
    await conn.execute(select(table.c.id).where(table.c.tenant_id == tenant_id).with_for_update())
    return int(
        await conn.scalar(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)) or 0
    )


async def _page(
    conn: AsyncConnection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    after: uuid.UUID | None,
    limit: int,
    newest_first: bool = True,
) -> list[Row[Any]]:
    """Up to `limit` + 1 rows past the cursor `after`, by id (UUIDv7: creation order): the extra
    one says there is more."""
    query = select(table).where(*where)
    if after is not None:
        query = query.where(table.c.id < after if newest_first else table.c.id > after)
    order = table.c.id.desc() if newest_first else table.c.id
    return list((await conn.execute(query.order_by(order).limit(limit + 1))).all())


async def _insert_returning(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Row[Any]:
    return (await conn.execute(table.insert().values(**values).returning(table))).one()


async def _tenant_row(
    conn: AsyncConnection, table: Table, tenant_id: str, row_id: uuid.UUID, lock: bool = False
) -> Row[Any] | None:
    query = select(table).where(table.c.id == row_id, table.c.tenant_id == tenant_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def _update_returning(
    conn: AsyncConnection, table: Table, row_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    statement = update(table).where(table.c.id == row_id).values(**values).returning(table)
    return (await conn.execute(statement)).one()


async def _delete(conn: AsyncConnection, table: Table, row_id: uuid.UUID) -> None:
    await conn.execute(delete(table).where(table.c.id == row_id))


# ---- settings


async def auto_resolve(conn: AsyncConnection, tenant_id: str) -> bool:
    value = await conn.scalar(
        select(tenant_settings.c.auto_resolve).where(tenant_settings.c.tenant_id == tenant_id)
    )
    return True if value is None else bool(value)


async def save_settings(
    conn: AsyncConnection, tenant_id: str, user_id: str, now: datetime, **values: Any
) -> None:
    statement = insert(tenant_settings).values(
        tenant_id=tenant_id, updated_by=user_id, updated_at=now, **values
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[tenant_settings.c.tenant_id],
            set_={"updated_by": user_id, "updated_at": now, **values},
        )
    )


# ---- inbound


async def queue_inbound(
    conn: AsyncConnection,
    *,
    delivery_id: uuid.UUID,
    tenant_id: str,
    source: str,
    key_id: str,
    correlation_id: str,
    group_key: str,
    alert_count: int,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """A notification accepted, to be worked on in the background (due now)."""
    await conn.execute(
        inbound.insert().values(
            id=delivery_id,
            tenant_id=tenant_id,
            source=source,
            key_id=key_id,
            correlation_id=correlation_id[:64],
            group_key=group_key,
            alert_count=alert_count,
            payload=payload,
            status=InboundStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            received_at=now,
        )
    )


async def inbound_page(
    conn: AsyncConnection, tenant_id: str, status: str | None, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's notifications, newest first."""
    where = [inbound.c.tenant_id == tenant_id]
    if status is not None:
        where.append(inbound.c.status == status)
    return await _page(conn, inbound, where, after, limit)


async def keep_rejection(
    conn: AsyncConnection,
    *,
    rejection_id: uuid.UUID,
    tenant_id: str,
    endpoint: str,
    key_id: str,
    received_at: datetime,
    message: str,
    details: Any,
    body: str,
    keep: int,
) -> None:
    """Keep a refused payload (its body cut to REJECTED_BODY_KEPT), and only the tenant's last `keep`."""
    await conn.execute(
        rejections.insert().values(
            id=rejection_id,
            tenant_id=tenant_id,
            endpoint=endpoint,
            key_id=key_id,
            received_at=received_at,
            message=message,
            details=details,
            body=body[:REJECTED_BODY_KEPT],
            body_truncated=len(body) > REJECTED_BODY_KEPT,
        )
    )
    await prune_rejections(conn, tenant_id, keep)


async def rejections_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's refused payloads, newest first."""
    return await _page(conn, rejections, [rejections.c.tenant_id == tenant_id], after, limit)


async def tenants_with_work(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Tenants with a due notification at the head of one of their alert groups (one waiting out a
    back-off holds up the later ones of its group), or with resolutions queued."""
    older = inbound.alias("older")
    earlier_pending = (
        select(older.c.id)
        .where(
            older.c.tenant_id == inbound.c.tenant_id,
            older.c.group_key == inbound.c.group_key,
            older.c.status == "pending",
            older.c.id < inbound.c.id,
        )
        .exists()
    )
    due = (
        select(inbound.c.tenant_id)
        .where(inbound.c.status == "pending", inbound.c.next_attempt_at <= now, ~earlier_pending)
        .union(select(pending_resolutions.c.tenant_id))
        .limit(limit)
    )
    return [r[0] for r in await conn.execute(due)]


async def next_inbound(conn: AsyncConnection, tenant_id: str, limit: int) -> list[Row[Any]]:
    """The oldest unprocessed delivery of each of the tenant's alert groups, oldest first, at most
    `limit`: a group's later deliveries wait for its head, so each group's order is kept, while
    different groups are independent (an alert storm's groups go side by side)."""
    heads = (
        select(inbound)
        .where(inbound.c.tenant_id == tenant_id, inbound.c.status == "pending")
        .distinct(inbound.c.group_key)
        .order_by(inbound.c.group_key, inbound.c.id)
        .subquery()
    )
    return list((await conn.execute(select(heads).order_by(heads.c.id).limit(limit))).all())


async def lock_group(
    conn: AsyncConnection, tenant_id: str, group_hash: str, group_key: str, now: datetime
) -> Row[Any]:
    await conn.execute(
        insert(alert_groups)
        .values(
            tenant_id=tenant_id, group_hash=group_hash, group_key=group_key, created_at=now, updated_at=now
        )
        .on_conflict_do_nothing()
    )
    query = (
        select(alert_groups)
        .where(alert_groups.c.tenant_id == tenant_id, alert_groups.c.group_hash == group_hash)
        .with_for_update()
    )
    return (await conn.execute(query)).one()


async def known_alerts(
    conn: AsyncConnection, tenant_id: str, group_hash: str, fingerprints: Sequence[str]
) -> list[Row[Any]]:
    query = select(alerts).where(
        alerts.c.tenant_id == tenant_id,
        alerts.c.group_hash == group_hash,
        alerts.c.fingerprint.in_(list(fingerprints)),
    )
    return list((await conn.execute(query)).all())


async def save_alert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    statement = insert(alerts).values(**values)
    keys = {"tenant_id", "group_hash", "fingerprint"}
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[alerts.c.tenant_id, alerts.c.group_hash, alerts.c.fingerprint],
            set_={k: v for k, v in values.items() if k not in keys},
        )
    )


async def firing_alerts_of(conn: AsyncConnection, incident_id: uuid.UUID) -> int:
    return int(
        await conn.scalar(
            select(func.count())
            .select_from(alerts)
            .where(alerts.c.incident_id == incident_id, alerts.c.status == "firing")
        )
        or 0
    )


async def try_lock_inbound(conn: AsyncConnection, tenant_id: str) -> bool:
    """Take the session-level lock on the tenant's inbound queue, if no other replica holds it."""
    held = await conn.scalar(
        text("SELECT pg_try_advisory_lock(:c, hashtext(:t))"), {"c": INBOUND_LOCK_CLASS, "t": tenant_id}
    )
    return bool(held)


async def unlock_inbound(conn: AsyncConnection, tenant_id: str) -> None:
    await conn.execute(
        text("SELECT pg_advisory_unlock(:c, hashtext(:t))"), {"c": INBOUND_LOCK_CLASS, "t": tenant_id}
    )


async def lock_correlation(conn: AsyncConnection, tenant_id: str) -> None:
    """The tenant's correlation lock, held until the transaction ends."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:c, hashtext(:t))"), {"c": CORRELATION_LOCK_CLASS, "t": tenant_id}
    )


async def inbound_failed(
    conn: AsyncConnection,
    inbound_id: uuid.UUID,
    attempts: int,
    error: str,
    final: bool,
    retry_at: datetime,
    now: datetime,
) -> None:
    """An attempt failed: the notification fails for good (`final`) or waits until `retry_at`."""
    await conn.execute(
        update(inbound)
        .where(inbound.c.id == inbound_id)
        .values(
            attempts=attempts,
            last_error=error[:2_000],
            status=InboundStatus.FAILED.value if final else InboundStatus.PENDING.value,
            next_attempt_at=retry_at,
            processed_at=now if final else None,
        )
    )


async def inbound_processed(
    conn: AsyncConnection, inbound_id: uuid.UUID, attempts: int, now: datetime, outcome: dict[str, Any]
) -> None:
    await conn.execute(
        update(inbound)
        .where(inbound.c.id == inbound_id)
        .values(
            status=InboundStatus.PROCESSED.value,
            attempts=attempts,
            processed_at=now,
            last_error=None,
            outcome=outcome,
        )
    )


async def set_group_incident(
    conn: AsyncConnection, tenant_id: str, group_hash: str, incident_id: uuid.UUID, now: datetime
) -> None:
    """The alert group's alerts go to this incident from now on."""
    g = alert_groups
    await conn.execute(
        update(g)
        .where(g.c.tenant_id == tenant_id, g.c.group_hash == group_hash)
        .values(incident_id=incident_id, updated_at=now)
    )


async def queue_resolution(
    conn: AsyncConnection, incident_id: uuid.UUID, tenant_id: str, correlation_id: str, now: datetime
) -> None:
    await conn.execute(
        insert(pending_resolutions)
        .values(incident_id=incident_id, tenant_id=tenant_id, correlation_id=correlation_id, queued_at=now)
        .on_conflict_do_nothing()
    )


async def queued_resolutions(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    """The tenant's incidents queued for resolution, in the order they were queued."""
    p = pending_resolutions
    return list(
        (await conn.execute(select(p).where(p.c.tenant_id == tenant_id).order_by(p.c.queued_at))).all()
    )


async def drop_resolution(conn: AsyncConnection, incident_id: uuid.UUID) -> None:
    await conn.execute(delete(pending_resolutions).where(pending_resolutions.c.incident_id == incident_id))


# ---- deploys and what a service went through lately


async def insert_deploy(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any] | None:
    """The deploy, or None when one of that id is recorded already."""
    statement = insert(deploys).values(**values).on_conflict_do_nothing().returning(deploys)
    return (await conn.execute(statement)).first()


async def deploy(conn: AsyncConnection, tenant_id: str, deploy_id: str) -> Row[Any]:
    query = select(deploys).where(deploys.c.tenant_id == tenant_id, deploys.c.id == deploy_id)
    return (await conn.execute(query)).one()


async def service_deploys(
    conn: AsyncConnection,
    tenant_id: str,
    service_name: str,
    since: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` deploys of the service, latest first, from `since`, before the position `before`
    (deployed_at, id)."""
    d = deploys
    query = select(d).where(d.c.tenant_id == tenant_id, d.c.service_name == service_name)
    if since is not None:
        query = query.where(d.c.deployed_at >= since)
    if before is not None:
        query = query.where(tuple_(d.c.deployed_at, d.c.id) < tuple_(*before))
    query = query.order_by(d.c.deployed_at.desc(), d.c.id.desc()).limit(limit)
    return list((await conn.execute(query)).all())


async def service_alerts(
    conn: AsyncConnection,
    tenant_id: str,
    service_name: str,
    since: datetime | None,
    before: tuple[datetime, str, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` alerts labelled with the service or attached to one of its incidents, latest
    started first, from `since`, before the position `before` (starts_at, group_hash, fingerprint)."""
    a, k = alerts, known_incidents
    of_service = select(k.c.id).where(k.c.tenant_id == tenant_id, k.c.service_name == service_name)
    query = select(a).where(
        a.c.tenant_id == tenant_id,
        or_(a.c.labels["service"].astext == service_name, a.c.incident_id.in_(of_service)),
    )
    if since is not None:
        query = query.where(a.c.starts_at >= since)
    if before is not None:
        query = query.where(tuple_(a.c.starts_at, a.c.group_hash, a.c.fingerprint) < tuple_(*before))
    query = query.order_by(a.c.starts_at.desc(), a.c.group_hash.desc(), a.c.fingerprint.desc())
    return list((await conn.execute(query.limit(limit))).all())


# ---- the incidents view


async def incident(conn: AsyncConnection, incident_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(known_incidents).where(known_incidents.c.id == incident_id))).first()


async def change_incident(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, version: int, **values: Any
) -> bool:
    """Apply a change over an older version; False when the incident is not in the view at all."""
    k = known_incidents
    await conn.execute(
        update(k)
        .where(k.c.id == incident_id, k.c.tenant_id == tenant_id, k.c.version < version)
        .values(version=version, **values)
    )
    return await incident(conn, incident_id) is not None


async def record_hypotheses(
    conn: AsyncConnection,
    tenant_id: str,
    incident_id: uuid.UUID,
    generation: int,
    top: str,
    confidence: float,
) -> bool:
    k = known_incidents
    await conn.execute(
        update(k)
        .where(k.c.id == incident_id, k.c.tenant_id == tenant_id, k.c.hypotheses_generation < generation)
        .values(hypotheses_generation=generation, top_hypothesis=top, top_confidence=confidence)
    )
    return await incident(conn, incident_id) is not None


# ---- webhooks and deliveries


async def subscribed_webhooks(
    conn: AsyncConnection, tenant_id: str, event_type: str, occurred_at: datetime
) -> list[Row[Any]]:
    """Enabled webhooks of the tenant that asked for this event type and existed when it happened
    (a consumer catching up does not send a new webhook the past)."""
    query = select(webhooks).where(
        webhooks.c.tenant_id == tenant_id,
        webhooks.c.enabled.is_(True),
        webhooks.c.event_types.contains([event_type]),
        webhooks.c.created_at <= occurred_at,
    )
    return list((await conn.execute(query)).all())


async def enqueue(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(
            insert(deliveries).on_conflict_do_nothing(constraint="uq_deliveries_webhook_event"), rows
        )


async def webhook(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> Row[Any] | None:
    query = select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def insert_webhook(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, webhooks, values)


async def webhooks_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's webhooks, newest first."""
    return await _page(conn, webhooks, [webhooks.c.tenant_id == tenant_id], after, limit)


async def webhook_kind(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> str | None:
    w = webhooks
    query = select(w.c.kind).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id)
    kind: str | None = await conn.scalar(query)
    return kind


async def update_webhook(
    conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any] | None:
    """The webhook changed, or None when the tenant has no such webhook."""
    w = webhooks
    statement = update(w).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id)
    return (await conn.execute(statement.values(**values).returning(w))).first()


async def delete_webhook(conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID) -> bool:
    """Whether the tenant had that webhook (its deliveries go with it)."""
    w = webhooks
    statement = delete(w).where(w.c.id == webhook_id, w.c.tenant_id == tenant_id).returning(w.c.id)
    return (await conn.execute(statement)).first() is not None


async def deliveries_page(
    conn: AsyncConnection,
    tenant_id: str,
    webhook_id: uuid.UUID,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Row[Any]]:
    """A webhook's deliveries, newest first."""
    d = deliveries
    where = [d.c.webhook_id == webhook_id, d.c.tenant_id == tenant_id]
    if status is not None:
        where.append(d.c.status == status)
    return await _page(conn, d, where, after, limit)


async def locked_delivery(
    conn: AsyncConnection, tenant_id: str, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> Row[Any] | None:
    d = deliveries
    query = select(d).where(d.c.id == delivery_id, d.c.webhook_id == webhook_id, d.c.tenant_id == tenant_id)
    return (await conn.execute(query.with_for_update())).first()


async def update_delivery(conn: AsyncConnection, delivery_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    return await _update_returning(conn, deliveries, delivery_id, values)


async def webhook_by_id(conn: AsyncConnection, webhook_id: uuid.UUID) -> Row[Any] | None:
    """Any tenant's webhook: a Slack click names its webhook before anything tells its tenant."""
    return (await conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))).first()


# ---- Slack links (a Slack member to a user of the organisation)


async def slack_link_of_member(
    conn: AsyncConnection, tenant_id: str, slack_team_id: str, slack_user_id: str
) -> Row[Any] | None:
    s = slack_links
    query = select(s).where(
        s.c.tenant_id == tenant_id, s.c.slack_team_id == slack_team_id, s.c.slack_user_id == slack_user_id
    )
    return (await conn.execute(query)).first()


async def slack_member_taken(
    conn: AsyncConnection, tenant_id: str, slack_team_id: str, slack_user_id: str, user_id: str
) -> bool:
    """Whether the Slack member is linked to another user than `user_id`."""
    s = slack_links
    query = select(s.c.user_id).where(
        s.c.tenant_id == tenant_id,
        s.c.slack_team_id == slack_team_id,
        s.c.slack_user_id == slack_user_id,
        s.c.user_id != user_id,
    )
    return (await conn.execute(query)).first() is not None


async def save_slack_link(
    conn: AsyncConnection, tenant_id: str, user_id: str, values: dict[str, Any]
) -> Row[Any]:
    s = slack_links
    statement = (
        insert(s)
        .values(tenant_id=tenant_id, user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[s.c.tenant_id, s.c.user_id], set_=values)
        .returning(s)
    )
    return (await conn.execute(statement)).one()


async def slack_links_of(conn: AsyncConnection, tenant_id: str, user_id: str | None) -> list[Row[Any]]:
    """The tenant's links (only `user_id`'s when given), by user, at most 1,000."""
    s = slack_links
    query = select(s).where(s.c.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(s.c.user_id == user_id)
    return list((await conn.execute(query.order_by(s.c.user_id).limit(1_000))).all())


async def slack_link(conn: AsyncConnection, tenant_id: str, user_id: str) -> Row[Any] | None:
    s = slack_links
    return (await conn.execute(select(s).where(s.c.tenant_id == tenant_id, s.c.user_id == user_id))).first()


async def delete_slack_link(conn: AsyncConnection, tenant_id: str, user_id: str) -> bool:
    """Whether the user had a link."""
    s = slack_links
    statement = delete(s).where(s.c.tenant_id == tenant_id, s.c.user_id == user_id).returning(s.c.user_id)
    return (await conn.execute(statement)).first() is not None


# ---- generic JSON sources


async def insert_json_source(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, json_sources, values)


async def json_sources_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's JSON sources, newest first."""
    return await _page(conn, json_sources, [json_sources.c.tenant_id == tenant_id], after, limit)


async def json_source(conn: AsyncConnection, tenant_id: str, source_id: uuid.UUID) -> Row[Any] | None:
    return await _tenant_row(conn, json_sources, tenant_id, source_id)


async def update_json_source(conn: AsyncConnection, source_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    return await _update_returning(conn, json_sources, source_id, values)


async def delete_json_source(conn: AsyncConnection, source_id: uuid.UUID) -> None:
    await _delete(conn, json_sources, source_id)


# ---- silences and correlation rules


async def insert_silence(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, silences, values)


async def silence(conn: AsyncConnection, tenant_id: str, silence_id: uuid.UUID) -> Row[Any] | None:
    return await _tenant_row(conn, silences, tenant_id, silence_id)


async def delete_silence(conn: AsyncConnection, silence_id: uuid.UUID) -> None:
    await _delete(conn, silences, silence_id)


async def insert_correlation_rule(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return await _insert_returning(conn, correlation_rules, values)


async def correlation_rules_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """The tenant's correlation rules, oldest first: the order they are tried in."""
    c = correlation_rules
    return await _page(conn, c, [c.c.tenant_id == tenant_id], after, limit, newest_first=False)


async def correlation_rule(
    conn: AsyncConnection, tenant_id: str, rule_id: uuid.UUID, lock: bool = False
) -> Row[Any] | None:
    return await _tenant_row(conn, correlation_rules, tenant_id, rule_id, lock=lock)


async def update_correlation_rule(
    conn: AsyncConnection, rule_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    return await _update_returning(conn, correlation_rules, rule_id, values)


async def delete_correlation_rule(conn: AsyncConnection, rule_id: uuid.UUID) -> None:
    await _delete(conn, correlation_rules, rule_id)


async def tenant_silences(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    query = select(silences).where(silences.c.tenant_id == tenant_id).order_by(silences.c.id.desc())
    return list((await conn.execute(query)).all())


async def tenant_correlation_rules(conn: AsyncConnection, tenant_id: str) -> list[Row[Any]]:
    """Oldest first: the order they are tried in."""
    c = correlation_rules
    return list((await conn.execute(select(c).where(c.c.tenant_id == tenant_id).order_by(c.c.id))).all())


async def correlation_candidates(
    conn: AsyncConnection, tenant_id: str, earliest: datetime, latest: datetime, limit: int
) -> list[Row[Any]]:
    """Firing alerts of the tenant that started between `earliest` and `latest`, attached to an
    incident that is not resolved, with their group's key (the `limit` that started last)."""
    a, g, k = alerts, alert_groups, known_incidents
    query = (
        select(a, g.c.group_key)
        .join(g, and_(g.c.tenant_id == a.c.tenant_id, g.c.group_hash == a.c.group_hash))
        .join(k, k.c.id == a.c.incident_id)
        .where(
            a.c.tenant_id == tenant_id,
            a.c.status == "firing",
            a.c.starts_at >= earliest,
            a.c.starts_at <= latest,
            k.c.tenant_id == tenant_id,
            k.c.state != "resolved",
        )
        .order_by(a.c.starts_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def recent_inbound_alerts(
    conn: AsyncConnection, tenant_id: str, since: datetime, sources: Sequence[str], limit: int
) -> list[Any]:
    """Processed alert notifications received since `since`, newest first."""
    i = inbound
    query = (
        select(i.c.id, i.c.source, i.c.group_key, i.c.payload, i.c.outcome, i.c.received_at)
        .where(
            i.c.tenant_id == tenant_id,
            i.c.received_at >= since,
            i.c.source.in_(list(sources)),
            i.c.status == "processed",
        )
        .order_by(i.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


# Advisory lock id: the delivery claims of every replica, one at a time, so that each webhook's
# concurrency limit counts what all of them are sending.
DELIVERY_CLAIM_LOCK = 0x5EC0_0101


async def sending_now(conn: AsyncConnection, now: datetime) -> dict[uuid.UUID, int]:
    """Deliveries being sent right now by any replica (claimed, lease running), per webhook."""
    d = deliveries
    query = (
        select(d.c.webhook_id, func.count())
        .where(d.c.status == "pending", d.c.lease_until.is_not(None), d.c.lease_until >= now)
        .group_by(d.c.webhook_id)
    )
    return {webhook_id: int(n) for webhook_id, n in await conn.execute(query)}


async def claim_due(
    conn: AsyncConnection, now: datetime, exclude: Sequence[uuid.UUID], limit: int
) -> list[Any]:
    """Pending deliveries that are due and held by no sender, oldest due first, locked for this
    transaction (other replicas skip them)."""
    d = deliveries
    conditions = [
        d.c.status == "pending",
        d.c.next_attempt_at <= now,
        (d.c.lease_until.is_(None)) | (d.c.lease_until < now),
    ]
    if exclude:
        conditions.append(d.c.webhook_id.not_in(list(exclude)))
    query = (
        select(d.c.id, d.c.webhook_id)
        .where(and_(*conditions))
        .order_by(d.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(query)).all())


async def lock_claims(conn: AsyncConnection) -> None:
    """Claims take turns (DELIVERY_CLAIM_LOCK, held until the transaction ends)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DELIVERY_CLAIM_LOCK})


async def lease_deliveries(
    conn: AsyncConnection, delivery_ids: Sequence[uuid.UUID], lease_until: datetime, now: datetime
) -> list[Row[Any]]:
    """Claim the deliveries until `lease_until`, counting the attempt; what a sender needs of them."""
    d = deliveries
    statement = (
        update(d)
        .where(d.c.id.in_(list(delivery_ids)))
        .values(lease_until=lease_until, attempts=d.c.attempts + 1, updated_at=now)
        .returning(d.c.id, d.c.webhook_id, d.c.tenant_id, d.c.event_type, d.c.body, d.c.attempts)
    )
    return list((await conn.execute(statement)).all())


async def record_attempt(conn: AsyncConnection, delivery_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))


async def next_due(conn: AsyncConnection, exclude: Sequence[uuid.UUID]) -> datetime | None:
    """When the next delivery a sender could claim comes due (a held one: when its lease ends)."""
    d = deliveries
    due = func.greatest(d.c.next_attempt_at, func.coalesce(d.c.lease_until, d.c.next_attempt_at))
    query = select(func.min(due)).where(d.c.status == "pending")
    if exclude:
        query = query.where(d.c.webhook_id.not_in(list(exclude)))
    value: datetime | None = await conn.scalar(query)
    return value


async def prune_rejections(conn: AsyncConnection, tenant_id: str, keep: int) -> None:
    r = rejections
    oldest_kept = (
        select(r.c.id).where(r.c.tenant_id == tenant_id).order_by(r.c.id.desc()).offset(keep - 1).limit(1)
    ).scalar_subquery()
    await conn.execute(delete(r).where(r.c.tenant_id == tenant_id, r.c.id < oldest_kept))


# ---- the secret box's key, when none is configured


async def keyring_key(conn: AsyncConnection, generated: str, now: datetime) -> str:
    """The key every replica shares: `generated` if none was stored yet, else the stored one."""
    await conn.execute(insert(keyring).values(id=1, key=generated, created_at=now).on_conflict_do_nothing())
    key: str = (await conn.execute(select(keyring.c.key).where(keyring.c.id == 1))).scalar_one()
    return key


# ---- retention


async def prune_inbound(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete notifications processed or failed before `older_than`; pending ones stay."""
    i = inbound
    return await delete_in_batches(engine, i, and_(i.c.status != "pending", i.c.processed_at < older_than))


async def prune_deliveries(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete deliveries that succeeded or failed, last changed before `older_than`; pending ones
    (due, backing off or being sent) stay."""
    d = deliveries
    return await delete_in_batches(engine, d, and_(d.c.status != "pending", d.c.updated_at < older_than))
