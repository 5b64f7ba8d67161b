"""Nothing is skipped for good: an event the projector cannot apply stops it there (visibly) until an
operator skips it, a deadlock is retried rather than given up on, and dead letters replay into the
read models. These tests stop the projector on purpose, so they run on a platform of their own."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from contracts.envelope import EventEnvelope
from contracts.events import IncidentState, IncidentStateChanged
from contracts.subjects import dead_letter_replay_subject
from gateway.projection.skip import SkipRefused, skip
from sre_copilot.cli import app as cli
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
from tests.conftest import INCIDENT, Tenant, fresh_address, register_tenant
from tests.integration.streams import messages_on
from tests.integration.test_consumers import created_event
from tests.platforms import bus_of, database_of, started

PROJECTOR = "gateway_projector"


@pytest.fixture(scope="module")
def own_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    state = tmp_path_factory.mktemp("stalls")
    running = Platform(
        state_dir=state,
        port=free_port(),
        durable=False,
        extra_env={
            "LOG_LEVEL": "INFO",
            "TRUSTED_PROXIES": '["127.0.0.1"]',
            "AI_ENGINE": "rules",
            "COALESCE_WINDOW_SECONDS": "0.2",
        },
        log_dir=state / "logs",
    )
    with started(running):
        yield running


@pytest.fixture(scope="module")
async def db(own_platform: Platform) -> AsyncIterator[AsyncEngine]:
    async with database_of(own_platform, pool_size=3) as engine:
        yield engine


@pytest.fixture(scope="module")
async def bus(own_platform: Platform) -> AsyncIterator[Client]:
    async with bus_of(own_platform, "tests-stalls") as nc:
        yield nc


@pytest.fixture(scope="module")
def stream(bus: Client) -> JetStreamContext:
    return bus.jetstream()


@pytest.fixture
async def http(own_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Forwarded-For": fresh_address()}
    async with httpx.AsyncClient(base_url=own_platform.gateway_url, timeout=15, headers=headers) as client:
        yield client


@pytest.fixture
async def owner(http: httpx.AsyncClient) -> Tenant:
    return await register_tenant(http, "Stalls")


@pytest.fixture
async def unstall(db: AsyncEngine, stream: JetStreamContext) -> AsyncIterator[list[int]]:
    """Sequences a test stops the projector at: skipped after it whatever happened, so one failing
    test does not leave the next ones stalled."""
    stalled: list[int] = []
    yield stalled
    for seq in stalled:
        try:
            await skip(db, stream, seq, "test clean-up", force=True, wait_seconds=0)
        except SkipRefused:
            pass  # passed already


async def until(check: Callable[[], Awaitable[Any]], seconds: float = 45.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        if result := await check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError("never happened")
        await asyncio.sleep(0.2)


async def stall_of(http: httpx.AsyncClient) -> tuple[int, str, str] | None:
    """(sequence, reason, type) of the projector's stall, as /metrics tells it."""
    page = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(page):
        if family.name == "sre_copilot_projection_stalled_sequence":
            for sample in family.samples:
                if sample.labels.get("projection") == PROJECTOR and sample.value > 0:
                    return int(sample.value), sample.labels["reason"], sample.labels["type"]
            return None
    raise AssertionError("sre_copilot_projection_stalled_sequence is not served")


async def stalled_at(http: httpx.AsyncClient, seq: int) -> tuple[int, str, str]:
    async def there() -> tuple[int, str, str] | None:
        found = await stall_of(http)
        return found if found is not None and found[0] == seq else None

    found: tuple[int, str, str] = await until(there)
    return found


async def publish(js: JetStreamContext, subject: str, data: bytes) -> int:
    return int(
        (await js.publish(subject, data, stream="EVENTS", headers={"Nats-Msg-Id": str(uuid.uuid4())})).seq
    )


async def publish_event(js: JetStreamContext, event: EventEnvelope) -> int:
    return await publish(js, f"events.{event.tenant_id}.{event.type}", event.to_bytes())


def run_cli(platform: Platform, *args: str) -> Any:
    assert platform.nats_url and platform.database_url
    urls = ["--nats-url", platform.nats_url, "--database-url", platform.database_url]
    return CliRunner().invoke(cli, ["projections", "skip", *args, *urls])


async def skip_cli(platform: Platform, *args: str) -> Any:
    # The command runs its own event loop: in a thread, beside this one.
    return await asyncio.to_thread(run_cli, platform, *args)


async def incident_status(http: httpx.AsyncClient, tenant: Tenant, incident_id: str) -> int:
    return (await http.get(f"/api/v1/incidents/{incident_id}", headers=tenant.auth)).status_code


async def dead_letter_of(js: JetStreamContext, seq: int) -> Msg:
    async def found() -> Msg | None:
        letters = await messages_on(js, f"dlq.{PROJECTOR}", stream="DLQ")
        mine = [m for m in letters if (m.headers or {}).get("Dlq-Original-Seq") == str(seq)]
        return mine[0] if mine else None

    letter: Msg = await until(found)
    return letter


def newer_version(tenant_id: str) -> tuple[str, bytes]:
    event = created_event(tenant_id).model_copy(update={"version": 99})
    return "incident.created", event.to_bytes()


def unknown_type(tenant_id: str) -> tuple[str, bytes]:
    event = created_event(tenant_id).model_copy(update={"type": "incident.exploded"})
    return "incident.exploded", event.to_bytes()


def invalid_payload(tenant_id: str) -> tuple[str, bytes]:
    event = created_event(tenant_id)
    event = event.model_copy(
        update={"data": event.data | {"incident": event.data["incident"] | {"severity": "apocalyptic"}}}
    )
    return "incident.created", event.to_bytes()


def refused_by_the_read_models(tenant_id: str) -> tuple[str, bytes]:
    # A valid event whose number does not fit the read model's column: every apply fails.
    event = created_event(tenant_id)
    event = event.model_copy(
        update={"data": event.data | {"incident": event.data["incident"] | {"number": 2**40}}}
    )
    return "incident.created", event.to_bytes()


def unreadable(tenant_id: str) -> tuple[str, bytes]:
    return "incident.created", b"\x00 this is not an event"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (newer_version, "newer_version"),
        (unknown_type, "unknown_type"),
        (invalid_payload, "invalid"),
        (refused_by_the_read_models, "apply_failed"),
        (unreadable, "unreadable"),
    ],
)
async def test_an_event_it_cannot_apply_stops_the_projector_until_an_operator_skips_it(
    own_platform: Platform,
    http: httpx.AsyncClient,
    owner: Tenant,
    stream: JetStreamContext,
    unstall: list[int],
    make: Callable[[str], tuple[str, bytes]],
    reason: str,
) -> None:
    event_type, poison = make(owner.tenant_id)
    bad_seq = await publish(stream, f"events.{owner.tenant_id}.{event_type}", poison)
    unstall.append(bad_seq)
    after = created_event(owner.tenant_id)
    after_seq = await publish_event(stream, after)

    _seq, why, kind = await stalled_at(http, bad_seq)
    assert why == reason
    assert kind == ("" if reason == "unreadable" else event_type)
    # Stopped at the poison: the event after it is not applied (in order, or not at all).
    assert await incident_status(http, owner, after.aggregate_id) == 404
    health = (await http.get("/health")).json()
    assert health["status"] == "healthy"
    assert health["projector"]["status"] == "stalled"
    assert health["projector"]["stall"]["seq"] == bad_seq
    assert health["projector"]["stall"]["reason"] == reason
    assert health["projector"]["checkpoint"] == bad_seq - 1

    # Anything but the sequence it is stalled at is refused without --force.
    refused = await skip_cli(own_platform, str(after_seq))
    assert refused.exit_code == 1
    assert f"stalled at sequence {bad_seq}" in refused.output
    assert await incident_status(http, owner, after.aggregate_id) == 404

    done = await skip_cli(own_platform, str(bad_seq), "--reason", f"test: {reason}")
    assert done.exit_code == 0, done.output
    assert "copied to dlq.gateway_projector" in done.output

    async def visible() -> bool:
        return await incident_status(http, owner, after.aggregate_id) == 200

    await until(visible)
    assert await stall_of(http) is None
    assert (await http.get("/health")).json()["projector"]["status"] == "running"

    letter = await dead_letter_of(stream, bad_seq)
    assert letter.data == poison
    assert letter.headers is not None
    assert letter.headers["Dlq-Consumer"] == PROJECTOR
    assert letter.headers["Dlq-Original-Subject"] == f"events.{owner.tenant_id}.{event_type}"
    assert letter.headers["Dlq-Error"] == f"test: {reason}"
    assert letter.headers["Dlq-Skipped-By-Operator"] == "true"
    assert int(letter.headers["Dlq-Attempts"]) >= 1

    if reason == "unreadable":
        # The AI worker, which still dead-letters what it cannot read, moved on as well: a new
        # incident is projected and gets its hypotheses.
        async def ai_worker_gave_up() -> bool:
            letters = await messages_on(stream, "dlq.ai_worker", stream="DLQ")
            return any((m.headers or {}).get("Dlq-Original-Seq") == str(bad_seq) for m in letters)

        await until(ai_worker_gave_up)
        created = await http.post("/api/v1/incidents", json=INCIDENT, headers=owner.auth)
        assert created.status_code == 201
        incident_id = created.json()["id"]

        async def ready() -> bool:
            answer = await http.get(f"/api/v1/incidents/{incident_id}/hypotheses", headers=owner.auth)
            return bool(answer.json()["status"] == "ready")

        await until(ready)


async def read_model_rows(db: AsyncEngine, incident_id: str) -> tuple[list[Any], list[Any]]:
    """The incident's row and its creation in the timeline (the AI worker adds its own entries)."""
    async with db.connect() as conn:
        incident = await conn.execute(
            text("SELECT * FROM gateway.incidents WHERE id = :id"), {"id": incident_id}
        )
        timeline = await conn.execute(
            text("SELECT * FROM gateway.timeline WHERE incident_id = :id AND kind = 'incident.created'"),
            {"id": incident_id},
        )
        return [tuple(r) for r in incident], [tuple(r) for r in timeline]


async def replay(bus: Client, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    answer = await bus.request(dead_letter_replay_subject(PROJECTOR), data, timeout=10, headers=headers)
    reply: dict[str, Any] = json.loads(answer.data)
    return reply


async def test_a_skip_passes_exactly_its_sequence_and_its_dead_letter_replays_into_the_read_models(
    own_platform: Platform,
    http: httpx.AsyncClient,
    owner: Tenant,
    stream: JetStreamContext,
    bus: Client,
    db: AsyncEngine,
    unstall: list[int],
) -> None:
    _type, poison = newer_version(owner.tenant_id)
    bad_seq = await publish(stream, f"events.{owner.tenant_id}.incident.created", poison)
    unstall.append(bad_seq)
    await stalled_at(http, bad_seq)
    skipped, kept = created_event(owner.tenant_id), created_event(owner.tenant_id)
    skipped_seq = await publish_event(stream, skipped)
    unstall.append(skipped_seq)
    kept_seq = await publish_event(stream, kept)
    assert bad_seq < skipped_seq < kept_seq

    # A skip ahead of the projector is recorded with --force, and honoured when it gets there.
    ahead = await skip_cli(own_platform, str(skipped_seq), "--force", "--reason", "test: ahead")
    assert ahead.exit_code == 0, ahead.output
    assert "passes it when it gets there" in ahead.output
    assert (await skip_cli(own_platform, str(bad_seq))).exit_code == 0

    async def kept_visible() -> bool:
        return await incident_status(http, owner, kept.aggregate_id) == 200

    await until(kept_visible)
    # Applied in order: the one between was passed over, and only that one.
    assert await incident_status(http, owner, skipped.aggregate_id) == 404
    assert await stall_of(http) is None
    again = await skip_cli(own_platform, str(skipped_seq))
    assert again.exit_code == 0 and "skipped already" in again.output
    past = await skip_cli(own_platform, str(kept_seq), "--force")
    assert past.exit_code == 1 and "already projected" in past.output

    # Its dead letter, replayed, is applied to the read models; a second replay changes nothing.
    letter = await dead_letter_of(stream, skipped_seq)
    assert letter.data == skipped.to_bytes()
    headers = dict(letter.headers or {})
    assert await replay(bus, letter.data, headers) == {"ok": True}
    assert await incident_status(http, owner, skipped.aggregate_id) == 200
    rows = await read_model_rows(db, skipped.aggregate_id)
    assert len(rows[0]) == 1 and len(rows[1]) == 1
    assert rows[1][0][3] == skipped_seq  # in the timeline at its own place in the stream
    assert await replay(bus, letter.data, headers) == {"ok": True}
    assert await read_model_rows(db, skipped.aggregate_id) == rows

    # What this gateway cannot apply, a letter without its sequence, one the projector has yet to
    # reach: refused, each with its reason.
    newer = await dead_letter_of(stream, bad_seq)
    refused = await replay(bus, newer.data, dict(newer.headers or {}))
    assert refused["error"]["code"] == "validation_error"
    assert "newer_version" in refused["error"]["message"]
    unplaced = await replay(bus, letter.data, {k: v for k, v in headers.items() if k != "Dlq-Original-Seq"})
    assert unplaced["error"]["code"] == "validation_error"
    early = await replay(
        bus, created_event(owner.tenant_id).to_bytes(), {"Dlq-Original-Seq": str(kept_seq + 10_000)}
    )
    assert early["error"]["code"] == "conflict"


async def test_a_sequence_missing_from_the_stream_stops_the_projector_when_it_fills_a_gap(
    own_platform: Platform,
    http: httpx.AsyncClient,
    owner: Tenant,
    stream: JetStreamContext,
    unstall: list[int],
) -> None:
    _type, poison = newer_version(owner.tenant_id)
    bad_seq = await publish(stream, f"events.{owner.tenant_id}.incident.created", poison)
    unstall.append(bad_seq)
    await stalled_at(http, bad_seq)

    # While it is stalled it asks for nothing more; once its last pull request has expired,
    # these two wait in the stream.
    async def not_pulling() -> bool:
        return (await stream.consumer_info("EVENTS", PROJECTOR)).num_waiting == 0

    await until(not_pulling)
    lost, after = created_event(owner.tenant_id), created_event(owner.tenant_id)
    lost_seq = await publish_event(stream, lost)
    unstall.append(lost_seq)
    await publish_event(stream, after)
    await stream.delete_msg("EVENTS", lost_seq)  # never delivered now: only a gap shows it
    assert (await skip_cli(own_platform, str(bad_seq))).exit_code == 0

    _seq, why, _kind = await stalled_at(http, lost_seq)
    assert why == "missing"
    assert await incident_status(http, owner, after.aggregate_id) == 404
    done = await skip_cli(own_platform, str(lost_seq), "--reason", "test: deleted")
    assert done.exit_code == 0 and "no longer in the stream" in done.output

    async def visible() -> bool:
        return await incident_status(http, owner, after.aggregate_id) == 200

    await until(visible)


async def test_a_stall_outlives_a_restart_and_is_found_again_through_a_gap(
    own_platform: Platform,
    http: httpx.AsyncClient,
    owner: Tenant,
    stream: JetStreamContext,
    unstall: list[int],
) -> None:
    """What a rolling deploy does: the gateway restarts while stopped at an event; the new one
    starts from the same place, and does not pass the event on its way to newer ones."""
    _type, poison = newer_version(owner.tenant_id)
    bad_seq = await publish(stream, f"events.{owner.tenant_id}.incident.created", poison)
    unstall.append(bad_seq)
    await stalled_at(http, bad_seq)
    await asyncio.to_thread(own_platform.restart, ["gateway"])
    await asyncio.to_thread(own_platform.wait_gateway)
    # Delivered at once, ahead of the redelivery of the held one: the projector reads the gap
    # (the poison) from the stream itself, and stops there again.
    after = created_event(owner.tenant_id)
    await publish_event(stream, after)
    _seq, why, _kind = await stalled_at(http, bad_seq)
    assert why == "newer_version"
    assert await incident_status(http, owner, after.aggregate_id) == 404
    assert (await skip_cli(own_platform, str(bad_seq))).exit_code == 0

    async def visible() -> bool:
        return await incident_status(http, owner, after.aggregate_id) == 200

    await until(visible)


async def conflicts_counted(http: httpx.AsyncClient) -> float:
    page = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(page):
        if family.name == "sre_copilot_transaction_conflicts":
            return sum(s.value for s in family.samples if s.labels.get("consumer") == PROJECTOR)
    return 0.0


async def quiet(db: AsyncEngine, js: JetStreamContext) -> bool:
    """The projector has applied everything in the stream."""
    last = (await js.stream_info("EVENTS")).state.last_seq
    async with db.connect() as conn:
        checkpoint = await conn.scalar(
            text("SELECT last_seq FROM gateway.checkpoints WHERE name = :name"), {"name": PROJECTOR}
        )
    return checkpoint == last


async def test_a_deadlock_is_retried_for_as_long_as_it_takes_and_not_dead_lettered(
    http: httpx.AsyncClient, owner: Tenant, stream: JetStreamContext, db: AsyncEngine
) -> None:
    """The projector's transaction locks the incident's row, then the checkpoint's; this test's
    locks the checkpoint, then the incident's: PostgreSQL breaks the deadlock by rolling one back."""
    before = await conflicts_counted(http)
    created = await http.post("/api/v1/incidents", json=INCIDENT, headers=owner.auth)
    assert created.status_code == 201
    incident_id = created.json()["id"]

    async def hypotheses_in() -> bool:
        answer = await http.get(f"/api/v1/incidents/{incident_id}/hypotheses", headers=owner.auth)
        return bool(answer.json()["status"] == "ready")

    await until(hypotheses_in)

    async def version_now() -> int:
        async with db.connect() as conn:
            found = await conn.scalar(
                text("SELECT version FROM gateway.incidents WHERE id = :id"), {"id": incident_id}
            )
        return int(found)

    moved_seqs = []
    for _attempt in range(4):  # until PostgreSQL picks the projector's transaction to roll back
        await until(lambda: quiet(db, stream))  # so the next batch is the change below
        version = await version_now()
        async with db.connect() as conn, db.connect() as watcher:
            transaction = await conn.begin()
            # Ours waits longer before looking for a deadlock, so the projector's finds it.
            await conn.execute(text("SET LOCAL deadlock_timeout = '5s'"))
            ours = await conn.scalar(text("SELECT pg_backend_pid()"))
            await conn.execute(
                text("SELECT 1 FROM gateway.checkpoints WHERE name = :name FOR UPDATE"), {"name": PROJECTOR}
            )
            moved = EventEnvelope(
                type="incident.state_changed",
                tenant_id=owner.tenant_id,
                aggregate_id=incident_id,
                aggregate_version=version + 1,
                correlation_id="deadlock-test",
                data=IncidentStateChanged(
                    incident_id=incident_id,
                    from_state=IncidentState.DETECTED,
                    to_state=IncidentState.ACKNOWLEDGED,
                    changed_at=datetime.now(UTC),
                ).model_dump(mode="json"),
            )
            moved_seqs.append(await publish_event(stream, moved))

            async def projector_waits_for_us(ours: int = ours, watcher: Any = watcher) -> bool:
                blocked = await watcher.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE :ours = ANY(pg_blocking_pids(pid))"),
                    {"ours": ours},
                )
                return bool(blocked)

            await until(projector_waits_for_us, seconds=20)
            try:
                await conn.execute(
                    text("SELECT 1 FROM gateway.incidents WHERE id = :id FOR UPDATE"), {"id": incident_id}
                )
            except Exception as exc:  # ours was rolled back instead: try again
                assert "deadlock" in str(exc).lower(), exc
            await transaction.rollback()

        async def applied(expected: int = version + 1) -> bool:
            return await version_now() >= expected

        await until(applied)
        if await conflicts_counted(http) > before:
            break

    assert await conflicts_counted(http) > before
    assert await stall_of(http) is None
    letters = await messages_on(stream, f"dlq.{PROJECTOR}", stream="DLQ")
    dead = {(m.headers or {}).get("Dlq-Original-Seq") for m in letters}
    assert not dead & {str(seq) for seq in moved_seqs}
