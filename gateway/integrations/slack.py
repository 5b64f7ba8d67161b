"""`/api/v1/integrations/slack`: the Slack app's Interactivity request URL (`/actions`: clicks on
the Acknowledge and Resolve buttons of incident messages, and on the Acknowledge button of on-call
page DMs) and the links between users and Slack members (who a click acts as).

A click is read here only to know which service owns its button; it is forwarded as it arrived
(raw body, timestamp, signature) and that service verifies Slack's signature with the secret it holds
(a Slack webhook's signing secret in integrations, the on-call bot's in oncall) before trusting
anything in it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response

from contracts import integrations as ci
from contracts import oncall as co
from contracts.commands import Done
from contracts.slack import INCIDENT_ACTIONS, MAX_SLACK_BODY, PAGE_ACTIONS, SlackOutcome
from gateway.auth.dependencies import SelfDep
from gateway.errors import ApiError, declare
from gateway.integrations.schemas import SlackActionRead, SlackLinkPage, SlackLinkRead, SlackLinkUpdate
from gateway.state import GatewayDep
from runtime.slack import NoPayload, Unreadable, read_interaction

router = APIRouter(prefix="/api/v1/integrations/slack", tags=["integrations"])

FORM = "application/x-www-form-urlencoded"
# Characters of the payload (a click carries the message it was on); form-encoded, at most 12 bytes
# each, within MAX_SLACK_BODY.
MAX_PAYLOAD = 20_000
ACTION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "required": ["payload"],
                    "properties": {
                        "payload": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_PAYLOAD,
                            "description": "Slack's `block_actions` payload, as JSON",
                        }
                    },
                }
            }
        },
    }
}
# 400: not a form with a `payload`. 401: not a click on one of our buttons, or Slack's signature is
# missing or does not verify with the secret of the button's owner, the timestamp is more than five
# minutes away, or the request was received before (nothing changed).
ACTION_RESPONSES = declare(400, 401, 413, 503, 504)
UserId = Annotated[
    str,
    Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="A user id, or `me` for the caller"),
]


@router.post(
    "/actions",
    response_model=SlackActionRead,
    openapi_extra=ACTION_BODY,
    responses=ACTION_RESPONSES,
)
async def slack_actions(
    gw: GatewayDep,
    request: Request,
    x_slack_signature: Annotated[
        str, Header(max_length=256, pattern=r"^[!-~]*$", description="`v0=` and 64 hex digits")
    ] = "",
    x_slack_request_timestamp: Annotated[
        str, Header(max_length=32, pattern=r"^[0-9]*$", description="Unix seconds")
    ] = "",
) -> SlackActionRead:
    """The Slack app's Interactivity request URL. Slack signs each click (`X-Slack-Signature`,
    `X-Slack-Request-Timestamp`); a click acts as the SRE Copilot user linked to the Slack member who
    clicked (see `/links`) and the message is updated in place through Slack's `response_url`. A
    Slack member linked to nobody gets an ephemeral "link your account" reply, and nothing changes.
    A body that is not a form with one `payload` field is a 400. A payload that is not a click on one
    of our buttons (nothing can verify it), a signature that is missing or does not verify (with the
    signing secret of the button's Slack webhook, or of the on-call Slack app), a timestamp more than
    five minutes away, or a request received before, is a 401; nothing changes."""
    raw = await request.body()
    if len(raw) > MAX_SLACK_BODY:
        raise ApiError(413, "payload_too_large", "larger than a Slack click can be")
    try:
        interaction = read_interaction(raw)
    except NoPayload as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    except Unreadable as exc:
        # No button of ours sent it, so no secret can verify it: what an unsigned request is.
        raise ApiError(401, "unauthorized", f"not a Slack click that can be verified: {exc}") from exc
    action_id = interaction.actions[0].action_id
    command: type[ci.IncidentSlackAction] | type[co.SlackPageAction]
    if action_id in INCIDENT_ACTIONS:
        command = ci.IncidentSlackAction
    elif action_id in PAGE_ACTIONS:
        command = co.SlackPageAction
    else:
        raise ApiError(401, "unauthorized", "not a click on a button of SRE Copilot's: nothing verifies it")
    outcome: SlackOutcome = await gw.commands.call(
        command,
        {"body": raw.decode(), "timestamp": x_slack_request_timestamp, "signature": x_slack_signature},
        SlackOutcome,
    )
    return SlackActionRead(outcome=outcome.outcome)


def _user(caller: Any, user_id: str) -> str:
    return str(caller.user_id) if user_id == "me" else user_id


@router.get("/links", response_model=SlackLinkPage, responses=declare(504))
async def list_slack_links(gw: GatewayDep, caller: SelfDep) -> SlackLinkPage:
    """Which Slack member each user is: admins see the organisation's, others their own."""
    return await gw.commands.call(ci.ListSlackLinks, {"caller": caller.model_dump()}, SlackLinkPage)


@router.put("/links/{user_id}", response_model=SlackLinkRead, responses=declare(403, 404, 409, 504))
async def set_slack_link(
    gw: GatewayDep, user_id: UserId, body: SlackLinkUpdate, caller: SelfDep
) -> SlackLinkRead:
    """Link a user (`me`, or anyone for admins) to a Slack member: `slack_team_id` (the workspace,
    `T…`) and `slack_user_id` (the member id, `U…`, in Slack's profile menu: Copy member ID). Clicks of
    that member on the buttons then act as this user, with their role. A Slack member is linked to at
    most one user (409)."""
    return await gw.commands.call(
        ci.SetSlackLink,
        {"caller": caller.model_dump(), "user_id": _user(caller, user_id), "link": body.model_dump()},
        SlackLinkRead,
    )


@router.get("/links/{user_id}", response_model=SlackLinkRead, responses=declare(403, 404, 504))
async def get_slack_link(gw: GatewayDep, user_id: UserId, caller: SelfDep) -> SlackLinkRead:
    """The Slack member a user (`me`, or anyone for admins) is linked to; 404 when none."""
    return await gw.commands.call(
        ci.GetSlackLink, {"caller": caller.model_dump(), "user_id": _user(caller, user_id)}, SlackLinkRead
    )


@router.delete("/links/{user_id}", status_code=204, responses=declare(403, 404, 504))
async def delete_slack_link(gw: GatewayDep, user_id: UserId, caller: SelfDep) -> Response:
    """Unlink: that Slack member's clicks act as nobody from then on."""
    await gw.commands.call(
        ci.DeleteSlackLink,
        {"caller": caller.model_dump(), "user_id": _user(caller, user_id)},
        Done,
    )
    return Response(status_code=204)
