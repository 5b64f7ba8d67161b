"""The Acknowledge button of a page's Slack DM (`cmd.oncall.slack_action`, forwarded by the gateway
as Slack sent it): verified with the on-call Slack app's signing secret (SLACK_SIGNING_SECRET),
refused when replayed, and done only for the Slack member the page was sent to (the address of the
paged person's Slack contact method). It acknowledges as the signed acknowledge link does: the
incident moves to acknowledged as the paged person and the escalation stops. The DM is then updated
in place through Slack's `response_url`."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from contracts.commands import CommandFailed, ErrorCode
from contracts.oncall import SlackPageAction
from contracts.slack import PAGE_OPEN, SlackOutcome
from oncall import db
from oncall.context import Oncall
from oncall.paging import Paging
from oncall.settings import OncallSettings
from runtime.slack import (
    SignatureProblem,
    Unreadable,
    ephemeral,
    first_sight,
    read_interaction,
    signature_problem,
)

log = structlog.get_logger(__name__)


class Responses:
    """Posts to Slack's `response_url`s in the background (the click is answered meanwhile), to
    public addresses only unless private targets are allowed, as for webhook contact methods."""

    def __init__(self, settings: OncallSettings, paging: Paging) -> None:
        self.settings, self.paging = settings, paging
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str, message: dict[str, Any]) -> None:
        if url.startswith(("https://", "http://")):
            task = asyncio.create_task(self._post(url, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.settings.notify_timeout_seconds):
                await self.paging._check_target(url)
                async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
                    response = await client.post(url, json=message)
            log.info("slack_response_sent", status_code=response.status_code)
        except Exception as exc:
            # The URL is Slack's one-time credential for the message: never logged.
            log.warning("slack_response_failed", error=type(exc).__name__)


def _refused(problem: SignatureProblem) -> CommandFailed:
    log.info("slack_request_refused", reason=problem.name)
    return CommandFailed(ErrorCode.UNAUTHORIZED, problem.value)


async def slack_action(oc: Oncall, responses: Responses, cmd: SlackPageAction) -> SlackOutcome:
    secret = oc.settings.slack_signing_secret
    body = cmd.body.encode()
    if secret is None:
        raise _refused(SignatureProblem.INVALID)
    problem = signature_problem(secret.get_secret_value(), cmd.timestamp, cmd.signature, body, time.time())
    if problem is not None:
        raise _refused(problem)
    try:
        interaction = read_interaction(body)
    except Unreadable as exc:
        raise CommandFailed(ErrorCode.VALIDATION, str(exc)) from exc
    action = interaction.actions[0]
    try:
        page_id = uuid.UUID(action.value)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, "the button names no page") from exc
    async with oc.service.engine.begin() as conn:
        if not await first_sight(conn, db.slack_requests, cmd.signature, datetime.now(UTC)):
            raise _refused(SignatureProblem.REPLAYED)
        page = await db.page(conn, page_id)
        sent_to = (
            await db.slack_contact(conn, page.tenant_id, page.user_id, interaction.user.id)
            if page is not None
            else None
        )
    if action.action_id == PAGE_OPEN:
        return SlackOutcome(outcome="ignored")

    def refuse(text: str) -> SlackOutcome:
        responses.send(interaction.response_url, ephemeral(text))
        return SlackOutcome(outcome="refused", message=text)

    if page is None:
        return refuse("This page is not known to SRE Copilot (any more); nothing was changed.")
    if sent_to is None:
        return refuse("This page was sent to someone else; nothing was changed.")
    clicked_by = interaction.user.username or interaction.user.name or interaction.user.id
    try:
        await oc.paging.acknowledge(
            page_id, cmd.correlation_id, note=f"acknowledged in Slack by @{clicked_by}"[:200]
        )
    except CommandFailed as exc:
        if exc.code in (ErrorCode.CONFLICT, ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
            return refuse(f"{exc.message}; nothing was changed.")
        raise
    who = f"<@{interaction.user.id}>"
    text = f":white_check_mark: Acknowledged by {who} via Slack: the escalation is stopped."
    responses.send(
        interaction.response_url,
        {
            "replace_original": True,
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        },
    )
    log.info("slack_page_acknowledged", page_id=str(page_id))
    return SlackOutcome(outcome="acknowledged")
