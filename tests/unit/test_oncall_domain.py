"""oncall's rules that the handlers and the notifier ask before they write: who may make and remove an
override and how long one lasts, what a contact method's address is, how a stored policy reads, which
routing matcher cannot be used, and what a notification attempt leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.commands import Caller
from contracts.events import Role
from contracts.oncall import ChannelKind, RuleSpec
from oncall.domain import (
    Attempted,
    attempted,
    contact_address,
    matcher_problem,
    may_delete_override,
    may_override,
    override_span_problem,
    policy_of,
)
from oncall.escalation import Target, TargetKind

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def caller(role: Role, user_id: str = "ann") -> Caller:
    return Caller(tenant_id="t", user_id=user_id, role=role)


def test_admins_override_anyone_responders_only_themselves_viewers_nobody() -> None:
    assert may_override(caller(Role.ADMIN), "bob")
    assert may_override(caller(Role.RESPONDER), "ann")
    assert not may_override(caller(Role.RESPONDER), "bob")
    assert not may_override(caller(Role.VIEWER), "ann")
    # Removing: an admin any; a responder one for them or made by them.
    assert may_delete_override(caller(Role.ADMIN), "bob", "cat")
    assert may_delete_override(caller(Role.RESPONDER), "ann", "cat")
    assert may_delete_override(caller(Role.RESPONDER), "bob", "ann")
    assert not may_delete_override(caller(Role.RESPONDER), "bob", "cat")
    assert not may_delete_override(caller(Role.VIEWER), "ann", "ann")


def test_an_override_ends_after_it_starts_and_lasts_at_most_366_days() -> None:
    assert override_span_problem(T0, T0 + timedelta(hours=1)) is None
    assert override_span_problem(T0, T0 + timedelta(days=366)) is None
    assert override_span_problem(T0, T0) == ("an override ends after it starts", "must be after start")
    assert override_span_problem(T0, T0 - timedelta(minutes=1)) is not None
    too_long = override_span_problem(T0, T0 + timedelta(days=366, seconds=1))
    assert too_long == ("an override lasts at most 366 days", "at most 366 days after start")


def test_a_contact_address_is_one_of_its_kind() -> None:
    assert contact_address(ChannelKind.EMAIL, "Ann@Example.COM") == "Ann@example.com"
    with pytest.raises(ValueError, match="not an email address"):
        contact_address(ChannelKind.EMAIL, "ann@")
    assert contact_address(ChannelKind.WEBHOOK, "https://sms.example.com/p") == "https://sms.example.com/p"
    with pytest.raises(ValueError, match="http"):
        contact_address(ChannelKind.WEBHOOK, "ftp://sms.example.com/p")
    assert contact_address(ChannelKind.SLACK, "U0123ABCD") == "U0123ABCD"


def test_a_stored_policy_reads_as_the_engine_takes_it() -> None:
    stored = {
        "steps": [
            {"targets": [{"kind": "user", "id": "ann"}], "wait_minutes": 0.5},
            {"targets": [{"kind": "schedule", "id": "s1"}, {"kind": "team", "id": "t1"}]},
        ],
        "repeat": 2,
    }
    policy = policy_of(stored)
    assert policy.repeat == 2
    assert [s.wait for s in policy.steps] == [timedelta(seconds=30), timedelta(minutes=5)]
    assert policy.steps[1].targets == (Target(TargetKind.SCHEDULE, "s1"), Target(TargetKind.TEAM, "t1"))
    # An escalation's placeholder copy (no repeat stored) repeats nothing.
    assert policy_of({"steps": stored["steps"]}).repeat == 0


def test_the_first_unusable_regular_expression_is_named_where_it_is() -> None:
    policy_id = "0190f5a0-0000-7000-8000-00000000000a"
    fine = RuleSpec.model_validate(
        {"policy_id": policy_id, "matchers": [{"label": "env", "op": "=", "value": "("}]}
    )
    bad = RuleSpec.model_validate(
        {
            "policy_id": policy_id,
            "matchers": [{"label": "a", "op": "=~", "value": "x"}, {"label": "b", "op": "!~", "value": "("}],
        }
    )
    assert matcher_problem([fine]) is None  # `=` compares, it does not compile
    problem = matcher_problem([fine, bad])
    assert problem is not None and problem[0] == ["body", "rules", 1, "matchers", 1, "value"]


def test_an_attempt_sends_fails_for_good_or_retries_after_a_doubling_wait() -> None:
    assert attempted(True, 1, 3, T0) == Attempted("sent")
    assert attempted(True, 3, 3, T0).final
    retry = attempted(False, 2, 3, T0)
    assert not retry.final and retry.retry_at == T0 + timedelta(seconds=4)
    assert attempted(False, 3, 3, T0) == Attempted("failed")
    assert attempted(False, 3, 3, T0).final
