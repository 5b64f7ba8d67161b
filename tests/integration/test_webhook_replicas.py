"""A webhook's concurrency limit holds across integrations replicas: here a second delivery loop
runs in the test process beside the platform's, on the same database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.crypto import load_box
from integrations.outbound import DeliveryLoop
from integrations.settings import IntegrationsSettings
from tests.conftest import WEBHOOK_ENCRYPTION_KEY, Tenant
from tests.e2e.test_integrations_webhooks import Receiver, create_webhook, open_incident

# The platform's own limit (its default): two requests at a time per webhook.
PER_ENDPOINT = 2


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    receiver = Receiver(hang=True).start()
    yield receiver
    receiver.stop()


async def test_a_webhooks_limit_counts_the_requests_of_every_replica(
    client: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine, hanging: Receiver
) -> None:
    settings = IntegrationsSettings(
        webhook_encryption_keys=SecretStr(WEBHOOK_ENCRYPTION_KEY),
        webhook_allow_private_targets=True,
        webhook_timeout_seconds=5,
        webhook_concurrency_per_endpoint=PER_ENDPOINT,
        poll_seconds=0.1,
    )
    replica: Any = SimpleNamespace(engine=engine)  # all a delivery loop uses of its service
    second = DeliveryLoop(replica, settings, await load_box(engine, settings))
    second.start()
    try:
        await create_webhook(client, tenant, url=hanging.url, event_types=["incident.created"])
        for n in range(6):
            await open_incident(client, tenant, title=f"Replicas {n}")
        deadline = asyncio.get_running_loop().time() + 10
        while hanging.held < PER_ENDPOINT:
            assert asyncio.get_running_loop().time() < deadline, "nothing reached the endpoint"
            await asyncio.sleep(0.05)
        # Both loops poll several times while the two requests hang (they time out after 5 s).
        await asyncio.sleep(2.5)
        assert hanging.peak == PER_ENDPOINT, f"{hanging.peak} requests at once with a limit of {PER_ENDPOINT}"
    finally:
        await second.stop()
