"""Each command names its subject once, in its model's SUBJECT: no two models share one, and
integrations registers every command it handles through its model (`service.handles`), on the
subjects the gateway has always sent to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import contracts.commands
import contracts.integrations
from contracts.commands import Command
from contracts.subjects import command_subject
from integrations import db
from integrations.handlers import register_handlers
from integrations.settings import IntegrationsSettings
from runtime.service import Service

# What the gateway sends to integrations (gateway/routes/: `command_subject("integrations", name)`).
INTEGRATIONS_COMMANDS = {
    "receive_alerts", "receive_pagerduty", "record_change", "record_deploy", "record_rejection",
    "list_rejections", "list_inbound", "list_service_deploys", "list_service_alerts",
    "get_settings", "update_settings",
    "create_webhook", "list_webhooks", "get_webhook", "update_webhook", "delete_webhook",
    "list_deliveries", "retry_delivery",
    "slack_action", "set_slack_link", "list_slack_links", "get_slack_link", "delete_slack_link",
    "preview_mapping", "create_json_source", "list_json_sources", "get_json_source",
    "update_json_source", "delete_json_source", "receive_json",
    "create_silence", "list_silences", "get_silence", "delete_silence",
    "create_correlation_rule", "list_correlation_rules", "get_correlation_rule",
    "update_correlation_rule", "delete_correlation_rule", "preview_correlation",
}  # fmt: skip


def _commands() -> Iterator[type[Command]]:
    pending = list(Command.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        yield model


def test_every_command_model_declares_a_subject_of_its_own() -> None:
    declared: dict[str, str] = {}
    for model in _commands():
        if model.__module__ not in {contracts.commands.__name__, contracts.integrations.__name__}:
            continue
        subject = model.__dict__.get("SUBJECT")
        if subject is None:
            # Only a base the commands about one thing share (WebhookRef) goes without: its
            # subclasses are the commands.
            assert model.__subclasses__(), f"{model.__name__} declares no SUBJECT"
            continue
        assert subject not in declared, f"{model.__name__} and {declared[subject]} share {subject}"
        declared[subject] = model.__name__
        if model.__module__ == contracts.integrations.__name__:
            assert subject.startswith("cmd.integrations."), subject
    assert {f"cmd.integrations.{name}" for name in INTEGRATIONS_COMMANDS} <= set(declared)


def test_integrations_handles_each_command_through_its_model() -> None:
    settings = IntegrationsSettings()
    service = Service("integrations", settings, outbox=db.outbox)
    by_model: list[str] = []
    registered: list[str] = []
    handles, command = service.handles, service.command

    def through_model(model: type[Any]) -> Any:
        by_model.append(model.subject())
        return handles(model)

    def on_subject(subject: str, model: type[Any]) -> Any:
        registered.append(subject)
        return command(subject, model)

    service.handles, service.command = through_model, on_subject  # type: ignore[method-assign]
    register_handlers(service, settings)

    assert sorted(registered) == sorted(by_model), "a command registered on a subject string"
    assert len(set(registered)) == len(registered)
    assert set(registered) == {command_subject("integrations", name) for name in INTEGRATIONS_COMMANDS}
