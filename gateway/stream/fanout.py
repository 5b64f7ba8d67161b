"""The live feed's in-process fan-out: the projector hands each committed batch here, and every
websocket of that batch's tenant gets it on its own bounded queue. A queue that fills marks its
connection as lagging; the connection then closes and the client resumes with `since=`.

Each subscription also knows whose credential opened it: when the projector applies a change to that
user (deactivation, a password change), `SessionWatch` checks the credential again against the read
model it now reflects, and ends the subscriptions that would no longer be let in."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventEnvelope
from gateway.auth import identity
from gateway.auth.verifier import principal_refusal

log = structlog.get_logger(__name__)

Item = tuple[int, EventEnvelope]


class TooManyConnections(Exception):
    """The tenant already holds the most websockets one gateway serves it."""


@dataclass(eq=False)
class Subscription:
    tenant_id: str
    queue: asyncio.Queue[Item]
    # Whose access token opened it, and the session epoch it carried.
    user_id: str = ""
    session_epoch: int = 0
    lagging: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()


async def refusal(engine: AsyncEngine, subscription: Subscription) -> str | None:
    """Why the credential behind `subscription` would be refused now, or None."""
    async with engine.connect() as conn:
        principal = await identity.get_principal(conn, subscription.user_id)
    return principal_refusal(principal, subscription.tenant_id, subscription.session_epoch)


class FanOut:
    def __init__(self, queue_size: int, max_per_tenant: int | None = None) -> None:
        self.queue_size, self.max_per_tenant = queue_size, max_per_tenant
        self._by_tenant: dict[str, set[Subscription]] = defaultdict(set)

    @property
    def connections(self) -> int:
        return sum(len(subs) for subs in self._by_tenant.values())

    def subscribe(self, tenant_id: str, user_id: str = "", session_epoch: int = 0) -> Subscription:
        """Raises TooManyConnections at the tenant's cap (checked and taken with no await between,
        so concurrent connections cannot both slip under it)."""
        if self.max_per_tenant is not None and len(self._by_tenant.get(tenant_id, ())) >= self.max_per_tenant:
            raise TooManyConnections(tenant_id)
        subscription = Subscription(tenant_id, asyncio.Queue(self.queue_size), user_id, session_epoch)
        self._by_tenant[tenant_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._by_tenant.get(subscription.tenant_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._by_tenant[subscription.tenant_id]

    def of_user(self, tenant_id: str, user_id: str) -> list[Subscription]:
        return [s for s in self._by_tenant.get(tenant_id, ()) if s.user_id == user_id]

    async def publish(self, batch: Sequence[Item]) -> None:
        """Never waits on a client: a full queue marks that client as lagging instead."""
        for seq, event in batch:
            for subscription in self._by_tenant.get(event.tenant_id, ()):
                if subscription.lagging.is_set():
                    continue
                try:
                    subscription.queue.put_nowait((seq, event))
                except asyncio.QueueFull:
                    subscription.lagging.set()


class SessionWatch:
    """A projector listener: after a batch that changed users, the websockets those users opened are
    checked against the read models (already committed), and closed if their credential is refused."""

    def __init__(self, engine: AsyncEngine, fanout: FanOut) -> None:
        self.engine, self.fanout = engine, fanout

    async def on_batch(self, batch: Sequence[Item]) -> None:
        users = {
            (event.tenant_id, str(event.data.get("user_id") or event.aggregate_id))
            for _seq, event in batch
            if event.type.startswith("user.")
        }
        for tenant_id, user_id in users:
            for subscription in self.fanout.of_user(tenant_id, user_id):
                reason = await refusal(self.engine, subscription)
                if reason is not None:
                    log.info("stream_session_ended", user_id=user_id, reason=reason)
                    subscription.end(reason)
