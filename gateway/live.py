"""The live feed's in-process fan-out: the projector hands each committed batch here, and every
websocket of that batch's tenant gets it on its own bounded queue. A queue that fills marks its
connection as lagging; the connection then closes and the client resumes with `since=`."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.envelope import EventEnvelope

Item = tuple[int, EventEnvelope]


@dataclass(eq=False)
class Subscription:
    tenant_id: str
    queue: asyncio.Queue[Item]
    lagging: asyncio.Event = field(default_factory=asyncio.Event)


class FanOut:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._by_tenant: dict[str, set[Subscription]] = defaultdict(set)

    @property
    def connections(self) -> int:
        return sum(len(subs) for subs in self._by_tenant.values())

    def subscribe(self, tenant_id: str) -> Subscription:
        subscription = Subscription(tenant_id, asyncio.Queue(self.queue_size))
        self._by_tenant[tenant_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._by_tenant.get(subscription.tenant_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._by_tenant[subscription.tenant_id]

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
