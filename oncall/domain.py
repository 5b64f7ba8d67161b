"""oncall's pure rules beside the schedule itself (oncall/schedule.py): turning what the API states
into what the rules compute with."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import TypeAdapter

from contracts.commands import Caller, Email
from contracts.events import Role
from contracts.oncall import (
    WEEKDAYS,
    ChannelKind,
    LayerSpec,
    PolicyWarning,
    RestrictionSpec,
    RuleSpec,
    StepSpec,
    TargetKind,
    TargetSpec,
    TeamWarning,
    WarningCode,
)
from contracts.slack import PAGE_ACKNOWLEDGE, PAGE_OPEN
from oncall.escalation import LabelMatcher, MatchOp, Policy, Rule, Step, Target, regex_problem
from oncall.escalation import TargetKind as EngineTarget
from oncall.schedule import Layer, Override, RotationType, Schedule, Window


def clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def window_of(spec: RestrictionSpec) -> Window:
    return Window(frozenset(WEEKDAYS.index(d) for d in spec.days), clock(spec.start), clock(spec.end))


def layer_of(spec: LayerSpec) -> Layer:
    return Layer(
        participants=tuple(spec.participants),
        rotation=RotationType(spec.rotation.value),
        start_date=spec.start_date,
        handoff_time=clock(spec.handoff_time),
        time_zone=spec.time_zone,
        length=spec.length,
        restrictions=tuple(window_of(r) for r in spec.restrictions),
    )


@dataclass(frozen=True)
class StoredOverride:
    id: str
    user_id: str
    start: datetime
    end: datetime


def schedule_of(layers: Sequence[LayerSpec], overrides: Sequence[StoredOverride]) -> Schedule:
    """The schedule the rules compute with; overrides in creation order (the later wins)."""
    return Schedule(
        tuple(layer_of(spec) for spec in layers),
        tuple(Override(o.user_id, o.start, o.end) for o in overrides),
    )


def stored_overrides(rows: Sequence[Any]) -> list[StoredOverride]:
    """Override rows (oncall.overrides) as the rules take them."""
    return [StoredOverride(str(r.id), r.user_id, r.start_at, r.end_at) for r in rows]


def layers_of(row: Any) -> list[LayerSpec]:
    """A schedule row's layers (stored as the API states them)."""
    return [LayerSpec.model_validate(layer) for layer in row.layers]


# ---- overrides: who may make and remove them, and how long one lasts

# An override longer than this is a layer in disguise (and would make shift lists unbounded).
MAX_OVERRIDE = timedelta(days=366)


def may_override(caller: Caller, user_id: str) -> bool:
    """Admins put anyone on call; a responder only themselves (covering for someone)."""
    return caller.role.at_least(Role.ADMIN) or (
        caller.role.at_least(Role.RESPONDER) and user_id == caller.user_id
    )


def may_delete_override(caller: Caller, user_id: str, created_by: str) -> bool:
    """Admins delete any; a responder one that involves them (for them, or made by them)."""
    involved = caller.user_id in (user_id, created_by)
    return caller.role.at_least(Role.ADMIN) or (caller.role.at_least(Role.RESPONDER) and involved)


def override_span_problem(start: datetime, end: datetime) -> tuple[str, str] | None:
    """What is wrong with an override's span (the message, and what to say of its `end`); None
    when it is fine."""
    if end <= start:
        return "an override ends after it starts", "must be after start"
    if end - start > MAX_OVERRIDE:
        return "an override lasts at most 366 days", "at most 366 days after start"
    return None


# ---- contact methods

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


def contact_address(kind: ChannelKind, address: str) -> str:
    """The address a contact method keeps (an email address normalised); ValueError saying why it
    is not one of its kind."""
    if kind is ChannelKind.EMAIL:
        try:
            return _EMAIL.validate_python(address)
        except ValueError:
            raise ValueError("not an email address") from None
    if kind is ChannelKind.WEBHOOK and not address.startswith(("https://", "http://")):
        raise ValueError("a webhook is an http(s) URL")
    return address


# ---- policies and routing as stored, as the engine takes them


def policy_of(stored: Mapping[str, Any]) -> Policy:
    """A policy as stored (its `steps` and `repeat`: a policy row's, or an escalation's copy)."""
    steps = [StepSpec.model_validate(s) for s in stored["steps"]]
    return Policy(
        tuple(
            Step(
                tuple(Target(EngineTarget(t.kind.value), t.id) for t in step.targets),
                timedelta(minutes=step.wait_minutes),
            )
            for step in steps
        ),
        int(stored.get("repeat", 0)),
    )


def rules_of(row: Any) -> tuple[list[Rule], str | None]:
    """A tenant's routing row (None: never saved) as rules in order and the default policy id."""
    if row is None:
        return [], None
    rules = [RuleSpec.model_validate(r) for r in row.rules]
    return (
        [
            Rule(
                r.policy_id,
                r.service_name,
                frozenset(s.value for s in r.severities),
                dict(r.labels),
                tuple(LabelMatcher(m.label, MatchOp(m.op), m.value) for m in r.matchers),
            )
            for r in rules
        ],
        str(row.default_policy_id) if row.default_policy_id else None,
    )


def matcher_problem(rules: Sequence[RuleSpec]) -> tuple[list[str | int], str] | None:
    """The first regular expression among the rules' matchers that cannot be used: where, and why."""
    for n, rule in enumerate(rules):
        for m, matcher in enumerate(rule.matchers):
            problem = regex_problem(matcher.value) if matcher.op in ("=~", "!~") else None
            if problem is not None:
                return ["body", "rules", n, "matchers", m, "value"], problem
    return None


# ---- notifications: what an attempt's outcome leaves


@dataclass(frozen=True)
class Attempted:
    """`status` after an attempt (`pending`: tried again at `retry_at`); `final` when no attempt
    follows (the `page.notified` event is due)."""

    status: Literal["sent", "failed", "pending"]
    retry_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status != "pending"


def attempted(delivered: bool, attempts: int, max_attempts: int, now: datetime) -> Attempted:
    """After attempt number `attempts`: sent, failed for good, or again after 2^attempts seconds."""
    if delivered:
        return Attempted("sent")
    if attempts >= max_attempts:
        return Attempted("failed")
    return Attempted("pending", now + timedelta(seconds=2**attempts))


# ---- acknowledge links: `<expires>.<hex HMAC-SHA256 of "<page id>.<expires>">`


def ack_token(key: bytes, page_id: str, expires: int) -> str:
    mac = hmac.new(key, f"{page_id}.{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


class TokenProblem(StrEnum):
    INVALID = "the link is not valid"
    EXPIRED = "the link has expired"


def token_problem(key: bytes, page_id: str, token: str, now: int) -> TokenProblem | None:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return TokenProblem.INVALID
    expected = ack_token(key, page_id, int(expires_text))
    if not hmac.compare_digest(expected, f"{expires_text}.{mac}"):
        return TokenProblem.INVALID
    if int(expires_text) <= now:
        return TokenProblem.EXPIRED
    return None


# ---- what a notification says


@dataclass(frozen=True)
class PageFacts:
    incident_id: str
    key: str
    title: str
    service_name: str
    severity: str
    incident_url: str
    ack_url: str


def subject(facts: PageFacts) -> str:
    return f"[{facts.severity.upper()}] {facts.key} {facts.title} ({facts.service_name})"


def text_body(facts: PageFacts) -> str:
    return (
        f"You are paged for {facts.key}: {facts.title}\n"
        f"Service: {facts.service_name}, severity: {facts.severity}\n\n"
        f"Acknowledge: {facts.ack_url}\n"
        f"Open the incident: {facts.incident_url}\n"
    )


def slack_blocks(facts: PageFacts, page_id: str | None = None) -> list[dict[str, object]]:
    """The page as a Slack DM. With `page_id` (the on-call Slack app has a signing secret) Acknowledge
    is an interactive button (handled by the Interactivity request URL); otherwise it opens the
    signed acknowledge link."""
    acknowledge: dict[str, object] = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Acknowledge"},
        "style": "primary",
    }
    open_button: dict[str, object] = {"type": "button", "text": {"type": "plain_text", "text": "Open"}}
    if page_id is not None:
        acknowledge |= {"action_id": PAGE_ACKNOWLEDGE, "value": page_id}
        # Slack posts a click on a link button to the app too: answered, no effect.
        open_button |= {"action_id": PAGE_OPEN, "value": page_id}
    else:
        acknowledge["url"] = facts.ack_url
    open_button["url"] = facts.incident_url
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Paged: {subject(facts)}*"}},
        {"type": "actions", "elements": [acknowledge, open_button]},
    ]


# ---- iCalendar


@dataclass(frozen=True)
class CalendarShift:
    uid: str
    summary: str
    start: datetime
    end: datetime


def calendar(name: str, shifts: Sequence[CalendarShift], now: datetime) -> str:
    """An iCalendar (RFC 5545) document of these shifts, in UTC."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//SRE Copilot//on-call//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for shift in shifts:
        event = Event()
        event.add("uid", shift.uid)
        event.add("summary", shift.summary)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("dtstamp", now)
        cal.add_component(event)
    return cal.to_ical().decode()


# ---- warnings: what became untrue after a policy or a team was saved


@dataclass(frozen=True)
class Referenced:
    """What a policy's or a team's targets name, as it is now: teams (members, schedule id),
    schedules (their layers' participants), and which of those people are deactivated. A team or
    schedule absent here no longer exists."""

    teams: Mapping[str, tuple[list[str], str | None]] = field(default_factory=dict)
    schedules: Mapping[str, list[str]] = field(default_factory=dict)
    deactivated: frozenset[str] = frozenset()


def _unique(users: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(users))


def team_warnings(members: Sequence[str], schedule_id: str | None, known: Referenced) -> list[TeamWarning]:
    found = [
        TeamWarning(
            code=WarningCode.DEACTIVATED,
            message=f"member {user} is deactivated and is not paged",
            user_id=user,
        )
        for user in _unique(members)
        if user in known.deactivated
    ]
    if schedule_id is None:
        return found
    if schedule_id not in known.schedules:
        found.append(
            TeamWarning(
                code=WarningCode.MISSING,
                message=f"schedule {schedule_id} no longer exists: every member is paged",
            )
        )
        return found
    found += [
        TeamWarning(
            code=WarningCode.DEACTIVATED,
            message=f"{user}, on the team's schedule, is deactivated and is not paged",
            user_id=user,
        )
        for user in _unique(known.schedules[schedule_id])
        if user in known.deactivated and user not in members
    ]
    return found


def _target_warnings(target: TargetSpec, known: Referenced) -> list[tuple[WarningCode, str, str | None]]:
    if target.kind is TargetKind.USER:
        if target.id in known.deactivated:
            return [(WarningCode.DEACTIVATED, f"{target.id} is deactivated and is not paged", target.id)]
        return []
    if target.kind is TargetKind.SCHEDULE:
        if target.id not in known.schedules:
            return [(WarningCode.MISSING, f"schedule {target.id} no longer exists: it pages nobody", None)]
        return [
            (
                WarningCode.DEACTIVATED,
                f"{user}, on schedule {target.id}, is deactivated and is not paged",
                user,
            )
            for user in _unique(known.schedules[target.id])
            if user in known.deactivated
        ]
    team = known.teams.get(target.id)
    if team is None:
        return [(WarningCode.MISSING, f"team {target.id} no longer exists: it pages nobody", None)]
    return [(w.code, f"team {target.id}: {w.message}", w.user_id) for w in team_warnings(*team, known)]


def policy_warnings(steps: Sequence[StepSpec], known: Referenced) -> list[PolicyWarning]:
    """Each target of each step that cannot page whom it names: a deactivated user, a deleted
    schedule or team, a deactivated participant of a schedule or member of a team."""
    return [
        PolicyWarning(code=code, message=message, step=n, target=target, user_id=user)
        for n, step in enumerate(steps)
        for target in step.targets
        for code, message, user in _target_warnings(target, known)
    ]
