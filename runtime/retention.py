"""Bounded growth: delete what a retention setting lets go, in short batches, every so often.

Each batch is one short transaction that deletes at most `batch` rows and skips rows another
transaction holds, so pruning never waits on (nor stalls) the work that writes those tables, and
several replicas pruning at once share the rows rather than queue on them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import is_unavailable

log = structlog.get_logger(__name__)

PRUNE_BATCH = 1_000


async def delete_in_batches(
    engine: AsyncEngine, table: Table, condition: ColumnElement[bool], batch: int = PRUNE_BATCH
) -> int:
    """Delete every row of `table` matching `condition`, `batch` rows per transaction; returns how
    many. `DELETE ... WHERE pk IN (SELECT pk ... LIMIT n FOR UPDATE SKIP LOCKED)`."""
    key = list(table.primary_key.columns)
    chosen = select(*key).where(condition).limit(batch).with_for_update(skip_locked=True)
    target: ColumnElement[Any] = key[0] if len(key) == 1 else tuple_(*key)
    statement = delete(table).where(target.in_(chosen))
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(statement)).rowcount or 0
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let the service's own work in between two batches


class Periodic:
    """Run `work` in the background every `every_seconds`, the first time after a random part of
    that interval (so replicas started together do not prune together). A failure is logged and
    tried again at the next turn."""

    def __init__(self, name: str, every_seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name, self.every, self.work = name, every_seconds, work
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self.every))  # noqa: S311 - spreading load, not a secret
        while True:
            try:
                result = await self.work()
                if result:
                    log.info("pruned", task=self.name, rows=result)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "prune_failed",
                    task=self.name,
                    error=str(exc),
                    database_unavailable=is_unavailable(exc),
                )
            await asyncio.sleep(self.every)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
