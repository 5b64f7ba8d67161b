"""A parallel rebuild is only right if its parts split the stream without splitting a fold."""

from __future__ import annotations

from contracts.events import EVENT_TYPES
from contracts.events import INCIDENT_EVENT_TYPES as INCIDENT_TYPES
from contracts.subjects import event_subject
from gateway.auth.identity import IDENTITY_TYPES
from gateway.projection.rebuild import partitions


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, `>` the rest."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for n, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > n
        if n >= len(tokens) or token not in ("*", tokens[n]):
            return False
    return len(wanted) == len(tokens)


def part_of(event_type: str) -> list[int]:
    subject = event_subject("t_1", event_type)
    return [n for n, part in enumerate(partitions()) if any(matches(f, subject) for f in part)]


def test_every_event_type_is_in_exactly_one_part() -> None:
    for event_type, _version in EVENT_TYPES:
        assert len(part_of(event_type)) == 1, event_type


def test_each_fold_reads_all_its_events_in_one_part() -> None:
    assert len({part_of(t)[0] for t in INCIDENT_TYPES}) == 1
    assert len({part_of(t)[0] for t in IDENTITY_TYPES}) == 1


def test_the_matcher_itself() -> None:
    assert matches("events.*.incident.>", "events.t_1.incident.created")
    assert not matches("events.*.incident.>", "events.t_1.incidents.created")
    assert not matches("events.*.user.>", "events.t_1.user")
