"""Slack interactivity for the incident messages integrations posts: the Acknowledge and Resolve
buttons (`cmd.integrations.slack_action`, forwarded by the gateway as Slack sent it) and the links
between Slack members and users (who a click acts as).

A click names its webhook and incident in the button's value; the webhook's signing secret (kept
encrypted) verifies it, so the webhook's organisation is the only one it can act in. The click acts
as the user linked to the Slack member who clicked, with that user's current role (asked of auth),
through the incidents service like any other move; a Slack member linked to nobody is told how to
link, and nothing changes. The move's id is derived from Slack's `action_ts`, so a click Slack sends
again moves the incident once. The message is then updated in place through Slack's `response_url`
(in the background: Slack wants its answer within three seconds)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import httpx
import structlog
from pydantic import BaseModel

from contracts.commands import (
    Caller,
    Command,
    CommandFailed,
    Done,
    ErrorCode,
    GetMember,
    IncidentAccepted,
    MemberView,
    TransitionIncident,
)
from contracts.events import IncidentState, Role, UserStatus
from contracts.integrations import (
    DeleteSlackLink,
    GetSlackLink,
    IncidentSlackAction,
    ListSlackLinks,
    SetSlackLink,
    SlackLinkList,
    SlackLinkView,
    WebhookKind,
)
from contracts.slack import INCIDENT_ACKNOWLEDGE, INCIDENT_OPEN, SlackOutcome
from integrations import db
from integrations.crypto import SecretBox
from integrations.domain import IncidentFacts, read_action_value, slack_message, url_problem
from integrations.outbound import pin_target, scrub
from integrations.settings import IntegrationsSettings
from runtime.commands import CommandClient, CommandTransportError
from runtime.service import Service
from runtime.slack import (
    SignatureProblem,
    Unreadable,
    ephemeral,
    first_sight,
    read_interaction,
    signature_problem,
)

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)

ACTION_NAMESPACE = uuid.UUID("8a0f6f5c-3f4e-4f7e-9d3b-2b1f0c6e7a51")
LINK_HINT = (
    "Your Slack account is not linked to an SRE Copilot user of this organisation, so nothing was "
    "changed. Link it in SRE Copilot (`PUT /api/v1/integrations/slack/links/me` with your Slack "
    "workspace and member ids), or ask an admin to."
)


def _unauthorized(problem: SignatureProblem) -> CommandFailed:
    return CommandFailed(ErrorCode.UNAUTHORIZED, problem.value)


class Responder:
    """Posts to Slack's `response_url`s, in the background, to public addresses only (unless private
    targets are allowed, as for webhooks): a signed click could still name any URL."""

    def __init__(self, settings: IntegrationsSettings) -> None:
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def send(self, url: str, message: dict[str, Any]) -> None:
        if not url:
            return
        task = asyncio.create_task(self._post(url, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, message: dict[str, Any]) -> None:
        allow_private = self.settings.webhook_allow_private_targets
        problem = url_problem(url, allow_private)
        if problem:
            log.warning("slack_response_url_refused", reason=problem)
            return
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0, max_connections=None),
            )
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                target = await pin_target(url, allow_private)
                response = await self._client.post(
                    target.url, json=message, headers=target.headers, extensions=target.extensions
                )
            log.info("slack_response_sent", status_code=response.status_code)
        except Exception as exc:
            log.warning("slack_response_failed", error=scrub(f"{type(exc).__name__}: {exc}", url)[:300])

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()


def link_view(row: Any) -> SlackLinkView:
    return SlackLinkView(
        user_id=row.user_id,
        slack_team_id=row.slack_team_id,
        slack_user_id=row.slack_user_id,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def register_slack_handlers(
    service: Service, settings: IntegrationsSettings, box: Callable[[], SecretBox], responder: Responder
) -> None:
    commands = CommandClient(lambda: service.broker.connection, settings.command_timeout_seconds)

    async def ask(command: Command, reply: type[R]) -> R:
        try:
            return await commands.call(command, reply)
        except CommandTransportError as exc:
            raise CommandFailed(ErrorCode.UNAVAILABLE, f"{exc.service} did not answer") from exc

    async def member(tenant_id: str, user_id: str, correlation_id: str) -> MemberView | None:
        try:
            found: MemberView = await ask(
                GetMember(correlation_id=correlation_id, tenant_id=tenant_id, user_id=user_id),
                MemberView,
            )
        except CommandFailed as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return None
            raise
        return found

    @service.handles(IncidentSlackAction)
    async def slack_action(cmd: IncidentSlackAction) -> SlackOutcome:
        body = cmd.body.encode()
        try:
            interaction = read_interaction(body)
        except Unreadable as exc:
            raise CommandFailed(ErrorCode.VALIDATION, str(exc)) from exc
        action = interaction.actions[0]
        refs = read_action_value(action.value)
        # Only our own buttons carry a readable value; without one no secret can verify the click.
        if refs is None:
            raise _unauthorized(SignatureProblem.INVALID)
        webhook_id, incident_id = refs
        async with service.engine.connect() as conn:
            hook = await db.webhook_by_id(conn, webhook_id)
        if hook is None or hook.kind != WebhookKind.SLACK.value or hook.secret_encrypted is None:
            raise _unauthorized(SignatureProblem.INVALID)
        problem = signature_problem(
            box().open(hook.secret_encrypted), cmd.timestamp, cmd.signature, body, time.time()
        )
        if problem is not None:
            log.info("slack_request_refused", reason=problem.name, webhook_id=str(webhook_id))
            raise _unauthorized(problem)
        tenant_id, now = hook.tenant_id, datetime.now(UTC)
        async with service.engine.begin() as conn:
            if not await first_sight(conn, db.slack_requests, cmd.signature, now):
                log.info("slack_request_refused", reason="REPLAYED", webhook_id=str(webhook_id))
                raise _unauthorized(SignatureProblem.REPLAYED)
            link = await db.slack_link_of_member(conn, tenant_id, interaction.team_id, interaction.user.id)
            incident = await db.incident(conn, incident_id)
        if action.action_id == INCIDENT_OPEN:
            return SlackOutcome(outcome="ignored")

        def refuse(text: str, outcome: Literal["refused", "unlinked"] = "refused") -> SlackOutcome:
            responder.send(interaction.response_url, ephemeral(text))
            return SlackOutcome(outcome=outcome, message=text)

        if incident is None or incident.tenant_id != tenant_id:
            return refuse("This incident is not known to SRE Copilot (any more); nothing was changed.")
        user = await member(tenant_id, link.user_id, cmd.correlation_id) if link is not None else None
        if user is None:
            return refuse(LINK_HINT, "unlinked")
        if user.status is not UserStatus.ACTIVE:
            return refuse("Your SRE Copilot account is not active; nothing was changed.")
        acknowledge = action.action_id == INCIDENT_ACKNOWLEDGE
        verb = "Acknowledged" if acknowledge else "Resolved"
        clicked_by = interaction.user.username or interaction.user.name or interaction.user.id
        key = f"{tenant_id}/{interaction.team_id}/{interaction.user.id}/{action.action_ts}/{action.action_id}"
        command = TransitionIncident(
            correlation_id=cmd.correlation_id,
            caller=Caller(tenant_id=tenant_id, user_id=user.id, role=Role(user.role)),
            incident_id=str(incident_id),
            to=IncidentState.ACKNOWLEDGED if acknowledge else IncidentState.RESOLVED,
            note=f"{verb} in Slack by @{clicked_by}"[:200],
            # Slack sending the same click again (same action_ts) moves the incident once.
            transition_id=str(uuid.uuid5(ACTION_NAMESPACE, f"{key}/{incident_id}")),
        )
        try:
            accepted: IncidentAccepted = await ask(command, IncidentAccepted)
        except CommandFailed as exc:
            if exc.code is ErrorCode.CONFLICT:
                state = (
                    (exc.details or {}).get("state", incident.state) if isinstance(exc.details, dict) else ""
                )
                return refuse(f"{incident.key} is {state or 'moved on'} already; nothing was changed.")
            if exc.code is ErrorCode.FORBIDDEN:
                return refuse(f"Your SRE Copilot role ({user.role.value}) may not change incidents.")
            raise
        snapshot = accepted.incident
        facts = IncidentFacts(
            id=snapshot.id,
            key=snapshot.key,
            title=snapshot.title,
            service_name=snapshot.service_name,
            severity=snapshot.severity.value,
            state=snapshot.state.value,
            top_hypothesis=incident.top_hypothesis,
            top_confidence=incident.top_confidence,
        )
        message = slack_message(
            "incident.state_changed",
            {"from_state": incident.state, "to_state": snapshot.state.value},
            facts,
            f"{settings.public_base_url.rstrip('/')}/incidents/{snapshot.id}",
            interactive=str(webhook_id),
            done_by=f"{verb} by <@{interaction.user.id}> via Slack",
        )
        responder.send(interaction.response_url, {"replace_original": True, **message})
        log.info("slack_action", action=action.action_id, incident_id=str(incident_id), user_id=user.id)
        return SlackOutcome(outcome="acknowledged" if acknowledge else "resolved")

    # ---- links: which Slack member is which user

    def _may_manage(caller: Caller, user_id: str) -> None:
        if user_id != caller.user_id and not caller.role.at_least(Role.ADMIN):
            raise CommandFailed(ErrorCode.FORBIDDEN, "only admins link other users' Slack accounts")

    @service.handles(SetSlackLink)
    async def set_slack_link(cmd: SetSlackLink) -> SlackLinkView:
        caller = cmd.caller
        _may_manage(caller, cmd.user_id)
        if await member(caller.tenant_id, cmd.user_id, cmd.correlation_id) is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "user not found")
        values = {
            "slack_team_id": cmd.link.slack_team_id,
            "slack_user_id": cmd.link.slack_user_id,
            "created_by": caller.user_id,
            "created_at": datetime.now(UTC),
        }
        async with service.engine.begin() as conn:
            link = cmd.link
            if await db.slack_member_taken(
                conn, caller.tenant_id, link.slack_team_id, link.slack_user_id, cmd.user_id
            ):
                raise CommandFailed(ErrorCode.CONFLICT, "this Slack member is linked to another user")
            row = await db.save_slack_link(conn, caller.tenant_id, cmd.user_id, values)
        return link_view(row)

    @service.handles(ListSlackLinks)
    async def list_slack_links(cmd: ListSlackLinks) -> SlackLinkList:
        """Admins see every link of the organisation; others their own."""
        caller = cmd.caller
        own = None if caller.role.at_least(Role.ADMIN) else caller.user_id
        async with service.engine.connect() as conn:
            rows = await db.slack_links_of(conn, caller.tenant_id, own)
        return SlackLinkList(items=[link_view(r) for r in rows])

    @service.handles(GetSlackLink)
    async def get_slack_link(cmd: GetSlackLink) -> SlackLinkView:
        caller = cmd.caller
        _may_manage(caller, cmd.user_id)
        async with service.engine.connect() as conn:
            row = await db.slack_link(conn, caller.tenant_id, cmd.user_id)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "no Slack account is linked to this user")
        return link_view(row)

    @service.handles(DeleteSlackLink)
    async def delete_slack_link(cmd: DeleteSlackLink) -> Done:
        caller = cmd.caller
        _may_manage(caller, cmd.user_id)
        async with service.engine.begin() as conn:
            if not await db.delete_slack_link(conn, caller.tenant_id, cmd.user_id):
                raise CommandFailed(ErrorCode.NOT_FOUND, "no Slack account is linked to this user")
        return Done()
