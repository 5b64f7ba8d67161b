"""integrations' pure rules: reading Alertmanager alerts, what each alert of a notification does,
signing, back-off, webhook targets and the Slack message."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import Severity
from contracts.integrations import AlertmanagerPayload
from integrations.domain import (
    AlertInstance,
    IncidentFacts,
    Known,
    Target,
    address_allowed,
    backoff_seconds,
    incident_description,
    incident_id_for,
    incident_service,
    incident_title,
    labels_fingerprint,
    map_severity,
    normalise,
    plan_alerts,
    retryable,
    slack_message,
    url_problem,
)
from runtime.signing import signature_header

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def payload(*alerts: dict, **extra: object) -> AlertmanagerPayload:
    return AlertmanagerPayload.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "status": "firing",
            "receiver": "sre-copilot",
            "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": {"alertname": "HighLatency"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts),
            **extra,
        }
    )


def alert(fingerprint: str = "a1", status: str = "firing", starts: datetime = T0, **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", **labels},
        "annotations": {"summary": "p99 latency above 2s", "description": "checkout is slow"},
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(minutes=5)).isoformat()
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
        "fingerprint": fingerprint,
    }


def instance(fingerprint: str = "a1", status: str = "firing", starts: datetime = T0) -> AlertInstance:
    return normalise(payload(alert(fingerprint, status, starts)).alerts[0])


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", Severity.CRITICAL),
        ("page", Severity.CRITICAL),
        ("P1", Severity.CRITICAL),
        ("SEV-2", Severity.HIGH),
        ("error", Severity.HIGH),
        ("warning", Severity.MEDIUM),
        ("info", Severity.LOW),
        ("none", Severity.LOW),
        ("", Severity.MEDIUM),
        (None, Severity.MEDIUM),
        ("something-else", Severity.MEDIUM),
    ],
)
def test_severity_mapping(label: str | None, severity: Severity) -> None:
    assert map_severity(label) is severity


def test_title_service_and_description_come_from_the_alert() -> None:
    body = payload(alert(service="checkout", job="node"))
    first = normalise(body.alerts[0])
    assert incident_title(first, body) == "p99 latency above 2s"
    assert incident_service(first, body) == "checkout"
    description = incident_description(first, body)
    assert description.startswith("checkout is slow")
    assert "service=checkout" in description and "http://prometheus:9090" in description

    bare = payload({**alert(job="api server (eu)"), "annotations": {}})
    only = normalise(bare.alerts[0])
    assert incident_title(only, bare) == "HighLatency"
    assert incident_service(only, bare) == "api-server-eu"  # made a valid service name
    nothing = payload({**alert(), "labels": {"alertname": "X"}})
    assert incident_service(normalise(nothing.alerts[0]), nothing) == "unknown"


def test_a_firing_alerts_end_is_not_a_fact_but_a_resolutions_is() -> None:
    assert instance(status="firing").ends_at is None
    assert instance(status="resolved").ends_at == T0 + timedelta(minutes=5)


def test_a_missing_fingerprint_is_computed_from_the_labels() -> None:
    body = payload({**alert(), "fingerprint": ""})
    first = normalise(body.alerts[0])
    assert first.fingerprint == labels_fingerprint({"alertname": "HighLatency"})
    assert labels_fingerprint({"a": "1", "b": "2"}) == labels_fingerprint({"b": "2", "a": "1"})
    assert labels_fingerprint({"a": "1"}) != labels_fingerprint({"a": "2"})


def test_the_incident_id_of_a_notification_is_the_same_on_every_attempt() -> None:
    delivery = uuid.uuid4()
    assert incident_id_for(delivery, "g") == incident_id_for(delivery, "g")
    assert incident_id_for(delivery, "g") != incident_id_for(uuid.uuid4(), "g")


# ---- plans

OPEN = uuid.uuid4()
OLD = uuid.uuid4()


def test_the_first_firing_alert_opens_an_incident_and_the_rest_join_it() -> None:
    plan = plan_alerts([instance("a"), instance("b")], {}, open_incident=None)
    assert [c.target for c in plan.changes] == [Target.NEW, Target.NEW]
    assert plan.opener is not None and plan.opener.fingerprint == "a"


def test_alerts_join_the_groups_open_incident() -> None:
    plan = plan_alerts([instance("a"), instance("c")], {"a": Known("firing", T0, OPEN)}, open_incident=OPEN)
    assert plan.duplicates == 1
    assert [(c.alert.fingerprint, c.target) for c in plan.changes] == [("c", Target.CURRENT)]
    assert plan.opener is None


def test_a_re_sent_alert_changes_nothing() -> None:
    known = {"a": Known("firing", T0, OPEN), "b": Known("resolved", T0, OPEN)}
    plan = plan_alerts([instance("a"), instance("b", "resolved")], known, open_incident=OPEN)
    assert plan.changes == [] and plan.duplicates == 2


def test_a_resolution_goes_to_the_incident_its_alert_fired_into() -> None:
    plan = plan_alerts([instance("a", "resolved")], {"a": Known("firing", T0, OLD)}, open_incident=None)
    assert [(c.target, c.incident_id) for c in plan.changes] == [(Target.OWN, OLD)]


def test_an_alert_resolved_before_it_was_seen_firing_attaches_to_the_open_incident_or_nothing() -> None:
    assert plan_alerts([instance("z", "resolved")], {}, OPEN).changes[0].target is Target.CURRENT
    assert plan_alerts([instance("z", "resolved")], {}, None).changes[0].target is Target.NONE


def test_an_alert_firing_again_after_its_incident_was_resolved_opens_a_new_one() -> None:
    later = T0 + timedelta(hours=1)
    known = {"a": Known("resolved", T0, OLD)}
    plan = plan_alerts([instance("a", "firing", later)], known, open_incident=None)
    assert [c.target for c in plan.changes] == [Target.NEW]
    # A re-send of the old, resolved instance is still nothing.
    assert plan_alerts([instance("a", "resolved", T0)], known, open_incident=None).changes == []


def test_a_fingerprint_twice_in_one_notification_counts_once() -> None:
    plan = plan_alerts([instance("a"), instance("a")], {}, None)
    assert len(plan.changes) == 1


# ---- signing, retries, targets


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = signature_header("whsec_x", 1_700_000_000, b'{"a":1}')
    expected = hmac.new(b"whsec_x", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter() -> None:
    assert [backoff_seconds(n, 5, 3_600) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(30, 5, 3_600) == 3_600
    assert backoff_seconds(1, 4, 100, jitter=0) == 3 and backoff_seconds(1, 4, 100, jitter=1) == 5


@pytest.mark.parametrize(
    ("code", "again"),
    [(None, True), (500, True), (503, True), (429, True), (408, True), (400, False), (404, False)],
)
def test_what_is_retried(code: int | None, again: bool) -> None:
    assert retryable(code) is again


@pytest.mark.parametrize(
    ("address", "public_only", "with_private"),
    [
        ("8.8.8.8", True, True),
        ("2606:4700:4700::1111", True, True),
        ("127.0.0.1", False, True),
        ("10.1.2.3", False, True),
        ("169.254.169.254", False, True),  # cloud metadata
        ("::ffff:127.0.0.1", False, True),
        ("0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("not-an-ip", False, False),
    ],
)
def test_which_addresses_a_webhook_may_reach(address: str, public_only: bool, with_private: bool) -> None:
    assert address_allowed(address, allow_private=False) is public_only
    assert address_allowed(address, allow_private=True) is with_private


def test_webhook_urls() -> None:
    assert url_problem("https://hooks.slack.com/services/T0/B0/x", False) is None
    assert url_problem("http://receiver.example.com:8080/hook", False) is None
    assert url_problem("ftp://example.com/x", False) == "the URL must be http or https"
    assert url_problem("https://user:pw@example.com/", False) == "credentials in the URL are not accepted"
    assert url_problem("https:///nohost", False) == "the URL has no host"
    assert url_problem("http://127.0.0.1:9/x", False) == "the URL must point to a public address"
    assert url_problem("http://localhost/x", False) == "the URL must point to a public address"
    assert url_problem("http://127.0.0.1:9/x", True) is None
    assert url_problem("http://[::1", True) == "not a valid URL"


def test_the_slack_message_names_severity_state_service_hypothesis_and_link() -> None:
    facts = IncidentFacts(
        id="i-1",
        key="INC-7",
        title="Checkout <errors> & timeouts",
        service_name="checkout",
        severity="critical",
        state="investigating",
        top_hypothesis="Connection-pool exhaustion in checkout",
        top_confidence=0.62,
    )
    message = slack_message(
        "incident.state_changed",
        {"from_state": "acknowledged", "to_state": "investigating", "note": "<@U123> on it"},
        facts,
        "http://console.example/incidents/i-1",
    )
    text = str(message)
    assert message["blocks"][0]["text"]["text"] == "INC-7 · Checkout <errors> & timeouts"  # plain text
    assert "critical" in text and "investigating" in text and "checkout" in text
    assert "Connection-pool exhaustion in checkout" in text and "62%" in text
    assert "acknowledged → investigating" in text
    assert "&lt;@U123&gt;" in text and "<@U123>" not in text  # no mention smuggled in
    assert "Checkout &lt;errors&gt; &amp; timeouts" in message["text"]
    assert message["blocks"][-1]["elements"][0]["url"] == "http://console.example/incidents/i-1"

    pending = slack_message(
        "incident.created", {}, IncidentFacts("i", "INC-1", "t", "s", "low", "detected"), "l"
    )
    assert "_pending_" in str(pending)
