"""When a trigger generates at once, waits for the coalescing window, or waits for another worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_worker.domain import CLAIM_POLL_SECONDS, Decision, GenerationState, decide

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=2)
MAX_WAIT = timedelta(seconds=60)
NOTHING_WAITED = timedelta(0)


def test_the_first_trigger_generates_at_once() -> None:
    assert decide(GenerationState(None, None), NOW, WINDOW, NOTHING_WAITED, MAX_WAIT) == Decision(True)


def test_a_trigger_after_the_window_generates_at_once() -> None:
    state = GenerationState(NOW - timedelta(seconds=2), None)
    assert decide(state, NOW, WINDOW, NOTHING_WAITED, MAX_WAIT).generate
    state = GenerationState(NOW - timedelta(minutes=5), NOW - timedelta(seconds=1))  # an expired lease
    assert decide(state, NOW, WINDOW, NOTHING_WAITED, MAX_WAIT).generate


def test_a_trigger_inside_the_window_waits_until_it_closes() -> None:
    state = GenerationState(NOW - timedelta(seconds=0.5), None)
    decision = decide(state, NOW, WINDOW, NOTHING_WAITED, MAX_WAIT)
    assert decision == Decision(False, 1.5)


def test_a_trigger_waits_while_another_worker_generates_polling() -> None:
    state = GenerationState(None, NOW + timedelta(seconds=100))
    assert decide(state, NOW, WINDOW, NOTHING_WAITED, MAX_WAIT) == Decision(False, CLAIM_POLL_SECONDS)
    # Never past the lease's end.
    state = GenerationState(None, NOW + timedelta(seconds=0.1))
    assert decide(state, NOW, WINDOW, NOTHING_WAITED, MAX_WAIT) == Decision(False, 0.1)


def test_after_the_longest_wait_it_generates_whatever_the_state() -> None:
    busy = GenerationState(NOW - timedelta(seconds=0.1), NOW + timedelta(seconds=100))
    assert not decide(busy, NOW, WINDOW, MAX_WAIT - timedelta(seconds=1), MAX_WAIT).generate
    assert decide(busy, NOW, WINDOW, MAX_WAIT, MAX_WAIT).generate


def test_a_zero_window_never_waits_for_it() -> None:
    state = GenerationState(NOW, None)
    assert decide(state, NOW, timedelta(0), NOTHING_WAITED, MAX_WAIT).generate
