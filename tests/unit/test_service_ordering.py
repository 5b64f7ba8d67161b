"""Commands handled concurrently by one replica: one aggregate's in arrival order, others alongside."""

from __future__ import annotations

import asyncio

from runtime.service import KeyedLocks


async def test_one_keys_holders_run_in_arrival_order_while_other_keys_run_alongside() -> None:
    locks = KeyedLocks()
    ran: list[str] = []
    release = asyncio.Event()

    async def work(key: str, name: str) -> None:
        async with locks.hold(key):
            ran.append(f"{name} starts")
            if name == "a1":
                await release.wait()  # the first of aggregate a is slow
            ran.append(f"{name} ends")

    tasks = [asyncio.create_task(work(k, n)) for k, n in (("a", "a1"), ("a", "a2"), ("b", "b1"), ("a", "a3"))]
    for _ in range(10):
        await asyncio.sleep(0)
    # b ran to its end while a's first held a; a's others wait behind it.
    assert ran == ["a1 starts", "b1 starts", "b1 ends"]
    release.set()
    await asyncio.gather(*tasks)
    assert ran[3:] == ["a1 ends", "a2 starts", "a2 ends", "a3 starts", "a3 ends"]
    assert len(locks) == 0, "a lock outlived its last holder"
