"""integrations' pure rules: reading Alertmanager alerts, what each alert of a notification does,
signing, back-off, webhook targets and the Slack message."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.commands import CommandFailed, ErrorCode
from contracts.events import Severity
from contracts.integrations import AlertmanagerPayload, DeliveryStatus, DeployReport
from integrations.domain import (
    AlertInstance,
    IncidentFacts,
    Known,
    Outcome,
    Target,
    address_allowed,
    backoff_seconds,
    delivery_after,
    deploy_identity,
    inbound_gives_up,
    incident_description,
    incident_id_for,
    incident_service,
    incident_title,
    labels_fingerprint,
    map_severity,
    normalise,
    pick_deliveries,
    plan_alerts,
    retried_delivery,
    retryable,
    slack_message,
    url_problem,
    with_known_starts,
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


# ---- PagerDuty Events v2


def test_a_pagerduty_trigger_reads_as_one_alert_of_its_dedup_key() -> None:
    from pydantic import TypeAdapter

    from contracts.integrations import PagerDutyAlert
    from integrations.domain import pagerduty_group_key, pagerduty_notification

    received = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    event = TypeAdapter(PagerDutyAlert).validate_python(
        {
            "event_action": "trigger",
            "dedup_key": "srv01/mysql",
            "payload": {
                "summary": "DISK at 99% on machine prod-datapipe03.example.com",
                "timestamp": "2015-07-17T08:42:58.315+0000",
                "severity": "error",
                "source": "prod-datapipe03.example.com",
                "component": "mysql",
                "group": "prod-datapipe",
                "class": "disk",
                "custom_details": {"free space": "1%", "load avg": 0.75},
            },
            "client": "x" * 1_000,
            "links": [{"href": "http://pagerduty.example.com", "text": "An example link."}],
            "images": [{"src": "https://chart.example.com/c.png"}],
        }
    )
    payload = pagerduty_notification(event, received)
    [alert] = payload.alerts
    assert payload.groupKey == pagerduty_group_key("srv01/mysql") and alert.status == "firing"
    assert alert.startsAt == datetime(2015, 7, 17, 8, 42, 58, 315_000, tzinfo=UTC)
    assert alert.labels["service"] == "mysql" and alert.labels["alertname"] == "disk"
    assert map_severity(alert.labels["severity"]) is Severity.HIGH
    assert alert.annotations["summary"].startswith("DISK at 99%")
    description = alert.annotations["description"]
    assert "free space: 1%" in description and "load avg: 0.75" in description
    assert "An example link.: http://pagerduty.example.com" in description
    assert alert.generatorURL == "http://pagerduty.example.com"
    # The same dedup_key is the same alert; a resolve without payload names it too.
    resolve = TypeAdapter(PagerDutyAlert).validate_python(
        {"event_action": "resolve", "dedup_key": "srv01/mysql"}
    )
    [ended] = pagerduty_notification(resolve, received).alerts
    assert ended.fingerprint == alert.fingerprint and ended.status == "resolved"
    assert ended.startsAt == received


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-25T09:00:00Z", datetime(2026, 11, 25, 9, tzinfo=UTC)),
        ("2026-11-25T10:00:00+0100", datetime(2026, 11, 25, 9, tzinfo=UTC)),
        ("2026-11-25T09:00:00", None),  # no offset: unknown
        ("yesterday", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("", None),
    ],
)
def test_pagerduty_timestamps(raw: str, expected: datetime | None) -> None:
    from integrations.domain import read_timestamp

    assert read_timestamp(raw) == expected


def test_a_change_event_reads_as_a_deploy() -> None:
    from contracts.integrations import PagerDutyChangePayload
    from integrations.domain import change_as_deploy

    full = change_as_deploy(
        PagerDutyChangePayload.model_validate(
            {
                "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
                "timestamp": "2020-07-17T08:42:58.315+0000",
                "source": "acme-build-pipeline-tool-default-i-9999",
                "custom_details": {"service": "api", "version": 42, "env": "prod", "sha": "abc123"},
            }
        )
    )
    assert (full.service_name, full.version, full.environment, full.commit) == ("api", "42", "prod", "abc123")
    assert full.deployed_at == datetime(2020, 7, 17, 8, 42, 58, 315_000, tzinfo=UTC)
    bare = change_as_deploy(
        PagerDutyChangePayload.model_validate({"summary": "  shipped  it ", "source": "!!"})
    )
    assert (bare.service_name, bare.version, bare.environment, bare.deployed_at) == (
        "unknown",
        "shipped it",
        "unknown",
        None,
    )


# ---- generic JSON mappings


def test_a_mapping_reads_a_body_and_says_why_it_cannot() -> None:
    from contracts.integrations import JsonMapping
    from integrations.domain import MappingProblem, Unreadable, apply_mapping, compile_mapping

    mapping = JsonMapping(
        title="alert.name",
        severity="alert.level",
        status="state",
        labels="alert.tags",
        service="alert.tags.team",
    )
    compiled = compile_mapping(mapping)
    body = {"alert": {"name": "Disk\x00 full", "level": 2, "tags": {"team": "db", "n": 3, "deep": {"a": 1}}}}
    alert = apply_mapping(compiled, mapping, {**body, "state": "OK"})
    assert (alert.title, alert.status, alert.service) == ("Disk full", "resolved", "db")
    assert alert.severity == "medium"  # an unknown word: worth a look, not a page
    assert alert.labels == {"team": "db", "n": "3", "deep": '{"a": 1}'}
    # No dedup_key expression: the same alert reads the same key every time.
    assert alert.dedup_key == apply_mapping(compiled, mapping, body).dedup_key
    assert apply_mapping(compiled, mapping, body).status == "firing"

    with pytest.raises(Unreadable, match=r"title: `alert\.name` found no text"):
        apply_mapping(compiled, mapping, {"alert": {"name": {"nested": True}}})
    with pytest.raises(Unreadable, match=r"labels: `alert\.tags` found list"):
        apply_mapping(compiled, mapping, {"alert": {"name": "x", "tags": [1]}})
    with pytest.raises(Unreadable, match="neither firing nor resolved"):
        apply_mapping(compiled, mapping, {**body, "state": "snoozed"})
    with pytest.raises(MappingProblem) as problem:
        compile_mapping(JsonMapping(title="ok", service="tags.[0"))
    assert problem.value.field_name == "service" and "`tags.[0`" in str(problem.value)


# ---- maintenance windows and silences


def _silence(**fields: object) -> Any:
    from contracts.integrations import SilenceSpec

    return SilenceSpec.model_validate({"name": "maintenance", "services": ["checkout"], **fields})


def test_a_one_off_window_is_upcoming_active_then_expired() -> None:
    from contracts.integrations import SilenceState
    from integrations.domain import silence_matches, silence_state

    start = datetime(2026, 11, 25, 22, tzinfo=UTC)
    window = _silence(starts_at=start.isoformat(), duration_minutes=120)
    assert silence_state(window, start - timedelta(seconds=1)) == (SilenceState.UPCOMING, start)
    assert silence_state(window, start) == (SilenceState.ACTIVE, start + timedelta(hours=2))
    assert silence_state(window, start + timedelta(hours=2)) == (SilenceState.EXPIRED, None)
    during = start + timedelta(minutes=30)
    assert silence_matches(window, {}, "checkout", during)
    assert not silence_matches(window, {}, "billing", during)
    assert not silence_matches(window, {}, "checkout", start + timedelta(hours=3))


def test_matchers_all_hold_and_a_missing_label_reads_as_empty() -> None:
    from integrations.domain import silence_matches

    start = datetime(2026, 11, 25, tzinfo=UTC)
    window = _silence(
        services=[],
        starts_at=start.isoformat(),
        duration_minutes=60,
        matchers=[
            {"label": "env", "value": "staging"},
            {"label": "instance", "op": "=~", "value": "db-[0-9]+"},
            {"label": "team", "op": "!=", "value": "payments"},
            {"label": "canary", "op": "!~", "value": "true|yes"},
        ],
    )
    at = start + timedelta(minutes=1)
    assert silence_matches(window, {"env": "staging", "instance": "db-12"}, "x", at)
    assert not silence_matches(window, {"env": "staging", "instance": "db-12x"}, "x", at)  # whole value
    assert not silence_matches(window, {"env": "staging", "instance": "db-1", "team": "payments"}, "x", at)
    assert not silence_matches(window, {"env": "staging", "instance": "db-1", "canary": "yes"}, "x", at)
    assert not silence_matches(window, {"env": "prod", "instance": "db-1"}, "x", at)


def test_a_weekly_window_opens_on_its_days_in_its_time_zone() -> None:
    from contracts.integrations import SilenceState
    from integrations.domain import silence_state

    # Sundays and Wednesdays, 02:00-04:00 Paris time (01:00 UTC in winter), from 2026-11-01 to 2026-12-31.
    first = datetime(2026, 11, 1, 1, tzinfo=UTC)  # a Sunday, 02:00 in Paris
    window = _silence(
        starts_at=first.isoformat(),
        duration_minutes=120,
        recurrence={"weekdays": ["sun", "wed"], "timezone": "Europe/Paris", "until": "2026-12-31T00:00:00Z"},
    )
    wednesday = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    assert silence_state(window, wednesday) == (SilenceState.ACTIVE, datetime(2026, 11, 25, 3, tzinfo=UTC))
    thursday = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)
    assert silence_state(window, thursday) == (SilenceState.UPCOMING, datetime(2026, 11, 29, 1, tzinfo=UTC))
    assert silence_state(window, datetime(2026, 10, 1, tzinfo=UTC)) == (SilenceState.UPCOMING, first)
    assert silence_state(window, datetime(2026, 12, 31, tzinfo=UTC)) == (SilenceState.EXPIRED, None)


def test_what_the_schema_cannot_check_is_named() -> None:
    from pydantic import ValidationError

    from integrations.domain import silence_problem

    start = "2026-11-25T00:00:00Z"
    bad_zone = _silence(
        starts_at=start, duration_minutes=5, recurrence={"weekdays": ["mon"], "timezone": "Mars/Olympus"}
    )
    assert silence_problem(bad_zone) == ("recurrence.timezone", "'Mars/Olympus' is not an IANA time zone")
    bad_regex = _silence(
        starts_at=start, duration_minutes=5, matchers=[{"label": "a", "op": "=~", "value": "("}]
    )
    assert silence_problem(bad_regex) is not None and silence_problem(bad_regex)[0] == "matchers.0.value"  # type: ignore[index]
    with pytest.raises(ValidationError, match="at least one service or one matcher"):
        _silence(services=[], starts_at=start, duration_minutes=5)


@pytest.mark.parametrize(
    "start", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00"]
)
@pytest.mark.parametrize("weekly", [False, True])
def test_windows_at_the_ends_of_time_have_a_state(start: str, weekly: bool) -> None:
    from contracts.integrations import SilenceState
    from integrations.domain import silence_matches, silence_state

    recurrence = {"weekdays": ["mon", "sun"], "timezone": "Pacific/Kiritimati"} if weekly else None
    window = _silence(starts_at=start, duration_minutes=527_040, recurrence=recurrence)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    state, _ = silence_state(window, now)
    assert state is (SilenceState.UPCOMING if start.startswith("9999") else state)
    assert silence_matches(window, {}, "checkout", now) is (state is SilenceState.ACTIVE)


def test_a_deploy_report_with_its_time_always_gets_the_same_id() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    report = DeployReport(
        service_name="checkout", version="1.2.3", environment="prod", commit="abc", deployed_at=at
    )
    # Pinned: a report retried across a release is still the deploy already recorded.
    assert deploy_identity("t_1", report) == "fae034b2-0a3c-5d72-95b3-4486060e3170"
    assert deploy_identity("t_2", report) != deploy_identity("t_1", report)
    other_commit = report.model_copy(update={"commit": "abd"})
    assert deploy_identity("t_1", other_commit) != deploy_identity("t_1", report)
    assert deploy_identity("t_1", report.model_copy(update={"deployed_at": None})) is None


def test_retrying_a_delivery_by_hand() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert retried_delivery(DeliveryStatus.SUCCEEDED, now) is None
    due_now = {"status": "pending", "next_attempt_at": now, "updated_at": now}
    assert retried_delivery(DeliveryStatus.PENDING, now) == due_now  # its attempts go on counting
    assert retried_delivery(DeliveryStatus.FAILED, now) == {**due_now, "attempts": 0}


def test_alerts_named_by_key_take_the_start_recorded_for_it() -> None:
    earlier = T0 - timedelta(minutes=5)
    known = {"a1": Known("firing", earlier, None), "b2": Known("resolved", earlier, None)}
    repeat, resolve, refire = instance("a1"), instance("a1", "resolved"), instance("b2")
    # A repeat of what fires and a resolution take the recorded start; firing again after a
    # resolution is a new instance, and so is everything when no status goes by key.
    assert [a.starts_at for a in with_known_starts([repeat], known, {"firing"})] == [earlier]
    assert [a.starts_at for a in with_known_starts([resolve], known, {"resolved"})] == [earlier]
    assert [a.starts_at for a in with_known_starts([refire], known, {"firing"})] == [T0]
    assert with_known_starts([repeat, resolve], known, set()) == [repeat, resolve]
    assert with_known_starts([instance("c3")], known, {"firing"}) == [instance("c3")]


def test_a_notification_gives_up_on_what_retrying_will_not_change() -> None:
    assert inbound_gives_up(CommandFailed(ErrorCode.CONFLICT, "moved"), 1, 5)
    assert inbound_gives_up(_validation_error(), 1, 5)
    assert not inbound_gives_up(CommandFailed(ErrorCode.UNAVAILABLE, "down"), 1, 5)
    assert not inbound_gives_up(TimeoutError(), 4, 5)
    assert inbound_gives_up(TimeoutError(), 5, 5)


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        AlertmanagerPayload.model_validate({})
    return caught.value


def test_an_attempt_decides_its_deliverys_next_state() -> None:
    later = timedelta(seconds=30)
    sent = delivery_after(Outcome(True, 204, None, retry=False), 1, 3, later, T0)
    assert sent == {
        "lease_until": None,
        "updated_at": T0,
        "last_status_code": 204,
        "last_error": None,
        "status": DeliveryStatus.SUCCEEDED.value,
        "delivered_at": T0,
    }
    again = delivery_after(Outcome(False, 503, "HTTP 503", retry=True), 2, 3, later, T0)
    assert (again["status"], again["next_attempt_at"]) == (DeliveryStatus.PENDING.value, T0 + later)
    assert again["last_error"] == "HTTP 503"
    spent = delivery_after(Outcome(False, 503, "HTTP 503", retry=True), 3, 3, later, T0)
    refused = delivery_after(Outcome(False, 404, "HTTP 404", retry=False), 1, 3, later, T0)
    for values in (spent, refused):
        assert values["status"] == DeliveryStatus.FAILED.value
        assert "next_attempt_at" not in values


def test_a_sender_takes_what_is_free_and_no_webhook_past_its_limit() -> None:
    busy, quiet = uuid.uuid4(), uuid.uuid4()
    due = [(uuid.uuid4(), busy), (uuid.uuid4(), quiet), (uuid.uuid4(), busy), (uuid.uuid4(), quiet)]
    # `busy` is sent one already: one more of it, both of `quiet`, in the order they came due.
    assert pick_deliveries(due, {busy: 1}, free=10, per_endpoint=2) == [due[0][0], due[1][0], due[3][0]]
    assert pick_deliveries(due, {}, free=2, per_endpoint=2) == [due[0][0], due[1][0]]
    assert pick_deliveries(due, {busy: 2, quiet: 2}, free=10, per_endpoint=2) == []
