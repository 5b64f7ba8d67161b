"""oncall's command models name their subjects once: each its own, under `cmd.oncall.`; oncall
registers every handler through its model (never on a subject string); and every command the gateway
sends by name (its routes' dict bodies) is one of them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from contracts import oncall
from contracts.commands import Command
from contracts.subjects import command_subject
from oncall import db
from oncall.handlers import register_handlers
from oncall.settings import OncallSettings
from runtime.service import Service

ROOT = Path(__file__).resolve().parents[2]


def command_models() -> list[type[Command]]:
    """The concrete commands (the `*Ref` bases only share fields and declare no subject)."""
    return [
        model
        for model in vars(oncall).values()
        if inspect.isclass(model) and issubclass(model, Command) and "SUBJECT" in vars(model)
    ]


def test_every_oncall_command_declares_a_subject_of_its_own() -> None:
    models = command_models()
    subjects = [model.subject() for model in models]
    assert len(subjects) == len(set(subjects)), sorted(s for s in subjects if subjects.count(s) > 1)
    assert all(re.fullmatch(r"cmd\.oncall\.[a-z_]+", s) for s in subjects), subjects
    # A base shared by several commands has no subject to send on.
    for base in (oncall.ScheduleRef, oncall.OverrideRef, oncall.PolicyRef, oncall.TeamRef):
        assert "SUBJECT" not in vars(base)


def test_every_command_the_gateway_sends_by_name_is_a_model_of_its_own() -> None:
    """The gateway still addresses oncall by name (`_call(<gateway>, "<name>", ...)`): each name is
    one model's subject, so moving the handlers onto the models changed no subject. (Once the
    gateway sends the models themselves, nothing is left here to check.)"""
    # The route modules whose `_call` sends to oncall (wherever the gateway keeps them).
    texts = [p.read_text() for p in (ROOT / "gateway").rglob("*.py")]
    sent = "\n".join(t for t in texts if 'command_subject("oncall", command)' in t)
    names = set(re.findall(r'_call\(\s*\w+,\s*"([a-z_]+)"', sent))
    subjects = {model.subject() for model in command_models()}
    assert {command_subject("oncall", name) for name in names} <= subjects, names
    assert command_subject("oncall", "slack_action") == oncall.SlackPageAction.subject()


def test_oncall_handles_each_command_through_its_model() -> None:
    settings = OncallSettings()
    service = Service("oncall", settings, outbox=db.outbox)
    by_model: list[str] = []
    on_subject: list[str] = []
    handles, command = service.handles, service.command

    def through_model(model: type[Any]) -> Any:
        by_model.append(model.subject())
        return handles(model)

    def on_a_subject(subject: str, model: type[Any]) -> Any:
        on_subject.append(subject)
        return command(subject, model)

    service.handles, service.command = through_model, on_a_subject  # type: ignore[method-assign]
    register_handlers(service, settings)
    assert sorted(on_subject) == sorted(by_model), "a command registered on a subject string"
    assert len(set(by_model)) == len(by_model), "a subject registered twice"
    assert set(by_model) == {model.subject() for model in command_models()}
