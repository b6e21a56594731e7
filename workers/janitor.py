"""The retention janitor: every minute, one worker removes the events and deliveries that have expired.

Every worker process runs this loop; a Redis lock (``SET NX EX``) lets one of them sweep at a time. The lock
is kept alive while the sweep runs and then left to expire rather than released, so across the whole fleet a
sweep starts at most once an interval, however many workers there are. A worker that dies mid-sweep leaves
nothing half done (each page is one transaction); another takes over when the lock expires.
"""

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import cast

from redis.asyncio import Redis

from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.lua import Script
from subscriptions.store.retention import RetentionCounts, sweep
from workers.metrics import Metrics
from workers.outage import RedisOutage

log = logging.getLogger(__name__)

_EXTEND_LOCK = Script.beside(__file__, "extend_lock.lua")


class Janitor:
    """Sweeps expired records every ``interval_s``, on one worker at a time."""

    def __init__(
        self,
        redis: "Redis",
        metrics: Metrics,
        *,
        retention_s: float,
        clock: Callable[[], datetime],
        interval_s: float = 60.0,
        batch: int = 500,
        outage: RedisOutage | None = None,
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self.retention_s = retention_s
        self.clock = clock
        self.interval_s = interval_s
        self.batch = batch
        self.outage = outage or RedisOutage()
        self._stopping = asyncio.Event()
        self._sweeping: asyncio.Task[RetentionCounts | None] | None = None

    async def run(self) -> None:
        """Sweep, wait ``interval_s``, repeat until :meth:`stop`."""
        while not self._stopping.is_set():
            self._sweeping = asyncio.create_task(self.sweep_once(), name="retention-sweep")
            try:
                await self._sweeping
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise
            except Exception as error:  # Redis away (or a bug): keep going, it reconnects by itself
                if not self.outage.failed(error, "sweeping old deliveries"):
                    log.exception("retention sweep failed; trying again in %.0f s", self.interval_s)
            finally:
                self._sweeping = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)

    def stop(self) -> None:
        """End the loop; a sweep under way is cancelled (each page it wrote is whole, the rest waits)."""
        self._stopping.set()
        if self._sweeping is not None:
            self._sweeping.cancel()

    async def sweep_once(self) -> RetentionCounts | None:
        """One sweep if this process gets the lock (``None`` if another has it or swept within the interval)."""
        token = secrets.token_hex(8)
        lock_s = max(1, math.ceil(self.interval_s))
        if not await self.redis.set(keyspace.JANITOR_LOCK, token, nx=True, ex=lock_s):
            return None
        keeper = asyncio.create_task(self._keep_lock(token, lock_s), name="retention-lock")
        try:
            cutoff_ms = ms(self.clock()) - int(self.retention_s * 1000)
            counts = await sweep(self.redis, cutoff_ms, self.batch)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        for kind, removed in (("delivery", counts.deliveries), ("event", counts.events), ("dangling", counts.dangling)):
            if removed:
                self.metrics.retention_removed.labels(kind).inc(removed)
        if counts.total():
            log.info(
                "retention: removed %d deliveries, %d events and %d dangling index entries",
                counts.deliveries,
                counts.events,
                counts.dangling,
            )
        return counts

    async def _keep_lock(self, token: str, lock_s: int) -> None:
        """Push the lock's expiry forward while the sweep runs, so no other worker starts one beside it."""
        while True:
            await asyncio.sleep(lock_s / 3)
            args = {"token": token, "ttl_ms": lock_s * 1000}
            if not cast(int, await _EXTEND_LOCK.run(self.redis, [keyspace.JANITOR_LOCK], args)):
                return  # lost it (Redis restarted, say): the sweep is harmless to run twice, so let it finish
