"""Rate limits kept in auth's database, so every replica counts the same attempts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import db
from auth.domain import Limit, advisory_lock_id, retry_after
from contracts.commands import CommandFailed, ErrorCode

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 300.0
# Expired refresh tokens are kept a little, so that a late reuse still finds (and revokes) its family.
KEEP_EXPIRED_TOKENS = timedelta(days=1)

Check = tuple[str, str, Limit]  # scope, key, limit


class RateLimiter:
    def __init__(self, engine: AsyncEngine, longest_window: timedelta) -> None:
        self.engine, self.longest_window = engine, longest_window
        self._purged_at = time.monotonic()

    async def acquire(self, checks: Sequence[Check]) -> list[int]:
        """Count one attempt against each (scope, key), or refuse with a 429 (`retry_after` in the
        details) if any of them is used up. Returns the recorded attempts, which `forget` can undo
        when the attempt turns out not to count (a successful login)."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            # The lock makes check-and-record atomic: parallel attempts cannot all squeeze under it.
            await db.lock_attempt_keys(conn, [advisory_lock_id(scope, key) for scope, key, _ in checks])
            waits = []
            for scope, key, limit in checks:
                recent = await db.recent_attempts(conn, scope, key, now - limit.window, limit.max_attempts)
                wait = retry_after(recent, now, limit)
                if wait is not None:
                    waits.append(wait)
                    log.warning("rate_limited", scope=scope, retry_after=wait)
            if waits:
                raise CommandFailed(
                    ErrorCode.RATE_LIMITED,
                    "too many attempts: try again later",
                    {"retry_after": max(waits)},
                )
            ids = [await db.record_attempt(conn, scope, key, now) for scope, key, _ in checks]
        await self._purge_now_and_then()
        return ids

    async def forget(self, ids: list[int]) -> None:
        async with self.engine.begin() as conn:
            await db.forget_attempts(conn, ids)

    async def clear(self, scope: str, key: str) -> None:
        async with self.engine.begin() as conn:
            await db.clear_attempts(conn, scope, key)

    async def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY_SECONDS:
            return
        self._purged_at = time.monotonic()
        now = datetime.now(UTC)
        try:
            async with self.engine.begin() as conn:
                await db.purge_expired(conn, now - self.longest_window, now - KEEP_EXPIRED_TOKENS)
        except Exception as exc:
            log.warning("auth_purge_failed", error=str(exc))
