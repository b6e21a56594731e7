"""Turns due polls into arq jobs.

Each account sits in the ``polls`` set, scored by when its next poll is due (``subscriptions.store.polls``). Every
worker process runs this loop; claiming is atomic, so each due poll becomes exactly one claim, with its own
token, and one ``poll`` job carrying it, which any worker may run. A poll that is never finished (its worker
died) comes due again when its claim's lease ends, and is claimed again under a new token.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from subscriptions.core.times import ms
from subscriptions.store.polls import Claim, Polls
from workers.outage import RedisOutage

log = logging.getLogger(__name__)

MIN_WAIT_S = 0.005


class PollScheduler:
    def __init__(
        self,
        polls: Polls,
        enqueue: Callable[[Claim], Awaitable[None]],
        *,
        clock: Callable[[], datetime],
        lease_s: float,
        tick_s: float = 0.2,
        outage: RedisOutage | None = None,
    ) -> None:
        self.polls = polls
        self.enqueue = enqueue
        self.clock = clock
        self.lease_s = lease_s
        self.tick_s = tick_s
        self.outage = outage or RedisOutage()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                now_ms, lease_ms = ms(self.clock()), int(self.lease_s * 1000)
                for claim in await self.polls.claim(now_ms=now_ms, lease_ms=lease_ms, limit=100):
                    await self.enqueue(claim)
                self.outage.ok()
            except Exception as error:  # Redis away (or a bug): keep going, it reconnects by itself
                if not self.outage.failed(error, "scheduling polls"):
                    log.exception("scheduling polls failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), await self._until_next_s())

    async def _until_next_s(self) -> float:
        """How long to wait before looking again: until the next poll is due, at most ``tick_s``."""
        try:
            due_ms = await self.polls.next_due_ms()
        except Exception:  # Redis away: the next claim says so
            return self.tick_s
        if due_ms is None:
            return self.tick_s
        return min(self.tick_s, max(MIN_WAIT_S, (due_ms - ms(self.clock())) / 1000))

    def stop(self) -> None:
        self._stopping.set()
