"""kill -9 of the oncall service between two escalation steps changes nothing but the delay: the
next step still fires, once, and the chain ends acknowledged as it would have."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from sre_copilot.supervisor import Platform
from tests.conftest import Mailbox, fresh_address, register_tenant
from tests.e2e.test_auth_users import member
from tests.e2e.test_integrations_webhooks import Receiver
from tests.fault.test_faults import kill_and_recover
from tests.oncall import page_through

pytestmark = pytest.mark.fault


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
async def fault_client(fault_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Forwarded-For": fresh_address()}
    async with httpx.AsyncClient(base_url=fault_platform.gateway_url, timeout=15, headers=headers) as http:
        yield http


async def test_kill_9_between_steps_pages_each_step_once(
    fault_platform: Platform, fault_client: httpx.AsyncClient, receiver: Receiver, mailbox: Mailbox
) -> None:
    owner = await register_tenant(fault_client)
    second = await member(fault_client, owner, "responder")

    async def kill() -> None:
        await kill_and_recover(fault_platform, "oncall")

    chain = await page_through(fault_client, owner, second, receiver, mailbox, between_steps=kill)
    assert chain.ack.status_code == 200, chain.ack.text
    assert chain.incident["state"] == "acknowledged"
    # Each step fired once, each person was notified once.
    steps = [
        (i["data"]["round"], i["data"]["step"])
        for i in chain.timeline
        if i["kind"] == "escalation.step_reached"
    ]
    assert steps == [(0, 0), (0, 1)], chain.timeline
    assert len(chain.first_pages) == 1 and len(chain.second_mail) == 1
