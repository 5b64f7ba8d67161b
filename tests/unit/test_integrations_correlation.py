"""Correlation rules, the pure decision: which open incident a new group's alert joins (window edges,
missing labels, sources, several rules in order), and the preview's clusters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.integrations import CorrelationRuleSpec, CorrelationSource
from integrations.domain import (
    AlertInstance,
    Candidate,
    ReceivedAlert,
    Rule,
    candidate_span,
    correlate,
    distinct_instances,
    incidents_after,
    preview_clusters,
    source_of_group,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
AM, PD, JSON = CorrelationSource.ALERTMANAGER, CorrelationSource.PAGERDUTY, CorrelationSource.JSON
INCIDENT_A = uuid.UUID("01900000-0000-7000-8000-00000000000a")
INCIDENT_B = uuid.UUID("01900000-0000-7000-8000-00000000000b")


def rule(
    labels: tuple[str, ...] = ("service", "cluster"),
    minutes: int = 10,
    sources: frozenset[CorrelationSource] = frozenset(),
    name: str = "svc+cluster",
    enabled: bool = True,
) -> Rule:
    return Rule(name, name, labels, timedelta(minutes=minutes), sources, enabled)


def alert(fingerprint: str = "new", starts: datetime = T0, **labels: str) -> AlertInstance:
    labels = labels or {"service": "checkout", "cluster": "eu-1"}
    return AlertInstance(fingerprint, "firing", "NewAlert", dict(labels), {}, starts, None, None)


def candidate(
    fingerprint: str = "old",
    starts: datetime = T0,
    group: str = "g-other",
    source: CorrelationSource = AM,
    incident: uuid.UUID = INCIDENT_A,
    **labels: str,
) -> Candidate:
    labels = labels or {"service": "checkout", "cluster": "eu-1", "pod": "x"}
    return Candidate(fingerprint, group, source, "OldAlert", labels, starts, incident)


def test_an_alert_sharing_every_label_within_the_window_joins_the_open_incident() -> None:
    found = correlate([rule()], [alert()], PD, "g-new", [candidate()])
    assert found is not None
    assert found.incident_id == INCIDENT_A and found.labels == {"service": "checkout", "cluster": "eu-1"}
    assert found.matched.fingerprint == "old" and found.source is PD
    assert "svc+cluster" in found.reason and "service=checkout, cluster=eu-1" in found.reason
    assert "OldAlert (alertmanager)" in found.reason and "10 min" in found.reason


@pytest.mark.parametrize(
    ("offset", "joins"),
    [
        (timedelta(minutes=10), True),  # the edge is inside
        (-timedelta(minutes=10), True),  # either side: the earlier one may be processed later
        (timedelta(minutes=10, microseconds=1), False),
        (-timedelta(minutes=10, seconds=1), False),
        (timedelta(0), True),
    ],
)
def test_the_window_counts_from_either_start_edge_included(offset: timedelta, joins: bool) -> None:
    found = correlate([rule()], [alert(starts=T0 + offset)], AM, "g-new", [candidate()])
    assert (found is not None) is joins


def test_missing_or_empty_or_different_labels_correlate_nothing() -> None:
    for lacking_one in (alert(service="checkout"), alert(service="checkout", cluster=" ")):
        assert correlate([rule()], [lacking_one], AM, "g-new", [candidate()]) is None
    other = alert(service="checkout", cluster="us-1")
    assert correlate([rule()], [other], AM, "g-new", [candidate()]) is None
    # A candidate lacking the label matches nobody, even an alert lacking it too.
    lacking = candidate(service="checkout")
    assert correlate([rule()], [alert(service="checkout")], AM, "g-new", [lacking]) is None


def test_the_same_group_sources_and_disabled_rules_are_not_correlated() -> None:
    assert correlate([rule()], [alert()], AM, "g-other", [candidate()]) is None
    assert correlate([rule(enabled=False)], [alert()], AM, "g-new", [candidate()]) is None
    only_pd = rule(sources=frozenset({PD}))
    # The new alert's source is not the rule's, or the incident's alert's source is not.
    assert correlate([only_pd], [alert()], AM, "g-new", [candidate(source=PD)]) is None
    assert correlate([only_pd], [alert()], PD, "g-new", [candidate(source=AM)]) is None
    assert correlate([only_pd], [alert()], PD, "g-new", [candidate(source=PD)]) is not None


def test_rules_are_tried_in_order_and_the_first_that_finds_an_incident_decides() -> None:
    by_cluster = rule(("cluster",), name="cluster")
    by_service = rule(("service",), name="service")
    in_a = candidate("a", incident=INCIDENT_A, service="checkout", cluster="us-1")
    in_b = candidate("b", incident=INCIDENT_B, service="billing", cluster="eu-1")
    found = correlate([by_cluster, by_service], [alert()], AM, "g-new", [in_a, in_b])
    assert found is not None and found.rule.name == "cluster" and found.incident_id == INCIDENT_B
    found = correlate([by_service, by_cluster], [alert()], AM, "g-new", [in_a, in_b])
    assert found is not None and found.rule.name == "service" and found.incident_id == INCIDENT_A
    # A first rule that finds nothing leaves it to the next.
    nothing = rule(("team",), name="team")
    teamed = alert(team="x", service="checkout", cluster="c")
    found = correlate([nothing, by_service], [teamed], AM, "g", [in_a])
    assert found is not None and found.rule.name == "service"


def test_of_several_matches_the_closest_start_wins_whatever_the_order() -> None:
    far = candidate("far", starts=T0 - timedelta(minutes=8), incident=INCIDENT_A)
    near = candidate("near", starts=T0 + timedelta(minutes=2), incident=INCIDENT_B)
    for candidates in ([far, near], [near, far]):
        found = correlate([rule()], [alert()], AM, "g-new", candidates)
        assert found is not None and found.matched.fingerprint == "near"
    tie_a = candidate("a", incident=INCIDENT_A)
    tie_b = candidate("b", incident=INCIDENT_B)
    for candidates in ([tie_a, tie_b], [tie_b, tie_a]):
        found = correlate([rule()], [alert()], AM, "g-new", candidates)
        assert found is not None and found.incident_id == INCIDENT_B  # the newer incident


def test_any_alert_of_the_notification_may_correlate_it() -> None:
    alerts = [alert("x", service="other", cluster="eu-1"), alert("y")]
    found = correlate([rule()], alerts, AM, "g-new", [candidate()])
    assert found is not None and found.alert.fingerprint == "y"


def test_the_span_candidates_are_read_from_stays_within_datetimes_range() -> None:
    window = timedelta(minutes=10)
    assert candidate_span([T0, T0 + window], window) == (T0 - window, T0 + 2 * window)
    year_one = datetime(1, 1, 1, 0, 5, tzinfo=UTC)
    assert candidate_span([year_one], window) == (datetime.min.replace(tzinfo=UTC), year_one + window)
    far = datetime.max.replace(tzinfo=UTC) - timedelta(minutes=1)
    assert candidate_span([far], window)[1] == datetime.max.replace(tzinfo=UTC)


def test_groups_keys_tell_the_source() -> None:
    assert source_of_group("pagerduty:abc") is PD
    assert source_of_group("json:0190:key") is JSON
    assert source_of_group('{}:{alertname="X"}') is AM


def test_a_spec_reads_as_a_rule_and_refuses_what_it_cannot_mean() -> None:
    spec = CorrelationRuleSpec(name=" by cluster ", labels=["cluster"], window_minutes=15, sources=[PD])
    read = Rule.of("r1", spec)
    assert read.name == "by cluster" and read.window == timedelta(minutes=15) and read.sources == {PD}
    bads: list[dict[str, object]] = [
        {"labels": []},
        {"labels": ["a", "a"]},
        {"labels": ["has space"]},
        {"window_minutes": 0},
        {"window_minutes": 1_441},
        {"window_minutes": "5"},
        {"sources": ["pagerduty", "pagerduty"]},
        {"sources": ["nagios"]},
        {"enabled": "yes"},
    ]
    for bad in bads:
        with pytest.raises(ValidationError) as raised:
            CorrelationRuleSpec.model_validate({"name": "r", "labels": ["x"], "window_minutes": 5, **bad})
        assert raised.value.errors()[0]["loc"][0] == next(iter(bad))


def received(delivery: str, group: str, minutes: float, incident: str | None, **labels: str) -> ReceivedAlert:
    starts = T0 + timedelta(minutes=minutes)
    return ReceivedAlert(delivery, starts, group, alert(delivery, starts, **labels), incident)


def test_the_preview_clusters_alerts_of_several_groups_sharing_the_labels() -> None:
    eu = {"service": "checkout", "cluster": "eu-1"}
    items = [
        received("d1", "g1", 0, "i1", **eu),
        received("d2", "pagerduty:k", 5, "i2", **eu),
        received("d3", "json:s:k", 14, "i3", **eu),  # within 10 min of the latest (5), not the first
        received("d4", "g4", 40, "i4", **eu),  # 26 min later: a cluster of its own, one group: dropped
        received("d5", "g5", 1, "i5", service="checkout", cluster="us-1"),
        received("d6", "g6", 2, "i6", service="checkout"),  # lacks cluster
        received("d7", "g1", 3, "i1", **eu),  # the same group again
    ]
    clusters = preview_clusters(rule(enabled=False), items)  # a rule not yet on previews as on
    assert len(clusters) == 1
    [cluster] = clusters
    assert cluster.key == ("checkout", "eu-1") and cluster.groups == 3
    assert [m.delivery_id for m in cluster.members] == ["d1", "d7", "d2", "d3"]
    assert incidents_after(items, clusters) == (6, 4)
    # Limited to Events v2, only d2 is left in its cluster: nothing is grouped.
    assert preview_clusters(rule(sources=frozenset({PD})), items) == []


def test_the_preview_counts_each_firing_alert_once() -> None:
    # Alertmanager re-sends a firing alert every repeat_interval: same group, fingerprint and start.
    def sent(delivery: str, group: str, fingerprint: str, minutes: float) -> ReceivedAlert:
        starts = T0 + timedelta(minutes=minutes)
        return ReceivedAlert(delivery, T0, group, alert(fingerprint, starts), None)

    first, again = sent("d1", "g1", "f1", 0), sent("d2", "g1", "f1", 0)
    other_group, other_alert, restarted = (
        sent("d3", "g2", "f1", 0),
        sent("d4", "g1", "f2", 0),
        sent("d5", "g1", "f1", 5),
    )
    kept = [first, other_group, other_alert, restarted]
    assert distinct_instances([first, again, other_group, other_alert, restarted]) == kept
