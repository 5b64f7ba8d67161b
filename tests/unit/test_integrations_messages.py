"""The chat messages, checked against what each service documents: Microsoft Teams' Workflows
webhook (a `message` with one Adaptive Card attachment, card schema 1.4: TextBlock, FactSet,
Action.OpenUrl), Mattermost's incoming webhooks (`text` and Slack-style `attachments`), Discord's
webhooks (`content`, `embeds` within Discord's documented limits, `allowed_mentions`). The schemas
below restate those documents' required fields and limits; `additionalProperties: false` catches a
misspelt field, which each service would silently drop."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from integrations.domain import (
    CHAT_MESSAGES,
    IncidentFacts,
    discord_message,
    markdown_escape,
    mattermost_message,
    teams_message,
)

INCIDENT = IncidentFacts(
    id="0190f0c2-0000-7000-8000-000000000001",
    key="INC-42",
    title="Checkout 5xx above 5%",
    service_name="checkout",
    severity="critical",
    state="detected",
    top_hypothesis="The v2.14 deploy exhausted the database pool",
    top_confidence=0.82,
)
LINK = "https://sre.example.com/incidents/0190f0c2-0000-7000-8000-000000000001"
STRING = {"type": "string"}

# https://adaptivecards.io/explorer (TextBlock, FactSet, Action.OpenUrl) and Teams' "Create
# incoming webhooks with Workflows" (the message envelope).
TEXT_BLOCK = {
    "type": "object",
    "required": ["type", "text"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "TextBlock"},
        "text": STRING,
        "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
        "weight": {"enum": ["Default", "Lighter", "Bolder"]},
        "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"]},
        "wrap": {"type": "boolean"},
        "isSubtle": {"type": "boolean"},
    },
}
FACT_SET = {
    "type": "object",
    "required": ["type", "facts"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "FactSet"},
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "value"],
                "additionalProperties": False,
                "properties": {"title": STRING, "value": STRING},
            },
        },
    },
}
TEAMS = {
    "type": "object",
    "required": ["type", "attachments"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "additionalProperties": False,
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": "null"},
                    "content": {
                        "type": "object",
                        "required": ["type", "version", "body"],
                        "additionalProperties": False,
                        "properties": {
                            "$schema": {"const": "http://adaptivecards.io/schemas/adaptive-card.json"},
                            "type": {"const": "AdaptiveCard"},
                            # Teams renders up to 1.5; Workflows posts cards of 1.4 safely.
                            "version": {"enum": ["1.0", "1.1", "1.2", "1.3", "1.4"]},
                            "fallbackText": STRING,
                            "body": {"type": "array", "items": {"oneOf": [TEXT_BLOCK, FACT_SET]}},
                            "actions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["type", "url"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"const": "Action.OpenUrl"},
                                        "title": STRING,
                                        "url": {"type": "string", "format": "uri"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

# https://developers.mattermost.com/integrate/webhooks/incoming/ and
# https://developers.mattermost.com/integrate/reference/message-attachments/
MATTERMOST = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": STRING,
        "username": STRING,
        "icon_url": STRING,
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fallback"],
                "additionalProperties": False,
                "properties": {
                    "fallback": STRING,
                    "color": {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"},
                    "pretext": STRING,
                    "text": STRING,
                    "title": STRING,
                    "title_link": STRING,
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["title", "value"],
                            "additionalProperties": False,
                            "properties": {"short": {"type": "boolean"}, "title": STRING, "value": STRING},
                        },
                    },
                },
            },
        },
    },
}

# https://discord.com/developers/docs/resources/webhook#execute-webhook and the embed limits of
# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
DISCORD = {
    "type": "object",
    "anyOf": [{"required": ["content"]}, {"required": ["embeds"]}],
    "additionalProperties": False,
    "properties": {
        "content": {"type": "string", "maxLength": 2000},
        "username": {"type": "string", "maxLength": 80},
        "allowed_mentions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"parse": {"type": "array", "items": {"enum": ["roles", "users", "everyone"]}}},
        },
        "embeds": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string", "maxLength": 256},
                    "url": STRING,
                    "description": {"type": "string", "maxLength": 4096},
                    "color": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF},
                    "fields": {
                        "type": "array",
                        "maxItems": 25,
                        "items": {
                            "type": "object",
                            "required": ["name", "value"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1, "maxLength": 256},
                                "value": {"type": "string", "minLength": 1, "maxLength": 1024},
                                "inline": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
}

SCHEMAS = {"teams": TEAMS, "mattermost": MATTERMOST, "discord": DISCORD}
EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("incident.created", {}),
    ("incident.state_changed", {"from_state": "detected", "to_state": "acknowledged", "note": "on it"}),
    ("hypothesis.generated", {}),
]


def embed_characters(message: dict[str, Any]) -> int:
    """Discord's 6000-character budget: titles, descriptions, field names and values together."""
    total = 0
    for embed in message.get("embeds", []):
        total += len(embed.get("title", "")) + len(embed.get("description", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return total


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
@pytest.mark.parametrize(("event_type", "data"), EVENTS)
def test_each_format_is_what_its_service_documents(kind: str, event_type: str, data: dict[str, Any]) -> None:
    message = CHAT_MESSAGES[kind](event_type, data, INCIDENT, LINK)
    jsonschema.validate(message, SCHEMAS[kind], format_checker=jsonschema.FormatChecker())
    text = json.dumps(message, ensure_ascii=False)
    assert "INC-42" in text and "checkout" in text and LINK in text
    assert "critical" in text and "detected" in text
    if kind == "discord":
        assert embed_characters(message) <= 6000


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_longest_incident_stays_within_the_limits(kind: str) -> None:
    huge = IncidentFacts(
        id=INCIDENT.id,
        key="INC-99999",
        title="t" * 200,
        service_name="s" * 100,
        severity="high",
        state="investigating",
        top_hypothesis="h" * 10_000,
        top_confidence=None,
    )
    data = {"from_state": "acknowledged", "to_state": "investigating", "note": "n" * 5_000}
    message = CHAT_MESSAGES[kind]("incident.state_changed", data, huge, LINK)
    jsonschema.validate(message, SCHEMAS[kind])
    if kind == "discord":
        assert embed_characters(message) <= 6000


def test_the_teams_card_reads_as_documented() -> None:
    [attachment] = teams_message("incident.created", {}, INCIDENT, LINK)["attachments"]
    card = attachment["content"]
    assert (
        card["body"][0]["text"] == "INC-42 · Checkout 5xx above 5%"
        and card["body"][0]["color"] == "Attention"
    )
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Severity": "critical",
        "State": "detected",
        "Service": "checkout",
        "Event": "Incident opened",
    }
    assert "82%" in card["body"][2]["text"] and "database pool" in card["body"][2]["text"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open incident", "url": LINK}]


def test_discord_and_mattermost_never_ping_everyone_nor_link_from_a_title() -> None:
    hostile = IncidentFacts(
        id=INCIDENT.id,
        key="INC-7",
        title="@everyone [free money](https://evil.example) @here",
        service_name="@channel",
        severity="medium",
        state="detected",
    )
    discord = discord_message("incident.created", {}, hostile, LINK)
    assert discord["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in discord["content"] and "](https://evil" not in discord["content"]
    message = mattermost_message("incident.created", {}, hostile, LINK)
    mattermost = json.dumps(message, ensure_ascii=False)
    for mention in ("@channel", "@here", "@everyone"):
        assert mention not in mattermost
    # The attachment's title is plain text (shown as written); what is read as Markdown is escaped.
    [attachment] = message["attachments"]
    rendered = [
        message["text"],
        attachment["text"],
        attachment["fallback"],
        *(f["value"] for f in attachment["fields"]),
    ]
    assert not any("](https://evil" in part for part in rendered)
    assert markdown_escape("5.3% of a-b") == "5.3% of a-b"  # ordinary text stays readable
