"""The streams on a nats-server of the test's own: a start never silently changes an existing
stream's replicas or limits (an operator's choice); `sre-copilot streams status` says how it
differs and `streams apply` changes it on purpose. NATS_URL may list several servers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from contracts.subjects import DLQ_STREAM, EVENTS_STREAM
from runtime.bus import connect, declare_streams, nats_servers
from runtime.settings import StreamSettings
from sre_copilot import embedded
from sre_copilot.cli import app


async def cli(command: str, url: str) -> Result:
    """The command as an operator runs it (it runs its own event loop: off this test's)."""
    argv = ["streams", command, "--nats-url", url]
    return await asyncio.to_thread(lambda: CliRunner().invoke(app, argv, env={"COLUMNS": "200"}))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[embedded.ServerProcess]:
    server = embedded.start_nats(tmp_path, durable=False)
    yield server
    server.stop()


async def test_a_start_leaves_an_operators_change_alone_until_streams_apply(
    nats_server: embedded.ServerProcess,
) -> None:
    nc = await connect(nats_server.url, "tests", reconnect=False)
    js = nc.jetstream()
    assert await declare_streams(js, StreamSettings()) == []  # created as declared
    # An operator raises the DLQ's count limit by hand.
    dlq = (await js.stream_info(DLQ_STREAM)).config
    await js.update_stream(dataclasses.replace(dlq, max_msgs=500_000))

    [drift] = await declare_streams(js, StreamSettings())  # the next start: reported, not undone
    assert drift.stream == DLQ_STREAM and drift.differences == {"max_msgs": (500_000, 100_000)}
    assert (await js.stream_info(DLQ_STREAM)).config.max_msgs == 500_000
    assert (await js.stream_info(EVENTS_STREAM)).config.num_replicas == 1

    status = await cli("status", nats_server.url)
    assert status.exit_code == 1, status.output
    assert "DLQ differs: max_msgs 500000 -> 100000" in status.output
    applied = await cli("apply", nats_server.url)
    assert applied.exit_code == 0, applied.output
    assert "DLQ changed: max_msgs" in applied.output
    assert (await js.stream_info(DLQ_STREAM)).config.max_msgs == 100_000
    clean = await cli("status", nats_server.url)
    assert clean.exit_code == 0 and "as this version declares" in clean.output
    await nc.close()


async def test_streams_status_names_a_missing_stream(nats_server: embedded.ServerProcess) -> None:
    result = await cli("status", nats_server.url)
    assert result.exit_code == 1
    assert "EVENTS differs: exists False -> True" in result.output


def test_stream_replicas_come_from_the_settings() -> None:
    from runtime.bus import stream_configs

    assert {c.num_replicas for c in stream_configs(StreamSettings(stream_replicas=3))} == {3}
    with pytest.raises(ValueError):
        StreamSettings(stream_replicas=0)


async def test_nats_url_may_list_several_servers(nats_server: embedded.ServerProcess) -> None:
    down = f"nats://127.0.0.1:{embedded.free_port()}"
    assert nats_servers(f" {down}, {nats_server.url} ") == [down, nats_server.url]
    nc = await connect(f"{down},{nats_server.url}", "tests", reconnect=False)
    try:
        assert nc.is_connected and nc.connected_url is not None
        assert nc.connected_url.port == int(nats_server.url.rsplit(":", 1)[1])
    finally:
        await nc.close()
    with pytest.raises(ValueError):
        nats_servers(" , ")
