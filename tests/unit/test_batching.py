"""runtime.batching.Batched: callers of the same moment share one run; each gets its own answer, and a
failed run fails each of its callers."""

from __future__ import annotations

import asyncio

import pytest

from runtime.batching import Batched


async def test_callers_of_the_same_moment_share_one_run_and_later_ones_wait_for_the_next() -> None:
    runs: list[list[int]] = []
    gate = asyncio.Event()

    async def run(keys: list[int]) -> dict[int, int]:
        runs.append(keys)
        await gate.wait()
        return {k: k * 10 for k in keys}

    batched: Batched[int, int] = Batched(run)
    first = [asyncio.create_task(batched(k)) for k in (1, 2, 2)]
    await asyncio.sleep(0.01)
    assert runs == [[1, 2]]  # one run, the repeated key once
    later = [asyncio.create_task(batched(k)) for k in (3, 4)]  # while the first run is at the database
    await asyncio.sleep(0.01)
    assert runs == [[1, 2]]
    gate.set()
    assert await asyncio.gather(*first) == [10, 20, 20]
    assert await asyncio.gather(*later) == [30, 40]
    assert runs == [[1, 2], [3, 4]]
    assert await batched(5) == 50  # alone, after the worker ended
    assert runs[-1] == [5]


async def test_a_failed_run_fails_its_callers_and_the_next_run_is_unaffected() -> None:
    calls = 0

    async def run(keys: list[str]) -> dict[str, bool]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return dict.fromkeys(keys, True)

    batched: Batched[str, bool] = Batched(run)
    failed = await asyncio.gather(batched("a"), batched("b"), return_exceptions=True)
    assert [type(f) for f in failed] == [ConnectionError, ConnectionError]
    assert await batched("a") is True


async def test_a_batch_holds_at_most_max_batch_keys() -> None:
    runs: list[list[int]] = []

    async def run(keys: list[int]) -> dict[int, None]:
        runs.append(keys)
        return dict.fromkeys(keys)

    batched: Batched[int, None] = Batched(run, max_batch=2)
    await asyncio.gather(*(batched(k) for k in range(5)))
    assert runs == [[0, 1], [2, 3], [4]]


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    gate = asyncio.Event()

    async def run(keys: list[int]) -> dict[int, int]:
        await gate.wait()
        return {k: k for k in keys}

    batched: Batched[int, int] = Batched(run)
    gone, staying = asyncio.create_task(batched(1)), asyncio.create_task(batched(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    gate.set()
    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await gone
