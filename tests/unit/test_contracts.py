"""The shared contracts: envelope, subjects, payload registry, upcasters, roles and command bodies."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import events as events_module
from contracts.commands import Caller, CreateIncident, Login, RegisterTenant, TransitionIncident
from contracts.envelope import SYSTEM_ACTOR, EventEnvelope
from contracts.events import (
    CURRENT_VERSION,
    EVENT_TYPES,
    EventData,
    HypothesisGenerated,
    IncidentCreated,
    IncidentState,
    IncidentStateChanged,
    Role,
    Severity,
    TenantCreated,
    UnknownEventType,
    payload_of,
)
from contracts.subjects import event_subject, events_of_type, tenant_events
from contracts.upcasters import UPCASTERS, upcast

AT = datetime(2026, 1, 10, 12, 30, 15, 123456, tzinfo=UTC)


def envelope(
    type_: str = "tenant.created", version: int = 1, data: dict[str, Any] | None = None
) -> EventEnvelope:
    return EventEnvelope(
        type=type_,
        version=version,
        tenant_id="t_abc",
        aggregate_id="agg-1",
        correlation_id="corr-1",
        data=data if data is not None else {"name": "Acme", "slug": "acme"},
    )


# ---------------------------------------------------------------- envelope


def test_envelope_round_trips_through_bytes() -> None:
    original = EventEnvelope(
        type="incident.state_changed",
        version=1,
        occurred_at=AT,
        tenant_id="t_1",
        aggregate_id="inc-9",
        aggregate_version=7,
        actor="u_1",
        correlation_id="c-1",
        causation_id="cause-1",
        data={"incident_id": "inc-9", "nested": {"list": [1, 2.5, None, "x"]}, "unicode": "Ünï ✓"},
    )
    raw = original.to_bytes()
    assert isinstance(raw, bytes)
    again = EventEnvelope.from_bytes(raw)
    assert again == original
    assert again.id == original.id
    assert again.occurred_at == AT
    assert again.occurred_at.utcoffset() == timedelta(0)
    assert again.data["nested"] == {"list": [1, 2.5, None, "x"]}
    assert again.data["unicode"] == "Ünï ✓"


def test_envelope_bytes_are_json_with_every_field() -> None:
    env = envelope()
    decoded = json.loads(env.to_bytes())
    assert decoded["type"] == "tenant.created"
    assert decoded["tenant_id"] == "t_abc"
    assert uuid.UUID(decoded["id"]) == env.id
    assert set(decoded) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "tenant_id",
        "aggregate_id",
        "aggregate_version",
        "actor",
        "correlation_id",
        "causation_id",
        "data",
    }


def test_envelope_defaults() -> None:
    before = datetime.now(UTC)
    env = envelope()
    after = datetime.now(UTC)
    assert env.version == 1
    assert env.aggregate_version == 1
    assert env.actor == SYSTEM_ACTOR
    assert env.causation_id is None
    assert before <= env.occurred_at <= after
    assert env.occurred_at.tzinfo is not None
    # ids are UUIDv7: time-ordered, so a later envelope has a larger id.
    assert env.id.version == 7
    assert envelope().id != env.id


def test_envelope_ids_are_time_ordered() -> None:
    ids = [envelope().id for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_envelope_keeps_non_utc_offsets() -> None:
    plus_two = datetime(2026, 1, 10, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    env = EventEnvelope.from_bytes(
        EventEnvelope(
            type="x", tenant_id="t", aggregate_id="a", correlation_id="c", occurred_at=plus_two, data={}
        ).to_bytes()
    )
    assert env.occurred_at == plus_two
    assert env.occurred_at.utcoffset() == timedelta(hours=2)


def test_envelope_refuses_naive_datetime() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        EventEnvelope(
            type="x",
            tenant_id="t",
            aggregate_id="a",
            correlation_id="c",
            occurred_at=datetime(2026, 1, 10, 12, 0),
            data={},
        )


def test_envelope_from_bytes_refuses_naive_timestamp() -> None:
    raw = json.loads(envelope().to_bytes())
    raw["occurred_at"] = "2026-01-10T12:00:00"
    with pytest.raises(ValidationError, match="occurred_at"):
        EventEnvelope.from_bytes(json.dumps(raw).encode())


def test_envelope_from_bytes_refuses_garbage_and_missing_fields() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope.from_bytes(b"not json")
    raw = json.loads(envelope().to_bytes())
    del raw["tenant_id"]
    with pytest.raises(ValidationError, match="tenant_id"):
        EventEnvelope.from_bytes(json.dumps(raw).encode())


def test_envelope_is_frozen() -> None:
    env = envelope()
    with pytest.raises(ValidationError):
        env.tenant_id = "t_other"  # type: ignore[misc]


# ---------------------------------------------------------------- subjects


def test_event_subject() -> None:
    assert event_subject("t_1", "incident.created") == "events.t_1.incident.created"
    assert tenant_events("t_1") == "events.t_1.>"
    assert events_of_type("incident.created") == "events.*.incident.created"


@pytest.mark.parametrize("tenant_id", ["", "t.1", ".", "t_1.", ".t_1", "a.b.c", "t_*", ">", "t 1", "x" * 65])
def test_event_subject_refuses_tenant_ids_that_are_not_one_subject_token(tenant_id: str) -> None:
    with pytest.raises(ValueError, match="no dots or wildcards"):
        event_subject(tenant_id, "incident.created")


# ---------------------------------------------------------------- payload registry


def test_payload_of_validates_by_type_and_version() -> None:
    payload = payload_of(envelope())
    assert isinstance(payload, TenantCreated)
    assert payload == TenantCreated(name="Acme", slug="acme")


def test_payload_of_incident_created_parses_enums_and_datetimes() -> None:
    data = {
        "incident_id": "inc-1",
        "key": "INC-1",
        "number": 1,
        "title": "High CPU",
        "description": "",
        "service_name": "payment-api",
        "severity": "high",
        "state": "detected",
        "created_by": "u_1",
        "created_at": AT.isoformat(),
    }
    payload = payload_of(envelope("incident.created", data=data))
    assert isinstance(payload, IncidentCreated)
    # v1 is upcast to v2: the fields become the incident's first snapshot.
    assert payload.incident.severity is Severity.HIGH
    assert payload.incident.state is IncidentState.DETECTED
    assert payload.incident.created_at == AT == payload.incident.updated_at
    assert payload.incident.version == 1 and payload.incident.id == payload.incident_id


def test_payload_of_state_changed_defaults_note() -> None:
    data = {
        "incident_id": "i",
        "from_state": "detected",
        "to_state": "resolved",
        "changed_at": AT.isoformat(),
    }
    payload = payload_of(envelope("incident.state_changed", data=data))
    assert isinstance(payload, IncidentStateChanged)
    assert payload.note == ""
    assert payload.to_state is IncidentState.RESOLVED


def test_payload_of_hypothesis_generated_enforces_confidence_bounds() -> None:
    hypothesis = {
        "rank": 1,
        "claim": "c",
        "description": "d",
        "confidence": 0.5,
        "evidence": ["e"],
        "engine": "rules",
    }
    data = {"incident_id": "i", "engine": "rules", "hypotheses": [hypothesis], "generated_at": AT.isoformat()}
    assert isinstance(payload_of(envelope("hypothesis.generated", data=data)), HypothesisGenerated)
    bad = {**data, "hypotheses": [{**hypothesis, "confidence": 1.5}]}
    with pytest.raises(ValidationError, match="confidence"):
        payload_of(envelope("hypothesis.generated", data=bad))
    bad_rank = {**data, "hypotheses": [{**hypothesis, "rank": 0}]}
    with pytest.raises(ValidationError, match="rank"):
        payload_of(envelope("hypothesis.generated", data=bad_rank))


def test_payload_of_refuses_invalid_payload() -> None:
    with pytest.raises(ValidationError, match="slug"):
        payload_of(envelope(data={"name": "Acme"}))
    # Payloads forbid unknown fields: a typo is an error, not silently dropped.
    with pytest.raises(ValidationError, match="extra"):
        payload_of(envelope(data={"name": "Acme", "slug": "acme", "sluggg": "x"}))
    with pytest.raises(ValidationError, match="severity"):
        payload_of(
            envelope(
                "incident.created",
                data={
                    "incident_id": "i",
                    "key": "INC-1",
                    "number": 1,
                    "title": "t",
                    "description": "",
                    "service_name": "s",
                    "severity": "apocalyptic",
                    "state": "detected",
                    "created_by": "u",
                    "created_at": AT.isoformat(),
                },
            )
        )


def test_payload_of_unknown_type_raises() -> None:
    with pytest.raises(UnknownEventType, match=r"no schema for nobody\.knows v1"):
        payload_of(envelope("nobody.knows"))


def test_payload_of_unknown_version_of_known_type_raises() -> None:
    with pytest.raises(UnknownEventType, match=r"tenant\.created v99"):
        payload_of(envelope(version=99))


def test_unknown_event_type_is_a_value_error() -> None:
    assert issubclass(UnknownEventType, ValueError)


def test_registry_current_versions() -> None:
    assert set(CURRENT_VERSION) == {t for t, _ in EVENT_TYPES}
    for (event_type, version), model in EVENT_TYPES.items():
        assert issubclass(model, EventData)
        assert CURRENT_VERSION[event_type] >= version
    assert events_module.MODEL_TYPE[IncidentCreated] == "incident.created"


# ---------------------------------------------------------------- upcasters


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"full_name": f"{data['first']} {data['last']}"}


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "greeting": f"hello {data['full_name']}"}


@pytest.fixture
def fake_upcasters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("fake.person", 1), _v1_to_v2)
    monkeypatch.setitem(UPCASTERS, ("fake.person", 2), _v2_to_v3)


class FakePersonV3(EventData):
    full_name: str
    greeting: str


def test_upcast_chains_every_step_to_the_current_version(fake_upcasters: None) -> None:
    old = envelope("fake.person", 1, {"first": "Ada", "last": "Lovelace"})
    new = upcast(old)
    assert new.version == 3
    assert new.data == {"full_name": "Ada Lovelace", "greeting": "hello Ada Lovelace"}
    # Everything but data and version is carried over unchanged.
    assert new.id == old.id
    assert new.type == old.type
    assert new.occurred_at == old.occurred_at
    assert new.tenant_id == old.tenant_id
    assert new.correlation_id == old.correlation_id
    # The original is untouched.
    assert old.version == 1
    assert old.data == {"first": "Ada", "last": "Lovelace"}


def test_upcast_starts_from_the_envelope_version(fake_upcasters: None) -> None:
    middle = envelope("fake.person", 2, {"full_name": "Grace Hopper"})
    new = upcast(middle)
    assert new.version == 3
    assert new.data == {"full_name": "Grace Hopper", "greeting": "hello Grace Hopper"}


def test_upcast_leaves_current_versions_untouched(fake_upcasters: None) -> None:
    current = envelope("fake.person", 3, {"full_name": "x", "greeting": "y"})
    assert upcast(current) is current
    other_type = envelope()
    assert upcast(other_type) is other_type


def test_upcast_only_applies_to_its_own_type(fake_upcasters: None) -> None:
    other = envelope("fake.other", 1, {"first": "A", "last": "B"})
    assert upcast(other) is other


def test_upcaster_registration_is_undone_after_the_test() -> None:
    # The fixture used by the tests above must not leak into the real registry.
    assert ("fake.person", 1) not in UPCASTERS
    assert ("fake.person", 2) not in UPCASTERS


def test_payload_of_upcasts_before_validating(fake_upcasters: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, ("fake.person", 3), FakePersonV3)
    payload = payload_of(envelope("fake.person", 1, {"first": "Ada", "last": "Lovelace"}))
    assert payload == FakePersonV3(full_name="Ada Lovelace", greeting="hello Ada Lovelace")


def test_payload_of_without_a_schema_for_the_upcast_version_raises(fake_upcasters: None) -> None:
    with pytest.raises(UnknownEventType, match=r"fake\.person v3"):
        payload_of(envelope("fake.person", 1, {"first": "Ada", "last": "Lovelace"}))


# ---------------------------------------------------------------- roles

ROLE_TABLE = [
    (Role.OWNER, Role.OWNER, True),
    (Role.OWNER, Role.ADMIN, True),
    (Role.OWNER, Role.RESPONDER, True),
    (Role.OWNER, Role.VIEWER, True),
    (Role.ADMIN, Role.OWNER, False),
    (Role.ADMIN, Role.ADMIN, True),
    (Role.ADMIN, Role.RESPONDER, True),
    (Role.ADMIN, Role.VIEWER, True),
    (Role.RESPONDER, Role.OWNER, False),
    (Role.RESPONDER, Role.ADMIN, False),
    (Role.RESPONDER, Role.RESPONDER, True),
    (Role.RESPONDER, Role.VIEWER, True),
    (Role.VIEWER, Role.OWNER, False),
    (Role.VIEWER, Role.ADMIN, False),
    (Role.VIEWER, Role.RESPONDER, False),
    (Role.VIEWER, Role.VIEWER, True),
]


@pytest.mark.parametrize(("role", "needed", "expected"), ROLE_TABLE, ids=lambda v: str(v))
def test_role_at_least(role: Role, needed: Role, expected: bool) -> None:
    assert role.at_least(needed) is expected


def test_role_table_is_complete() -> None:
    assert {(r, n) for r, n, _ in ROLE_TABLE} == {(r, n) for r in Role for n in Role}


# ---------------------------------------------------------------- commands

CALLER = {"tenant_id": "t_1", "user_id": "u_1", "role": "responder"}


def create_incident(**overrides: Any) -> CreateIncident:
    body: dict[str, Any] = {
        "correlation_id": "c-1",
        "caller": CALLER,
        "title": "High CPU usage on payment-api",
        "description": "CPU spiked to 90%",
        "service_name": "payment-api",
        "severity": "high",
        **overrides,
    }
    return CreateIncident.model_validate(body)


def test_create_incident_accepts_a_good_body() -> None:
    cmd = create_incident(title="  padded title  ", service_name=" svc.v2:eu/west-1_a ")
    assert cmd.severity is Severity.HIGH
    assert cmd.caller == Caller(tenant_id="t_1", user_id="u_1", role=Role.RESPONDER)
    assert cmd.title == "padded title"
    assert cmd.service_name == "svc.v2:eu/west-1_a"


def test_create_incident_title_of_exactly_200_chars_is_fine() -> None:
    assert len(create_incident(title="x" * 200).title) == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"severity": "apocalyptic"}, "severity"),
        ({"severity": "HIGH"}, "severity"),
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"title": "    "}, "title"),
        ({"service_name": "payment api"}, "service_name"),
        ({"service_name": ""}, "service_name"),
        ({"service_name": "pay$ment"}, "service_name"),
        ({"service_name": "s" * 101}, "service_name"),
        ({"description": "d" * 10_001}, "description"),
        ({"caller": {**CALLER, "role": "god"}}, "role"),
        ({"unexpected": "field"}, "unexpected"),
    ],
    ids=[
        "unknown-severity",
        "severity-case",
        "title-201",
        "title-empty",
        "title-blank",
        "service-space",
        "service-empty",
        "service-symbol",
        "service-101",
        "description-too-long",
        "unknown-role",
        "extra-field",
    ],
)
def test_create_incident_rejects_bad_input(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        create_incident(**overrides)
    locations = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert any(field in loc for loc in locations), locations


def test_create_incident_requires_correlation_id_and_caller() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateIncident.model_validate(
            {"title": "t", "service_name": "s", "severity": "low"},
        )
    missing = {error["loc"][0] for error in caught.value.errors() if error["type"] == "missing"}
    assert missing == {"correlation_id", "caller"}


def test_transition_incident_rejects_unknown_state() -> None:
    base = {"correlation_id": "c", "caller": CALLER, "incident_id": "i"}
    assert TransitionIncident.model_validate({**base, "to": "resolved"}).to is IncidentState.RESOLVED
    with pytest.raises(ValidationError, match="to"):
        TransitionIncident.model_validate({**base, "to": "closed"})


def register(**overrides: Any) -> RegisterTenant:
    body = {
        "correlation_id": "c-1",
        "email": "owner@example.com",
        "password": "correct-horse",
        "full_name": "Ada Lovelace",
        "tenant_name": "Acme",
        **overrides,
    }
    return RegisterTenant.model_validate(body)


def test_register_tenant_accepts_a_good_body() -> None:
    cmd = register(full_name="  Ada  ", password="x" * 8)
    assert cmd.full_name == "Ada"
    assert cmd.email == "owner@example.com"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "1234567"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@"}, "email"),
        ({"email": "@example.com"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"full_name": "   "}, "full_name"),
        ({"tenant_name": ""}, "tenant_name"),
        ({"tenant_name": "t" * 121}, "tenant_name"),
    ],
)
def test_register_tenant_rejects_bad_input(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        register(**overrides)
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


def test_login_rejects_bad_email_and_overlong_password() -> None:
    Login.model_validate({"correlation_id": "c", "email": "a@example.com", "password": "x"})
    with pytest.raises(ValidationError, match="email"):
        Login.model_validate({"correlation_id": "c", "email": "nope", "password": "x"})
    with pytest.raises(ValidationError, match="password"):
        Login.model_validate({"correlation_id": "c", "email": "a@example.com", "password": "x" * 129})


def test_caller_is_frozen() -> None:
    caller = Caller(tenant_id="t", user_id="u", role=Role.VIEWER)
    with pytest.raises(ValidationError):
        caller.role = Role.OWNER  # type: ignore[misc]
