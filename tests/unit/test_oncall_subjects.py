"""oncall's command models name their subjects once: each its own, under `cmd.oncall.`; oncall
registers every handler through its model (never on a subject string); and the gateway spells no
subject, it sends the models."""

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


def test_the_gateway_spells_no_command_subject() -> None:
    """The gateway sends every command through its model (or, on the ingest routes, the model's
    subject): no subject is written out there, so a renamed subject cannot leave a route behind."""
    spelled = {
        str(path.relative_to(ROOT)): found
        for path in (ROOT / "gateway").rglob("*.py")
        if (found := re.findall(r'command_subject\(|"cmd\.[a-z_.]+"', path.read_text()))
    }
    assert spelled == {}
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
