"""Claims due polls and runs them, as many at once as the worker has room for.

Each account sits in the ``polls`` set, scored by when its next poll is due (``subscriptions.store.polls``). Every
worker process runs this loop; claiming is atomic, so each due poll becomes exactly one claim, with its own token,
and the worker that claimed it runs it (``Poller.poll``). A poll that is never finished (its worker died) comes due
again when its claim's lease ends, and is claimed again under a new token.

A worker claims only what it has room for (``capacity`` polls under way at once, ``RELAY_POLL_CONCURRENCY``) and
in small batches, one after another while polls are due: workers take turns, and one whose CPU is saturated turns
more slowly and so takes less, leaving the rest to the others. Nothing waits in a job queue where its lease could
end before it starts.

When the due polls wait longer than :data:`BEHIND_AFTER_S` for a free slot or a turn, the worker says so once
(and once again when it has caught up), not at every poll: the account status and the metrics say by how much.
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
BATCH = 8  # claims taken at a time: small, so that workers take turns
BEHIND_AFTER_S = 2.0  # the oldest due poll waiting this long means this worker (or all of them) cannot keep up


class PollScheduler:
    def __init__(
        self,
        polls: Polls,
        run: Callable[[Claim], Awaitable[None]],
        *,
        clock: Callable[[], datetime],
        lease_s: float,
        capacity: int = 200,
        tick_s: float = 0.2,
        batch: int = BATCH,
        outage: RedisOutage | None = None,
    ) -> None:
        self.polls = polls
        self.run_poll = run
        self.clock = clock
        self.lease_s = lease_s
        self.capacity = capacity
        self.tick_s = tick_s
        self.batch = batch
        self.outage = outage or RedisOutage()
        self.running: set[asyncio.Task[None]] = set()
        self.behind = False  # said once: the oldest due poll waits over BEHIND_AFTER_S
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            claimed, due_ms = 0, None
            try:
                claimed, due_ms = await self._claim_batch()
                self.outage.ok()
            except Exception as error:  # Redis away (or a bug): keep going, it reconnects by itself
                if not self.outage.failed(error, "scheduling polls"):
                    log.exception("scheduling polls failed; trying again")
            if claimed == self.batch:
                await asyncio.sleep(0)  # more may be due: let the polls just started, and other workers, have a turn
                continue
            if due_ms is None and claimed == 0:
                due_ms = await self._next_due_ms()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._until_next_s(due_ms))

    async def _claim_batch(self) -> tuple[int, int | None]:
        """Claim and start up to a batch of due polls, as many as there is room for: how many were, and when the
        earliest account left is due (``None``: not known, or none)."""
        room = min(self.batch, self.capacity - len(self.running))
        if room <= 0:
            self._room.clear()
            await self._room.wait()  # a poll ends: then look again
            return 0, None
        now_ms, lease_ms = ms(self.clock()), int(self.lease_s * 1000)
        claims, due_ms = await self.polls.claim_next(now_ms=now_ms, lease_ms=lease_ms, limit=room)
        for claim in claims:
            task = asyncio.create_task(self._poll(claim), name=f"poll:{claim.code}")
            self.running.add(task)
        return len(claims), due_ms

    async def _poll(self, claim: Claim) -> None:
        try:
            await self.run_poll(claim)
        except Exception:  # one account's failure is its own (the poller records what it can)
            log.exception("poll of %s failed", claim.code)
        finally:
            self.running.discard(asyncio.current_task())
            self._room.set()

    async def _next_due_ms(self) -> int | None:
        try:
            return await self.polls.next_due_ms()
        except Exception:  # Redis away: the next claim says so
            return None

    def _until_next_s(self, due_ms: int | None) -> float:
        """How long to wait before looking again: until the next poll (``due_ms``) is due, at most ``tick_s``; says
        once when due polls have been waiting too long, and once when they no longer do."""
        if due_ms is None:
            self._caught_up()
            return self.tick_s
        waited_s = (ms(self.clock()) - due_ms) / 1000
        if waited_s > BEHIND_AFTER_S:
            self._falling_behind(waited_s)
        elif waited_s <= 0:
            self._caught_up()
        return min(self.tick_s, max(MIN_WAIT_S, -waited_s))

    def _falling_behind(self, waited_s: float) -> None:
        if not self.behind:
            self.behind = True
            log.warning(
                "polls are starting late: the oldest due poll has waited %.1f s (this worker runs %d of at most %d "
                "at once); the workers cannot keep the accounts' intervals: add a worker "
                "(docs/operations.md, How many accounts a worker carries)",
                waited_s,
                len(self.running),
                self.capacity,
            )

    def _caught_up(self) -> None:
        if self.behind:
            self.behind = False
            log.info("polls start on time again")

    def stop(self) -> None:
        self._stopping.set()
        self._room.set()

    async def drain(self, within_s: float) -> None:
        """Wait for the polls under way to end, at most ``within_s``; then stop them (each one's claim lease ends
        and another worker polls that account again, from the same cursors)."""
        if not self.running:
            return
        _, pending = await asyncio.wait(set(self.running), timeout=within_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
