"""Paging end to end: alert -> incident -> the on-call person by webhook -> nobody acknowledges -> the
second person by email -> acknowledged by the signed link -> the escalation stops; the timeline shows
each step."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Mailbox, Tenant
from tests.e2e.test_auth_users import member
from tests.e2e.test_integrations_webhooks import Receiver
from tests.oncall import page_through

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def kinds(timeline: list[dict[str, object]]) -> list[str]:
    return [str(i["kind"]) for i in timeline if str(i["kind"]).startswith(("escalation.", "page."))]


async def test_an_alert_pages_through_the_chain_until_the_link_acknowledges_it(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, mailbox: Mailbox
) -> None:
    second = await member(client, tenant, "responder")
    chain = await page_through(client, tenant, second, receiver, mailbox)

    assert chain.ack.status_code == 200, chain.ack.text
    assert chain.ack.json()["user_id"] == second.user_id
    assert chain.again.status_code == 409, chain.again.text  # single use
    assert chain.incident["state"] == "acknowledged"
    assert len(chain.first_pages) == 1 and len(chain.second_mail) == 1
    found = kinds(chain.timeline)
    assert found.count("escalation.step_reached") == 2
    # The acknowledgement and the stop are written together: either may come first on the log.
    assert found[0] == "escalation.started", found
    assert sorted(found[-2:]) == ["escalation.stopped", "page.acknowledged"], found
    assert {"page.notified", "page.acknowledged"} <= set(found)
    steps = [i["data"] for i in chain.timeline if i["kind"] == "escalation.step_reached"]
    assert [(s["step"], s["user_ids"]) for s in steps] == [(0, [tenant.user_id]), (1, [second.user_id])]
    notified = [i["data"] for i in chain.timeline if i["kind"] == "page.notified"]
    assert sorted((n["channel"], n["delivered"]) for n in notified) == [("email", True), ("webhook", True)]
    stopped = next(i["data"] for i in chain.timeline if i["kind"] == "escalation.stopped")
    assert stopped["reason"] == "acknowledged"


async def test_a_forged_or_unknown_link_acknowledges_nothing(client: httpx.AsyncClient) -> None:
    page = "0190f5a0-0000-7000-8000-000000000000"
    answer = await client.post(f"/api/v1/pages/{page}/ack", params={"token": "9999999999.deadbeef"})
    assert answer.status_code == 403, answer.text
