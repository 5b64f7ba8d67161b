"""Pages: acknowledging one from a notification's link, and the `oncall_escalator` consumer
(incidents start and stop escalations; auth's `user.*` events keep oncall's view of people)."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.commands import CommandFailed, ErrorCode
from contracts.oncall import AcknowledgePage, PageAcknowledgedView
from contracts.subjects import events_of_type
from oncall.context import Oncall
from oncall.domain import token_problem
from oncall.paging import PERSON_STATUS
from runtime.command_args import object_id as _id
from runtime.consumer import Delivery

FILTER_SUBJECTS = [
    events_of_type("incident.created"),
    events_of_type("incident.state_changed"),
    *(events_of_type(t) for t in PERSON_STATUS),
]


async def acknowledge_page(oc: Oncall, cmd: AcknowledgePage) -> PageAcknowledgedView:
    page_id = _id(cmd.page_id, "page")
    problem = token_problem(oc.paging.key, str(page_id), cmd.token, int(datetime.now(UTC).timestamp()))
    if problem is not None:
        raise CommandFailed(ErrorCode.FORBIDDEN, problem.value)
    page = await oc.paging.acknowledge(page_id, cmd.correlation_id)
    return PageAcknowledgedView(
        page_id=str(page.id),
        incident_id=str(page.incident_id),
        user_id=page.user_id,
        acknowledged_at=page.acknowledged_at,
    )


async def escalate(oc: Oncall, delivery: Delivery) -> None:
    # Imported history stops what it should but pages nobody: it happened elsewhere, long ago.
    await oc.paging.apply(delivery.event, delivery.data, act=not delivery.imported)
