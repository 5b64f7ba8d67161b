"""Group commit for small statements: calls that arrive while one batch is at the database wait for
the next and go in one statement together. Under load one round trip serves many callers; a caller
alone waits for nothing but one turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Batched(Generic[K, V]):
    """`await batched(key)` is `run([key, ...])[key]`, with the keys of every caller of the same
    moment in one `run`. A failing `run` fails each of its callers with its exception (each then
    retries or gives up as it would have alone)."""

    def __init__(self, run: Callable[[list[K]], Awaitable[Mapping[K, V]]], max_batch: int = 500) -> None:
        self._run, self.max_batch = run, max_batch
        self._pending: dict[K, list[asyncio.Future[V]]] = {}
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(future)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())
        return await future

    async def _work(self) -> None:
        try:
            await asyncio.sleep(0)  # the callers finishing in this same turn join the first batch
            while self._pending:
                keys = list(self._pending)[: self.max_batch]
                waiting = {key: self._pending.pop(key) for key in keys}
                try:
                    results = await self._run(keys)
                except Exception as exc:
                    for futures in waiting.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in waiting.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(results[key])
        finally:
            self._worker = None
