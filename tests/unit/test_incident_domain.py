"""The incident lifecycle: which moves are allowed, which are refused and how a refusal explains itself."""

from __future__ import annotations

import itertools

import pytest

from contracts.events import IncidentState
from incidents.domain import TransitionRefused, check_transition, incident_key

D = IncidentState.DETECTED
A = IncidentState.ACKNOWLEDGED
I = IncidentState.INVESTIGATING  # noqa: E741
R = IncidentState.RESOLVED

# Spelled out here on purpose, independently of incidents.domain.ALLOWED_MOVES.
EXPECTED_ALLOWED: dict[IncidentState, list[IncidentState]] = {
    D: [A, I, R],
    A: [I, R],
    I: [R],
    R: [I],
}
ALLOWED_PAIRS = [(current, to) for current, targets in EXPECTED_ALLOWED.items() for to in targets]
REFUSED_PAIRS = [
    (current, to)
    for current, to in itertools.product(IncidentState, repeat=2)
    if to not in EXPECTED_ALLOWED[current]
]


def _id(pair: tuple[IncidentState, IncidentState]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_the_tables_cover_every_pair_of_states() -> None:
    assert len(ALLOWED_PAIRS) == 7
    assert len(REFUSED_PAIRS) == 16 - 7
    # Staying in the same state is never a move.
    for state in IncidentState:
        assert (state, state) in REFUSED_PAIRS


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=_id)
def test_allowed_moves_pass(pair: tuple[IncidentState, IncidentState]) -> None:
    current, requested = pair
    check_transition(current, requested)  # raises on a refused move


@pytest.mark.parametrize("pair", REFUSED_PAIRS, ids=_id)
def test_every_other_move_is_refused(pair: tuple[IncidentState, IncidentState]) -> None:
    current, requested = pair
    with pytest.raises(TransitionRefused) as caught:
        check_transition(current, requested)
    refused = caught.value
    assert refused.current is current
    assert refused.requested is requested
    assert refused.allowed == EXPECTED_ALLOWED[current]
    message = str(refused)
    assert current.value in message
    assert requested.value in message
    for allowed in EXPECTED_ALLOWED[current]:
        assert allowed.value in message


@pytest.mark.parametrize("pair", REFUSED_PAIRS, ids=_id)
def test_refusal_message_lists_allowed_moves_in_order(pair: tuple[IncidentState, IncidentState]) -> None:
    current, requested = pair
    with pytest.raises(TransitionRefused) as caught:
        check_transition(current, requested)
    expected_tail = "allowed: " + ", ".join(s.value for s in EXPECTED_ALLOWED[current])
    assert str(caught.value) == f"cannot move from {current.value} to {requested.value}; {expected_tail}"


def test_transition_refused_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot move from investigating to acknowledged"):
        check_transition(I, A)


def test_reopening_a_resolved_incident_goes_to_investigating_only() -> None:
    check_transition(R, I)
    for target in (D, A, R):
        with pytest.raises(TransitionRefused) as caught:
            check_transition(R, target)
        assert caught.value.allowed == [I]


def test_no_move_back_to_detected() -> None:
    for state in IncidentState:
        with pytest.raises(TransitionRefused):
            check_transition(state, D)


def test_allowed_list_is_a_copy_not_the_rule_table() -> None:
    with pytest.raises(TransitionRefused) as first:
        check_transition(I, D)
    first.value.allowed.append(D)
    # Mutating one refusal's list must not widen the rules.
    with pytest.raises(TransitionRefused) as second:
        check_transition(I, D)
    assert second.value.allowed == [R]


@pytest.mark.parametrize(("number", "key"), [(1, "INC-1"), (42, "INC-42"), (100000, "INC-100000")])
def test_incident_key(number: int, key: str) -> None:
    assert incident_key(number) == key


def test_incident_keys_are_distinct_per_number() -> None:
    keys = {incident_key(n) for n in range(1, 500)}
    assert len(keys) == 499
