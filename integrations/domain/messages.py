"""The messages chat targets get (Slack, Teams, Mattermost, Discord) and Slack's button values."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.slack import INCIDENT_ACKNOWLEDGE, INCIDENT_OPEN, INCIDENT_RESOLVE

# ---- the messages chat targets get


@dataclass(frozen=True)
class IncidentFacts:
    id: str
    key: str
    title: str
    service_name: str
    severity: str
    state: str
    top_hypothesis: str | None = None
    top_confidence: float | None = None


@dataclass(frozen=True)
class Notice:
    """What every chat message says, whatever its format: what happened, to which incident, the top
    hypothesis, a note, and the link to the incident."""

    incident: IncidentFacts
    what: str
    headline: str
    note: str
    link: str

    @property
    def confidence(self) -> str:
        value = self.incident.top_confidence
        return f" ({value:.0%})" if value is not None and self.incident.top_hypothesis else ""

    @property
    def fallback(self) -> str:
        i = self.incident
        return f"[{i.severity}] {self.headline} ({i.service_name}): {self.what}, {i.state}"


def notice(event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str) -> Notice:
    if event_type == "incident.created":
        what = "Incident opened"
    elif event_type == "incident.state_changed":
        what = f"{data.get('from_state', '?')} → {data.get('to_state', incident.state)}"
    elif event_type == "hypothesis.generated":
        what = "Hypotheses ready"
    else:
        what = event_type
    note = str(data.get("note") or "").strip() if event_type == "incident.state_changed" else ""
    return Notice(incident, what, f"{incident.key} · {incident.title}", note, link)


SEVERITY_MARK = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
}
# Hex colours by severity, for the formats that colour a message (Mattermost, Discord).
SEVERITY_COLOUR = {"critical": "#d92d20", "high": "#f79009", "medium": "#fdb022", "low": "#98a2b3"}


def slack_escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup; a title must not become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_action_value(webhook_id: str, incident_id: str) -> str:
    """A button's `value`: which webhook's signing secret verifies the click, and which incident."""
    return f"{webhook_id}:{incident_id}"


def read_action_value(value: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    webhook, _, incident = value.partition(":")
    try:
        return uuid.UUID(webhook), uuid.UUID(incident)
    except ValueError:
        return None


def slack_buttons(webhook_id: str, incident: IncidentFacts) -> list[dict[str, Any]]:
    """Acknowledge and Resolve, as far as the incident's state still allows them."""
    value = slack_action_value(webhook_id, incident.id)
    buttons: list[dict[str, Any]] = []
    if incident.state == "detected":
        buttons.append(
            {
                "type": "button",
                "action_id": INCIDENT_ACKNOWLEDGE,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "style": "primary",
                "value": value,
            }
        )
    if incident.state != "resolved":
        buttons.append(
            {
                "type": "button",
                "action_id": INCIDENT_RESOLVE,
                "text": {"type": "plain_text", "text": "Resolve"},
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Resolve the incident?"},
                    "text": {"type": "plain_text", "text": _clip(f"{incident.key} · {incident.title}", 300)},
                    "confirm": {"type": "plain_text", "text": "Resolve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        )
    return buttons


def slack_message(
    event_type: str,
    data: Mapping[str, Any],
    incident: IncidentFacts,
    link: str,
    *,
    interactive: str | None = None,
    done_by: str = "",
) -> dict[str, Any]:
    """A Block Kit message: what happened, severity, state, service, the top hypothesis, a link; with
    `interactive` (the id of a Slack webhook that has a signing secret) the Acknowledge and Resolve
    buttons; `done_by` says who clicked (the message as updated in place after a click)."""
    n = notice(event_type, data, incident, link)
    if incident.top_hypothesis:
        text = slack_escape(_clip(incident.top_hypothesis, 2_500))
        hypothesis = f"*Top hypothesis*{n.confidence}\n{text}"
    else:
        hypothesis = "*Top hypothesis*\n_pending_"
    mark = SEVERITY_MARK.get(incident.severity, ":white_circle:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(n.headline, 150), "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{mark} {incident.severity}"},
                {"type": "mrkdwn", "text": f"*State*\n{incident.state}"},
                {"type": "mrkdwn", "text": f"*Service*\n{slack_escape(incident.service_name)}"},
                {"type": "mrkdwn", "text": f"*Event*\n{slack_escape(n.what)}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": hypothesis}},
    ]
    if n.note:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(_clip(n.note, 2_000))}]}
        )
    if done_by:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(done_by, 3_000)}]})
    buttons = slack_buttons(interactive, incident) if interactive else []
    open_button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": "Open incident"}}
    if interactive:
        # Slack posts a click on a link button to the app too: ours, verified and answered, no effect.
        open_button |= {"action_id": INCIDENT_OPEN, "value": slack_action_value(interactive, incident.id)}
    open_button["url"] = link
    blocks.append({"type": "actions", "elements": [*buttons, open_button]})
    return {"text": slack_escape(_clip(n.fallback, 3_000)), "blocks": blocks}


MARKDOWN_SPECIAL = re.compile(r"([\\`*_~\[\]()>#|])")
# "@channel", "@here", "@all", "@everyone", "@someone": a zero-width joiner after the @ keeps the
# text and stops the chat from notifying everybody because an alert's title says so.
MENTION = re.compile(r"@(?=[A-Za-z0-9_])")


def no_mentions(text: str) -> str:
    return MENTION.sub("@\u200b", text)


def markdown_escape(text: str) -> str:
    """Text shown literally in Markdown (Mattermost, Discord): no links, no formatting, no mass
    mentions."""
    return no_mentions(MARKDOWN_SPECIAL.sub(r"\\\1", text))


def teams_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Teams Workflows ("When a Teams webhook request is received") message: one Adaptive Card
    (schema 1.4, what Teams renders) with the headline, the facts, the top hypothesis and a button.
    Text goes as it is: cards show no backslash escapes, and a Teams mention needs an explicit
    `msteams.entities` entry, so "@channel" in a title notifies nobody."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}: {(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**: _pending_"
    )
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": (_clip(n.headline, 300)),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention" if incident.severity in ("critical", "high") else "Default",
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Severity", "value": incident.severity},
                {"title": "State", "value": incident.state},
                {"title": "Service", "value": (incident.service_name)},
                {"title": "Event", "value": (n.what)},
            ],
        },
        {"type": "TextBlock", "text": hypothesis, "wrap": True},
    ]
    if n.note:
        body.append({"type": "TextBlock", "text": (_clip(n.note, 2_000)), "wrap": True, "isSubtle": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": _clip(n.fallback, 3_000),
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def mattermost_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Mattermost incoming-webhook message: a line of text and one message attachment (colour by
    severity, the facts as short fields, the top hypothesis)."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}\n{markdown_escape(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**\n_pending_"
    )
    text = hypothesis + (f"\n\n{markdown_escape(_clip(n.note, 2_000))}" if n.note else "")
    return {
        "text": f"{markdown_escape(n.what)}: [{markdown_escape(incident.key)}]({link})",
        "attachments": [
            {
                "fallback": markdown_escape(_clip(n.fallback, 3_000)),
                "color": SEVERITY_COLOUR.get(incident.severity, "#98a2b3"),
                # Plain text in an attachment (no Markdown), but a mention would still be read.
                "title": no_mentions(_clip(n.headline, 250)),
                "title_link": link,
                "text": text,
                "fields": [
                    {"short": True, "title": "Severity", "value": incident.severity},
                    {"short": True, "title": "State", "value": incident.state},
                    {"short": True, "title": "Service", "value": markdown_escape(incident.service_name)},
                    {"short": True, "title": "Event", "value": markdown_escape(n.what)},
                ],
            }
        ],
    }


def discord_message(
    event_type: str, data: Mapping[str, Any], incident: IncidentFacts, link: str
) -> dict[str, Any]:
    """A Discord webhook message: one embed within Discord's limits (title 256, description 4096,
    field values 1024), and no mentions parsed at all."""
    n = notice(event_type, data, incident, link)
    hypothesis = (
        f"**Top hypothesis**{n.confidence}\n{markdown_escape(_clip(incident.top_hypothesis, 2_500))}"
        if incident.top_hypothesis
        else "**Top hypothesis**\n*pending*"
    )
    description = hypothesis + (f"\n\n{markdown_escape(_clip(n.note, 1_000))}" if n.note else "")
    colour = SEVERITY_COLOUR.get(incident.severity, "#98a2b3")
    return {
        "content": _clip(markdown_escape(n.fallback), 2_000),
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": _clip(n.headline, 256),
                "url": link,
                "description": _clip(description, 4_096),
                "color": int(colour[1:], 16),
                "fields": [
                    {"name": "Severity", "value": incident.severity, "inline": True},
                    {"name": "State", "value": incident.state, "inline": True},
                    {
                        "name": "Service",
                        "value": _clip(markdown_escape(incident.service_name), 1_024),
                        "inline": True,
                    },
                    {"name": "Event", "value": _clip(markdown_escape(n.what), 1_024), "inline": True},
                ],
            }
        ],
    }


Renderer = Callable[[str, Mapping[str, Any], IncidentFacts, str], dict[str, Any]]
# The chat formats, by webhook kind (`generic` sends the envelope itself, signed).
CHAT_MESSAGES: dict[str, Renderer] = {
    "slack": slack_message,
    "teams": teams_message,
    "mattermost": mattermost_message,
    "discord": discord_message,
}
