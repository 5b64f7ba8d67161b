"""Slack interactivity: what Slack posts when someone clicks a button of one of our messages (a
`block_actions` payload, the fields we read), the action ids our buttons carry, and the command the
gateway forwards a click with. The click is forwarded as it arrived (raw body, timestamp and
signature): the service that holds the signing secret verifies it, and trusts only what it verified."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.commands import Command

# Our buttons' `action_id`s (Slack allows 255 characters).
INCIDENT_ACKNOWLEDGE = "sre_incident_acknowledge"
INCIDENT_RESOLVE = "sre_incident_resolve"
INCIDENT_OPEN = "sre_incident_open"  # a link button: Slack posts its clicks too
PAGE_ACKNOWLEDGE = "sre_page_acknowledge"
PAGE_OPEN = "sre_page_open"
INCIDENT_ACTIONS = (INCIDENT_ACKNOWLEDGE, INCIDENT_RESOLVE, INCIDENT_OPEN)
PAGE_ACTIONS = (PAGE_ACKNOWLEDGE, PAGE_OPEN)

SlackId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
# A click is a few kilobytes (it carries the message it was on).
MAX_SLACK_BODY = 256 * 1024


class SlackTeam(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: SlackId


class SlackUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: SlackId
    username: Annotated[str, StringConstraints(max_length=256)] = ""
    name: Annotated[str, StringConstraints(max_length=256)] = ""
    team_id: Annotated[str, StringConstraints(max_length=64)] = ""


class SlackAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    # Slack's limit on a button's value.
    value: Annotated[str, StringConstraints(max_length=2_000)] = ""
    action_ts: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SlackInteraction(BaseModel):
    """The `payload` field of a `block_actions` request (only the fields we use)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["block_actions"]
    team: SlackTeam | None = None
    user: SlackUser
    actions: Annotated[list[SlackAction], Field(min_length=1, max_length=25)]
    response_url: Annotated[str, StringConstraints(max_length=3_000)] = ""

    @property
    def team_id(self) -> str:
        return self.team.id if self.team is not None else self.user.team_id


class SlackRequest(Command):
    """A click as Slack sent it: verified (and then read) by the service that owns the action."""

    body: Annotated[str, StringConstraints(max_length=MAX_SLACK_BODY)]
    timestamp: Annotated[str, StringConstraints(max_length=32)] = ""
    signature: Annotated[str, StringConstraints(max_length=256)] = ""


class SlackOutcome(BaseModel):
    """What a click did: `acknowledged`, `resolved`, `unlinked` (the Slack user is linked to nobody:
    told so, nothing changed), `refused` (the linked user may not, or the incident's state refuses
    it: told why, nothing changed), `ignored` (a link button: nothing to do)."""

    outcome: Literal["acknowledged", "resolved", "unlinked", "refused", "ignored"]
    message: str = ""
