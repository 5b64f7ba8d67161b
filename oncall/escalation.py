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

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class TargetKind(StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    TEAM = "team"


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


@dataclass(frozen=True)
class Team:
    """A team as a step pages it: its schedule's on-call when it has a schedule and someone is on
    call, else every member (a team never pages nobody because its rota has a gap)."""

    members: tuple[str, ...]
    schedule_id: str | None = None


def people(
    targets: Iterable[Target],
    on_call: Callable[[str], str | None],
    teams: Mapping[str, Team] | None = None,
) -> list[str]:
    """The people a step pages: users as named, a schedule's whoever `on_call` says is on call now,
    a team as `Team` says; each once, in the order named. A schedule with nobody on call, or a team
    that no longer exists, pages nobody."""
    found: list[str] = []
    for target in targets:
        if target.kind is TargetKind.USER:
            users: Sequence[str | None] = [target.id]
        elif target.kind is TargetKind.SCHEDULE:
            users = [on_call(target.id)]
        else:
            team = (teams or {}).get(target.id)
            if team is None:
                continue
            who = on_call(team.schedule_id) if team.schedule_id is not None else None
            users = [who] if who is not None else team.members
        for user in users:
            if user is not None and user not in found:
                found.append(user)
    return found


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class LabelMatcher:
    """`label op value`, as Alertmanager's (and silences'): a label the incident lacks reads as "",
    a regular expression matches the whole value."""

    label: str
    op: MatchOp
    value: str

    def holds(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NE:
            return value != self.value
        found = _pattern(self.value).fullmatch(value) is not None
        return found if self.op is MatchOp.RE else not found


@functools.lru_cache(maxsize=1_024)
def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(value)


def regex_problem(value: str) -> str | None:
    """Why `value` is no regular expression (Python's `re`), or None."""
    try:
        _pattern(value)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a regular expression: {exc}"
    return None


@dataclass(frozen=True)
class Rule:
    policy_id: str
    service_name: str | None = None
    severities: frozenset[str] = frozenset()
    # Equality on each label (a label the incident lacks never equals), and matchers.
    labels: Mapping[str, str] = field(default_factory=dict)
    matchers: tuple[LabelMatcher, ...] = ()

    def matches(self, service_name: str, severity: str, labels: Mapping[str, str]) -> bool:
        return (
            (self.service_name is None or self.service_name == service_name)
            and (not self.severities or severity in self.severities)
            and all(labels.get(k) == v for k, v in self.labels.items())
            and all(m.holds(labels) for m in self.matchers)
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
