"""The escalation engine, pure: (policy, escalation so far, now) -> the steps due now and when to look
again. No clock and no I/O: the caller passes `now` and persists what it returns (oncall/timers.py
does both in one transaction, which is what makes each step fire exactly once).

A policy's steps run in order: step 0 at once, each next one its predecessor's `wait` later; after the
last step's wait the whole policy runs again, `repeat` more times. An escalation stops for good when
its incident is acknowledged or resolved. Steps that came due while nobody was looking (the service
was down) all fire at the next look, in order: late, never skipped, never twice.

Routing picks the policy of an incident: the first rule (in order) whose conditions all hold, else the
default policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class TargetKind(StrEnum):
    USER = "user"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: str


@dataclass(frozen=True)
class Step:
    targets: tuple[Target, ...]
    wait: timedelta


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]
    repeat: int = 0

    def check(self) -> list[tuple[list[str | int], str]]:
        """What makes the policy unusable, as (where, why) pairs; empty when it is fine."""
        problems: list[tuple[list[str | int], str]] = []
        if not self.steps:
            problems.append((["steps"], "a policy needs at least one step"))
        for n, step in enumerate(self.steps):
            if not step.targets:
                problems.append((["steps", n, "targets"], "a step needs at least one target"))
            if step.wait < timedelta(0):
                problems.append((["steps", n, "wait_minutes"], "a wait is not negative"))
        if self.repeat < 0:
            problems.append((["repeat"], "repeat is not negative"))
        return problems


@dataclass(frozen=True)
class Escalation:
    """What is known of one escalation: when it started, whether it stopped, which (round, step)
    pairs have fired."""

    started_at: datetime
    stopped: bool = False
    fired: frozenset[tuple[int, int]] = field(default_factory=frozenset)


@dataclass(frozen=True)
class DueStep:
    round: int
    step: int
    due_at: datetime
    targets: tuple[Target, ...]
    last: bool  # the last step of the last round: the escalation has nowhere further to go


@dataclass(frozen=True)
class Decision:
    due: list[DueStep]
    # When to look again (None: nothing left; the escalation is over).
    next_at: datetime | None


def plan(policy: Policy, started_at: datetime) -> list[DueStep]:
    """Every step of every round, with when it comes due."""
    steps: list[DueStep] = []
    at = started_at
    rounds = policy.repeat + 1
    for r in range(rounds):
        for n, step in enumerate(policy.steps):
            last = r == rounds - 1 and n == len(policy.steps) - 1
            steps.append(DueStep(r, n, at, step.targets, last))
            at = at + step.wait
    return steps


def decide(policy: Policy, escalation: Escalation, now: datetime) -> Decision:
    if escalation.stopped:
        return Decision([], None)
    due: list[DueStep] = []
    for step in plan(policy, escalation.started_at):
        if (step.round, step.step) in escalation.fired:
            continue
        if step.due_at <= now:
            due.append(step)
        else:
            return Decision(due, step.due_at)
    return Decision(due, None)


def people(targets: Iterable[Target], on_call: Callable[[str], str | None]) -> list[str]:
    """The people a step pages: users as named, a schedule's whoever `on_call` says is on call now;
    each once, in the order named. A schedule with nobody on call pages nobody."""
    found: list[str] = []
    for target in targets:
        user = target.id if target.kind is TargetKind.USER else on_call(target.id)
        if user is not None and user not in found:
            found.append(user)
    return found


@dataclass(frozen=True)
class Rule:
    policy_id: str
    service_name: str | None = None
    severities: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    def matches(self, service_name: str, severity: str, labels: Mapping[str, str]) -> bool:
        return (
            (self.service_name is None or self.service_name == service_name)
            and (not self.severities or severity in self.severities)
            and all(labels.get(k) == v for k, v in self.labels.items())
        )


def route(
    rules: Sequence[Rule],
    default_policy: str | None,
    service_name: str,
    severity: str,
    labels: Mapping[str, str] | None = None,
) -> str | None:
    """The policy for an incident: the first matching rule's, else the default (None: nobody)."""
    for rule in rules:
        if rule.matches(service_name, severity, labels or {}):
            return rule.policy_id
    return default_policy
