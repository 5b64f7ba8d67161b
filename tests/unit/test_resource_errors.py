"""Pure parts of how a refused connection or a full disk is told apart and worded (the real faults
are in tests/fault/test_resources.py): database errors, URLs without their secrets, an export that
never leaves a partial file."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import nats.errors
import pytest
from sqlalchemy import MetaData
from sqlalchemy import exc as sa

from contracts.envelope import EventEnvelope
from runtime.bus import connection_failure
from runtime.db import (
    STORAGE_FULL_MESSAGE,
    UNAVAILABLE_MESSAGE,
    database_failure,
    is_storage_full,
    is_unavailable,
    unavailable_message,
)
from runtime.logging import redact_url
from runtime.outbox import OutboxRelay, outbox_table
from runtime.replay import ReplayError, export_file


def as_sqlalchemy_raises(driver_error: BaseException) -> BaseException:
    """SQLAlchemy's asyncpg dialect wraps asyncpg's error in its own, then in a DBAPIError."""
    adapted = Exception(f"{type(driver_error).__name__}: {driver_error}")
    adapted.__cause__ = driver_error
    wrapped = sa.DBAPIError("INSERT INTO incidents.incidents ...", {}, adapted)
    wrapped.__cause__ = adapted
    return wrapped


def test_a_full_disk_is_an_outage_worded_as_such() -> None:
    full = as_sqlalchemy_raises(asyncpg.DiskFullError('could not extend file "base/1/2"'))
    assert is_unavailable(full) and is_storage_full(full)
    assert unavailable_message(full) == STORAGE_FULL_MESSAGE
    assert database_failure("postgresql://u:pw@db/x", full) == STORAGE_FULL_MESSAGE
    no_space = OSError(errno.ENOSPC, "No space left on device")
    assert is_unavailable(no_space) and is_storage_full(no_space)


@pytest.mark.parametrize(
    "error",
    [asyncpg.TooManyConnectionsError("sorry, too many clients"), asyncpg.OutOfMemoryError("out of memory")],
)
def test_other_resource_shortages_are_outages_too(error: BaseException) -> None:
    wrapped = as_sqlalchemy_raises(error)
    assert is_unavailable(wrapped) and not is_storage_full(wrapped)
    assert unavailable_message(wrapped) == UNAVAILABLE_MESSAGE


def test_a_bug_is_not_an_outage() -> None:
    bug = as_sqlalchemy_raises(asyncpg.UndefinedColumnError('column "nope" does not exist'))
    assert not is_unavailable(bug) and not is_storage_full(bug)


def test_a_refused_connection_is_named_with_its_server_but_not_its_password() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)")
    assert is_unavailable(refused) and not is_storage_full(refused)
    assert connection_failure(refused) == "Connection refused"
    assert (
        database_failure("postgresql://app:s3cret@db:5432/x", refused)
        == "cannot reach PostgreSQL at postgresql://app:***@db:5432/x: Connection refused"
    )
    assert connection_failure(TimeoutError()) == "timed out"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://user:pw@nats:4222", "nats://user:***@nats:4222"),
        ("nats://s3cret-token@nats:4222", "nats://***@nats:4222"),
        ("nats://a:b@n1:4222,nats://c:d@n2:4222", "nats://a:***@n1:4222,nats://c:***@n2:4222"),
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
        ("postgresql://app:p%40ss@db/x", "postgresql://app:***@db/x"),
    ],
)
def test_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_export_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "acme.jsonl"
    target.write_text("the previous export\n")
    with pytest.raises(RuntimeError), export_file(target) as write:
        write("half of it\n")
        raise RuntimeError("the connection dropped")
    assert target.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["acme.jsonl"]

    with export_file(target) as write:
        write("line 1\n")
        write("line 2\n")
    assert target.read_text() == "line 1\nline 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["acme.jsonl"]

    with pytest.raises(ReplayError, match=r"\.jsonl"), export_file(tmp_path / "acme.txt"):
        pass
    with pytest.raises(ReplayError, match=r"cannot write .*: No such file or directory"):
        with export_file(tmp_path / "missing" / "acme.jsonl"):
            pass


class Bus:
    """A JetStream stand-in: it acknowledges publishes, or refuses them (a store that cannot write)."""

    def __init__(self, refusing: bool) -> None:
        self.refusing, self.publishes = refusing, 0

    async def publish(self, subject: str, payload: bytes, **options: Any) -> SimpleNamespace:
        self.publishes += 1
        if self.refusing:
            raise nats.errors.TimeoutError
        return SimpleNamespace(seq=self.publishes)


class FullDatabase:
    def begin(self) -> Any:
        raise as_sqlalchemy_raises(asyncpg.DiskFullError("could not extend file"))

    connect = begin

    def execution_options(self, **options: Any) -> FullDatabase:
        return self


def event() -> EventEnvelope:
    return EventEnvelope(
        type="incident.note_added", tenant_id="t_1", aggregate_id="a", correlation_id="c", data={}
    )


def relay(bus: Bus) -> OutboxRelay:
    table = outbox_table(MetaData(schema="incidents"))
    return OutboxRelay(FullDatabase(), table, bus)  # type: ignore[arg-type]


async def test_after_the_bus_refused_an_event_commands_stop_waiting_on_it_for_a_while() -> None:
    bus = Bus(refusing=True)
    outbox = relay(bus)
    assert await outbox.publish_now([event()]) is None  # left in the outbox for the relay
    assert await outbox.publish_now([event()]) is None
    assert bus.publishes == 1, "the second command waited on the bus again"


async def test_a_published_event_is_a_success_even_if_marking_it_fails() -> None:
    # Committed and on the bus: the caller hears so; the relay marks the row later (the bus drops the
    # duplicate publish).
    assert await relay(Bus(refusing=False)).publish_now([event()]) == 1


class SlowDatabase:
    """Marks rows only once `gate` opens; records the sequences each marking statement marks."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.markings: list[list[int]] = []

    def execution_options(self, **options: Any) -> SlowDatabase:
        return self

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        marked: list[int] = []
        self.markings.append(marked)
        await self.gate.wait()

        async def execute(statement: Any, parameters: Any = None) -> None:
            marked.extend((parameters or {}).get("row_seqs", []))

        yield SimpleNamespace(execute=execute)


async def test_a_command_is_answered_before_its_outbox_row_is_marked_and_marks_are_batched() -> None:
    database = SlowDatabase()
    table = outbox_table(MetaData(schema="incidents"))
    outbox = OutboxRelay(database, table, Bus(refusing=False))  # type: ignore[arg-type]
    # Three commands answered while the database has not marked anything yet.
    answers = asyncio.gather(*(outbox.publish_now([event()]) for _ in range(3)))
    for _ in range(10):
        await asyncio.sleep(0)
    assert answers.done(), "a command waited for its outbox row to be marked"
    assert answers.result() == [1, 2, 3]
    database.gate.set()
    await outbox.flush_marks()
    assert sorted(seq for marked in database.markings for seq in marked) == [1, 2, 3]
    assert len(database.markings) < 3, "one marking per command"
    await outbox.stop()
