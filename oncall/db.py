"""oncall's tables (schema `oncall`) and queries: schedules and their overrides, escalation policies
and routing, contact methods, escalations (the due-time table), pages and notifications, the outbox
and the record of consumed events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    and_,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.oncall import ChannelKind
from runtime.consumer import consumed_table
from runtime.outbox import outbox_table
from runtime.retention import delete_in_batches
from runtime.slack import seen_requests_table

SCHEMA = "oncall"
metadata = MetaData(schema=SCHEMA)

# Slack requests accepted (the page's Acknowledge button), by signature: one seen again is a replay.
slack_requests = seen_requests_table(metadata)
outbox = outbox_table(metadata)
consumed = consumed_table(metadata)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: creation order
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=False),
    # The layers as the API states them (contracts.oncall.LayerSpec), bottom-up.
    Column("layers", JSONB, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_schedules_tenant", "tenant_id", "id"),
)

# Ordered by id (UUIDv7): where two overlap, the later one wins.
overrides = Table(
    "overrides",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("schedule_id", Uuid, ForeignKey(schedules.c.id, ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_overrides_schedule", "schedule_id", "id"),
)


# ---- queries the handlers and the paging machinery name (each runs in the caller's transaction)


async def _insert(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Any:
    return (await conn.execute(table.insert().values(**values).returning(table))).one()


async def _newest_first(
    conn: AsyncConnection, table: Table, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Any]:
    """A page of a tenant's rows, newest first (UUIDv7 ids), `limit + 1` of them: the extra one
    says there is more."""
    query = select(table).where(table.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(table.c.id < after)
    return list((await conn.execute(query.order_by(table.c.id.desc()).limit(limit + 1))).all())


async def _update(
    conn: AsyncConnection, table: Table, tenant_id: str, row_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    """The row as updated; None when the tenant has no such row."""
    query = update(table).where(table.c.id == row_id, table.c.tenant_id == tenant_id)
    return (await conn.execute(query.values(**values).returning(table))).first()


async def _delete(conn: AsyncConnection, table: Table, tenant_id: str, row_id: uuid.UUID) -> bool:
    """Whether the tenant had the row."""
    query = delete(table).where(table.c.id == row_id, table.c.tenant_id == tenant_id)
    return (await conn.execute(query.returning(table.c.id))).first() is not None


def _uuids(raw: Iterable[str]) -> set[uuid.UUID]:
    """The ids among `raw` that are UUIDs (a target may name anything: the others match no row)."""
    found = set()
    for value in raw:
        try:
            found.add(uuid.UUID(value))
        except ValueError:
            continue
    return found


async def schedule(conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID, lock: bool = False) -> Any:
    query = select(schedules).where(schedules.c.id == schedule_id, schedules.c.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def overrides_of(conn: AsyncConnection, schedule_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    found: dict[uuid.UUID, list[Any]] = {s: [] for s in schedule_ids}
    if not schedule_ids:
        return found
    rows = await conn.execute(
        select(overrides).where(overrides.c.schedule_id.in_(schedule_ids)).order_by(overrides.c.id)
    )
    for row in rows:
        found[row.schedule_id].append(row)
    return found


async def insert_schedule(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return await _insert(conn, schedules, values)


async def schedules_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Any]:
    return await _newest_first(conn, schedules, tenant_id, after, limit)


async def update_schedule(
    conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    return await _update(conn, schedules, tenant_id, schedule_id, values)


async def delete_schedule(conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID) -> bool:
    return await _delete(conn, schedules, tenant_id, schedule_id)


async def schedules_in(conn: AsyncConnection, tenant_id: str, ids: Iterable[str]) -> list[Any]:
    """The tenant's schedules of these ids (ids that are not UUIDs match none)."""
    wanted = _uuids(ids)
    if not wanted:
        return []
    s = schedules
    return list((await conn.execute(select(s).where(s.c.tenant_id == tenant_id, s.c.id.in_(wanted)))).all())


async def tenant_schedules(conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID | None) -> list[Any]:
    """Every schedule of the tenant (or the one of this id), in creation order."""
    s = schedules
    query = select(s).where(s.c.tenant_id == tenant_id)
    if schedule_id is not None:
        query = query.where(s.c.id == schedule_id)
    return list((await conn.execute(query.order_by(s.c.id))).all())


async def insert_override(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return await _insert(conn, overrides, values)


async def override(
    conn: AsyncConnection, tenant_id: str, schedule_id: uuid.UUID, override_id: uuid.UUID
) -> Any:
    o = overrides
    query = select(o).where(o.c.id == override_id, o.c.schedule_id == schedule_id, o.c.tenant_id == tenant_id)
    return (await conn.execute(query)).first()


async def delete_override(conn: AsyncConnection, override_id: uuid.UUID) -> None:
    await conn.execute(delete(overrides).where(overrides.c.id == override_id))


policies = Table(
    "policies",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    # contracts.oncall.StepSpec, in order.
    Column("steps", JSONB, nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_policies_tenant", "tenant_id", "id"),
)

# One row per tenant: its routing rules in order (contracts.oncall.RuleSpec) and the default policy.
routing = Table(
    "routing",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("rules", JSONB, nullable=False),
    Column("default_policy_id", Uuid),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A step target: its schedule's on-call, else every member (oncall/escalation.py `Team`).
teams = Table(
    "teams",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("members", JSONB, nullable=False),  # user ids, in order
    # No foreign key: a deleted schedule leaves the team with a warning, not a failed delete.
    Column("schedule_id", Uuid),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_teams_tenant", "tenant_id", "id"),
)


async def insert_policy(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return await _insert(conn, policies, values)


async def policies_page(
    conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int
) -> list[Any]:
    return await _newest_first(conn, policies, tenant_id, after, limit)


async def policy(conn: AsyncConnection, tenant_id: str, policy_id: uuid.UUID, lock: bool = False) -> Any:
    query = select(policies).where(policies.c.tenant_id == tenant_id, policies.c.id == policy_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def update_policy(
    conn: AsyncConnection, tenant_id: str, policy_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    return await _update(conn, policies, tenant_id, policy_id, values)


async def delete_policy(conn: AsyncConnection, tenant_id: str, policy_id: uuid.UUID) -> bool:
    return await _delete(conn, policies, tenant_id, policy_id)


async def tenant_routing(conn: AsyncConnection, tenant_id: str) -> Any:
    """The tenant's routing row; None before it was first saved."""
    return (await conn.execute(select(routing).where(routing.c.tenant_id == tenant_id))).first()


async def save_routing(conn: AsyncConnection, tenant_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        insert(routing)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[routing.c.tenant_id], set_=values)
    )


async def insert_team(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return await _insert(conn, teams, values)


async def teams_page(conn: AsyncConnection, tenant_id: str, after: uuid.UUID | None, limit: int) -> list[Any]:
    return await _newest_first(conn, teams, tenant_id, after, limit)


async def team(conn: AsyncConnection, tenant_id: str, team_id: uuid.UUID) -> Any:
    return (
        await conn.execute(select(teams).where(teams.c.tenant_id == tenant_id, teams.c.id == team_id))
    ).first()


async def teams_in(conn: AsyncConnection, tenant_id: str, ids: Iterable[str]) -> list[Any]:
    """The tenant's teams of these ids (ids that are not UUIDs match none)."""
    wanted = _uuids(ids)
    if not wanted:
        return []
    t = teams
    return list((await conn.execute(select(t).where(t.c.tenant_id == tenant_id, t.c.id.in_(wanted)))).all())


async def update_team(
    conn: AsyncConnection, tenant_id: str, team_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    return await _update(conn, teams, tenant_id, team_id, values)


async def delete_team(conn: AsyncConnection, tenant_id: str, team_id: uuid.UUID) -> bool:
    return await _delete(conn, teams, tenant_id, team_id)


contact_methods = Table(
    "contact_methods",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("address", Text, nullable=False),
    Column("delay_minutes", Float, nullable=False),
    # Webhooks' signing secret: it must be recoverable to sign.
    Column("secret", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_contact_methods_user", "tenant_id", "user_id"),
)


async def insert_contact_method(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return await _insert(conn, contact_methods, values)


async def contact_methods_of(conn: AsyncConnection, tenant_id: str, user_ids: Iterable[str]) -> list[Any]:
    """These people's contact methods, in creation order."""
    c = contact_methods
    query = select(c).where(c.c.tenant_id == tenant_id, c.c.user_id.in_(list(user_ids))).order_by(c.c.id)
    return list((await conn.execute(query)).all())


async def contact_method(
    conn: AsyncConnection, tenant_id: str, user_id: str, contact_method_id: uuid.UUID
) -> Any:
    """One of this person's own contact methods; None for anyone else's."""
    c = contact_methods
    query = select(c).where(c.c.id == contact_method_id, c.c.tenant_id == tenant_id, c.c.user_id == user_id)
    return (await conn.execute(query)).first()


async def contact_method_by_id(conn: AsyncConnection, contact_method_id: uuid.UUID) -> Any:
    c = contact_methods
    return (await conn.execute(select(c).where(c.c.id == contact_method_id))).first()


async def slack_contact(conn: AsyncConnection, tenant_id: str, user_id: str, slack_user_id: str) -> Any:
    """This person's Slack contact method for this Slack member; None when they have none."""
    c = contact_methods
    query = select(c.c.id).where(
        c.c.tenant_id == tenant_id,
        c.c.user_id == user_id,
        c.c.kind == ChannelKind.SLACK.value,
        c.c.address == slack_user_id,
    )
    return (await conn.execute(query)).first()


async def delete_contact_method(conn: AsyncConnection, contact_method_id: uuid.UUID) -> None:
    await conn.execute(delete(contact_methods).where(contact_methods.c.id == contact_method_id))


# The due-time table: one escalation per incident. A timer loop claims the rows whose `next_due_at`
# has come (FOR UPDATE SKIP LOCKED: replicas share them, none waits for another's), and in the same
# transaction records the steps that fired (`fired`), their pages and notifications, the next due
# time, and the events in the outbox. A crash before the commit leaves the row as it was (due, so
# the next look fires it); after it, the step is recorded as fired: once, whatever happens.
escalations = Table(
    "escalations",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("policy_id", Uuid, nullable=False),
    # The policy as it was when the escalation started (a later edit does not change a running one).
    Column("policy", JSONB, nullable=False),
    Column("incident", JSONB, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),  # active | stopped
    Column("fired", JSONB, nullable=False),  # [[round, step], ...]
    Column("next_due_at", DateTime(timezone=True)),
    Column("stopped_reason", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_escalations_due", "next_due_at", postgresql_where=text("state = 'active'")),
    Index("ix_escalations_stopped", "updated_at", postgresql_where=text("state = 'stopped'")),
)


async def insert_escalation(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Whether it was inserted: an incident has one escalation, and the first insert wins."""
    query = insert(escalations).values(**values).on_conflict_do_nothing()
    return (await conn.execute(query.returning(escalations.c.incident_id))).first() is not None


async def escalation(conn: AsyncConnection, incident_id: uuid.UUID) -> Any:
    return (await conn.execute(select(escalations).where(escalations.c.incident_id == incident_id))).first()


async def claim_due_escalations(conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
    """Active escalations due by `now`, held until the transaction ends; those another replica
    holds are skipped, not waited for."""
    e = escalations
    query = (
        select(e)
        .where(e.c.state == "active", e.c.next_due_at <= now)
        .order_by(e.c.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(query)).all())


async def update_escalation(conn: AsyncConnection, incident_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(update(escalations).where(escalations.c.incident_id == incident_id).values(**values))


async def stop_escalation(
    conn: AsyncConnection, tenant_id: str, incident_id: uuid.UUID, reason: str, now: datetime
) -> Any:
    """The escalation stopped, if it was active (its policy id); None otherwise."""
    e = escalations
    query = (
        update(e)
        .where(e.c.incident_id == incident_id, e.c.tenant_id == tenant_id, e.c.state == "active")
        .values(state="stopped", stopped_reason=reason, next_due_at=None, updated_at=now)
        .returning(e.c.policy_id)
    )
    return (await conn.execute(query)).first()


# One page per person per fired step; the acknowledge link names it.
pages = Table(
    "pages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("round", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Index("ix_pages_incident", "incident_id"),
)


async def insert_page(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(pages.insert().values(**values))


async def page(conn: AsyncConnection, page_id: uuid.UUID) -> Any:
    return (await conn.execute(select(pages).where(pages.c.id == page_id))).first()


async def mark_acknowledged(conn: AsyncConnection, page_id: uuid.UUID, now: datetime) -> Any:
    """The page as acknowledged now; None when it was acknowledged already."""
    query = (
        update(pages)
        .where(pages.c.id == page_id, pages.c.acknowledged_at.is_(None))
        .values(acknowledged_at=now)
        .returning(pages)
    )
    return (await conn.execute(query)).first()


# One notification per page and contact method, due at the page's time plus the method's delay;
# claimed like webhook deliveries (SKIP LOCKED, then a lease).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("page_id", Uuid, ForeignKey(pages.c.id, ondelete="CASCADE"), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("contact_method_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed | cancelled
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_notifications_due", "due_at", postgresql_where=text("status = 'pending'")),
    Index("ix_notifications_incident", "incident_id"),
)


async def insert_notifications(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(notifications.insert(), rows)


async def claim_due_notifications(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Pending notifications due by `now` whose lease (if any) ran out, leased to this replica until
    `lease_until` with their attempt counted; those another transaction holds are skipped."""
    n = notifications
    due = (
        select(n.c.id)
        .where(n.c.status == "pending", n.c.due_at <= now)
        .where((n.c.lease_until.is_(None)) | (n.c.lease_until < now))
        .order_by(n.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    query = (
        update(n)
        .where(n.c.id.in_(due.scalar_subquery()))
        .values(lease_until=lease_until, attempts=n.c.attempts + 1, updated_at=now)
        .returning(n)
    )
    return list((await conn.execute(query)).all())


async def update_notification(
    conn: AsyncConnection, notification_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(update(notifications).where(notifications.c.id == notification_id).values(**values))


async def cancel_notifications(conn: AsyncConnection, incident_id: uuid.UUID, now: datetime) -> None:
    """The incident's pending notifications, cancelled."""
    n = notifications
    await conn.execute(
        update(n)
        .where(n.c.incident_id == incident_id, n.c.status == "pending")
        .values(status="cancelled", updated_at=now)
    )


# Secrets oncall makes for itself once (the acknowledge links' signing key), shared by its replicas.
keys = Table(
    "keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("secret", Text, nullable=False),
)


async def shared_secret(conn: AsyncConnection, name: str, fresh: str) -> str:
    """The secret kept under `name`; `fresh` is kept first when there is none (the first replica's wins)."""
    await conn.execute(insert(keys).values(name=name, secret=fresh).on_conflict_do_nothing())
    return str((await conn.execute(select(keys.c.secret).where(keys.c.name == name))).scalar_one())


# Each person's secret calendar address (the SHA-256 of its token: the token itself is shown once).
calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


async def save_calendar_feed(
    conn: AsyncConnection, tenant_id: str, user_id: str, values: dict[str, Any]
) -> None:
    f = calendar_feeds
    await conn.execute(
        insert(f)
        .values(tenant_id=tenant_id, user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[f.c.tenant_id, f.c.user_id], set_=values)
    )


async def calendar_feed(conn: AsyncConnection, token_hash: str) -> Any:
    f = calendar_feeds
    return (await conn.execute(select(f).where(f.c.token_hash == token_hash))).first()


# oncall's view of people, from auth's `user.*` events: whether a person named in a schedule or a
# policy is still active.
people = Table(
    "people",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


async def save_person(conn: AsyncConnection, tenant_id: str, user_id: str, status: str, at: datetime) -> None:
    values = {"status": status, "updated_at": at}
    await conn.execute(
        insert(people)
        .values(tenant_id=tenant_id, user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[people.c.tenant_id, people.c.user_id], set_=values)
    )


async def deactivated(conn: AsyncConnection, tenant_id: str, user_ids: Iterable[str]) -> set[str]:
    """Those of these people oncall's view has as deactivated (people it does not know yet are not)."""
    users = set(user_ids)
    if not users:
        return set()
    p = people
    query = select(p.c.user_id).where(
        p.c.tenant_id == tenant_id, p.c.user_id.in_(users), p.c.status == "deactivated"
    )
    return {r.user_id for r in await conn.execute(query)}


# ---- retention


async def prune_escalations(engine: AsyncEngine, older_than: datetime) -> int:
    """Forget escalations stopped before `older_than`: their notifications, their pages, then the
    escalation itself (in that order, so that nothing is left without the row it is pruned by).
    Active escalations and everything of theirs stay, however old."""
    e = escalations
    stopped = select(e.c.incident_id).where(e.c.state == "stopped", e.c.updated_at < older_than)
    total = await delete_in_batches(engine, notifications, notifications.c.incident_id.in_(stopped))
    total += await delete_in_batches(engine, pages, pages.c.incident_id.in_(stopped))
    return total + await delete_in_batches(
        engine, e, and_(e.c.state == "stopped", e.c.updated_at < older_than)
    )
