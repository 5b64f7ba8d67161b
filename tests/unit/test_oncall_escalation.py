"""The escalation engine with a controllable clock: steps in order, waits, repeats, stops, late looks,
and routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.oncall import RuleSpec, StepSpec, TargetSpec, WarningCode
from oncall.domain import Referenced, policy_warnings, rules_of, team_warnings
from oncall.escalation import (
    Escalation,
    LabelMatcher,
    MatchOp,
    Policy,
    Rule,
    Step,
    Target,
    TargetKind,
    Team,
    decide,
    people,
    regex_problem,
    route,
)

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
ANN, BOB = Target(TargetKind.USER, "ann"), Target(TargetKind.USER, "bob")
PRIMARY = Target(TargetKind.SCHEDULE, "primary")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def run(policy: Policy, escalation: Escalation, now: datetime) -> tuple[Escalation, list[tuple[int, int]]]:
    """One look, as the timer loop does it: fire what is due and record it."""
    decision = decide(policy, escalation, now)
    fired = [(d.round, d.step) for d in decision.due]
    return Escalation(escalation.started_at, escalation.stopped, escalation.fired | set(fired)), fired


def test_steps_fire_in_order_after_their_waits_and_once_each() -> None:
    policy = Policy((Step((ANN,), timedelta(minutes=5)), Step((BOB,), timedelta(minutes=10))))
    clock, state = Clock(), Escalation(T0)
    state, fired = run(policy, state, clock.now)
    assert fired == [(0, 0)]
    assert decide(policy, state, clock.now).next_at == T0 + timedelta(minutes=5)
    state, fired = run(policy, state, clock.advance(minutes=4, seconds=59))
    assert fired == []
    state, fired = run(policy, state, clock.advance(seconds=1))
    assert fired == [(0, 1)]
    state, fired = run(policy, state, clock.advance(minutes=1))
    assert fired == []  # looking again changes nothing
    assert decide(policy, state, clock.advance(hours=5)).next_at is None


def test_a_policy_repeats_then_reaches_its_last_step() -> None:
    policy = Policy((Step((ANN,), timedelta(minutes=1)), Step((BOB,), timedelta(minutes=1))), repeat=1)
    state = Escalation(T0)
    decision = decide(policy, state, T0 + timedelta(minutes=3))
    assert [(d.round, d.step, d.last) for d in decision.due] == [
        (0, 0, False),
        (0, 1, False),
        (1, 0, False),
        (1, 1, True),
    ]
    assert decision.next_at is None


def test_an_acknowledged_escalation_fires_nothing_more() -> None:
    policy = Policy((Step((ANN,), timedelta(minutes=5)), Step((BOB,), timedelta(minutes=5))))
    state, _ = run(policy, Escalation(T0), T0)
    stopped = Escalation(T0, stopped=True, fired=state.fired)
    assert decide(policy, stopped, T0 + timedelta(hours=1)) == decide(policy, stopped, T0)
    assert decide(policy, stopped, T0 + timedelta(hours=1)).due == []


def test_steps_missed_while_down_fire_late_and_in_order() -> None:
    policy = Policy(tuple(Step((ANN,), timedelta(minutes=2)) for _ in range(3)))
    state, _ = run(policy, Escalation(T0), T0)
    # Down for five minutes: steps 1 (due at +2) and 2 (due at +4) both fire at the next look.
    _, fired = run(policy, state, T0 + timedelta(minutes=5))
    assert fired == [(0, 1), (0, 2)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=5),
    st.integers(0, 3),
    st.lists(st.integers(0, 200), min_size=1, max_size=30),
)
def test_whatever_the_looks_every_step_fires_exactly_once_and_never_early(
    waits: list[int], repeat: int, looks: list[int]
) -> None:
    policy = Policy(tuple(Step((ANN,), timedelta(minutes=w)) for w in waits), repeat)
    state, seen = Escalation(T0), []
    for minute in sorted(looks):
        now = T0 + timedelta(minutes=minute)
        decision = decide(policy, state, now)
        assert all(d.due_at <= now for d in decision.due)
        seen += [(d.round, d.step) for d in decision.due]
        state = Escalation(T0, fired=state.fired | {(d.round, d.step) for d in decision.due})
    assert len(seen) == len(set(seen))
    last = T0 + timedelta(minutes=max(looks))
    total = sum(waits) * (repeat + 1) - waits[-1]
    if last >= T0 + timedelta(minutes=total):
        assert len(seen) == len(waits) * (repeat + 1)


def test_people_are_users_and_whoever_a_schedule_has_on_call_each_once() -> None:
    on_call = {"primary": "bob"}.get
    assert people((ANN, PRIMARY, BOB), on_call) == ["ann", "bob"]
    assert people((Target(TargetKind.SCHEDULE, "empty"),), on_call) == []


def test_a_team_pages_its_schedules_on_call_else_every_member() -> None:
    on_call = {"primary": "cat"}.get
    teams = {
        "db": Team(("ann", "bob")),
        "web": Team(("ann", "bob"), schedule_id="primary"),
        "gap": Team(("bob", "dan"), schedule_id="empty"),  # nobody on call: every member
    }
    db, web, gap = (Target(TargetKind.TEAM, t) for t in ("db", "web", "gap"))
    assert people((db,), on_call, teams) == ["ann", "bob"]
    assert people((web,), on_call, teams) == ["cat"]
    assert people((gap, ANN, db), on_call, teams) == ["bob", "dan", "ann"]
    assert people((Target(TargetKind.TEAM, "deleted"), BOB), on_call, teams) == ["bob"]


def test_policy_problems_are_named() -> None:
    assert Policy(()).check() == [(["steps"], "a policy needs at least one step")]
    assert Policy((Step((), timedelta(0)),)).check() == [
        (["steps", 0, "targets"], "a step needs at least one target")
    ]


def test_routing_takes_the_first_matching_rule_else_the_default() -> None:
    rules = [
        Rule("db", service_name="postgres", severities=frozenset({"critical"})),
        Rule("team-a", labels={"team": "a"}),
        Rule("payments", service_name="payment-api"),
    ]
    assert route(rules, "default", "postgres", "critical") == "db"
    assert route(rules, "default", "postgres", "low") == "default"
    assert route(rules, "default", "payment-api", "low", {"team": "a"}) == "team-a"
    assert route(rules, "default", "payment-api", "low") == "payments"
    assert route(rules, None, "web", "low") is None


def test_routing_matches_labels_by_equality_and_by_matchers() -> None:
    eu = Rule("eu", labels={"cluster": "prod-eu"})
    prod = Rule("prod", matchers=(LabelMatcher("cluster", MatchOp.RE, "prod-.*"),))
    not_canary = Rule(
        "stable",
        service_name="api",
        matchers=(LabelMatcher("track", MatchOp.NE, "canary"), LabelMatcher("team", MatchOp.NRE, "a|b")),
    )
    rules = [eu, prod, not_canary]
    assert route(rules, "default", "api", "low", {"cluster": "prod-eu"}) == "eu"
    assert route(rules, "default", "api", "low", {"cluster": "prod-us"}) == "prod"
    # A regular expression matches the whole value, as Alertmanager's.
    assert route(rules, "default", "web", "low", {"cluster": "xprod-us"}) == "default"
    # A label the incident lacks reads as "": `!=` and `!~` hold, equality does not.
    assert route(rules, "default", "api", "low") == "stable"
    assert route(rules, "default", "api", "low", {"track": "canary"}) == "default"
    assert route(rules, "default", "api", "low", {"team": "b"}) == "default"
    assert route([eu], "default", "api", "low", {"cluster": ""}) == "default"
    assert regex_problem("prod-(eu|us)") is None
    assert regex_problem("prod-(") is not None


def test_stored_rules_keep_their_labels_and_matchers() -> None:
    spec = RuleSpec.model_validate(
        {
            "policy_id": "0190f5a0-0000-7000-8000-000000000001",
            "labels": {"cluster": "prod-eu"},
            "matchers": [{"label": "env", "op": "=~", "value": "prod|staging"}],
        }
    )

    class Row:
        rules = [spec.model_dump(mode="json")]
        default_policy_id = None

    (rule,), default = rules_of(Row())
    assert default is None and rule.labels == {"cluster": "prod-eu"}
    assert rule.matches("api", "low", {"cluster": "prod-eu", "env": "staging"})
    assert not rule.matches("api", "low", {"cluster": "prod-eu", "env": "dev"})


def test_warnings_name_what_became_untrue_after_saving() -> None:
    def step(*targets: tuple[str, str]) -> StepSpec:
        return StepSpec(targets=[TargetSpec(kind=k, id=i) for k, i in targets])  # type: ignore[arg-type]

    known = Referenced(
        teams={"t1": (["ann", "gone"], "s1"), "t2": (["bob"], "deleted-schedule")},
        schedules={"s1": ["cat", "left"]},
        deactivated=frozenset({"gone", "left", "eve"}),
    )
    steps = [
        step(("user", "ann"), ("user", "eve")),
        step(("schedule", "s1"), ("schedule", "deleted")),
        step(("team", "t1"), ("team", "t2"), ("team", "deleted")),
    ]
    found = [(w.step, w.target.id, w.code, w.user_id) for w in policy_warnings(steps, known)]
    assert found == [
        (0, "eve", WarningCode.DEACTIVATED, "eve"),
        (1, "s1", WarningCode.DEACTIVATED, "left"),
        (1, "deleted", WarningCode.MISSING, None),
        (2, "t1", WarningCode.DEACTIVATED, "gone"),
        (2, "t1", WarningCode.DEACTIVATED, "left"),
        (2, "t2", WarningCode.MISSING, None),
        (2, "deleted", WarningCode.MISSING, None),
    ]
    assert (
        policy_warnings([step(("user", "ann"), ("schedule", "s1"))], Referenced(schedules={"s1": ["x"]}))
        == []
    )
    assert [w.user_id for w in team_warnings(["ann", "gone"], None, known)] == ["gone"]


def test_acknowledge_tokens_are_signed_per_page_and_expire() -> None:
    from oncall.domain import TokenProblem, ack_token, token_problem

    key, page = b"k" * 32, "0190f5a0-0000-7000-8000-000000000001"
    token = ack_token(key, page, 2_000)
    assert token_problem(key, page, token, now=1_999) is None
    assert token_problem(key, page, token, now=2_000) is TokenProblem.EXPIRED
    assert token_problem(key, "0190f5a0-0000-7000-8000-000000000002", token, now=1) is TokenProblem.INVALID
    assert token_problem(b"other" * 8, page, token, now=1) is TokenProblem.INVALID
    # A later expiry cannot be written in: the expiry is signed.
    forged = "9999999999." + token.split(".", 1)[1]
    assert token_problem(key, page, forged, now=1) is TokenProblem.INVALID
    assert token_problem(key, page, "garbage", now=1) is TokenProblem.INVALID
