"""The relay's share of an account's Brightpearl requests, kept in Redis so every process spends one budget.

Brightpearl allows 200 requests per rolling minute per account, shared with every other integration. The
relay takes a share of it (``RELAY_BUDGET_SHARE``, default half) and paces itself inside that share, so in
steady state it never causes a throttle itself. When Brightpearl throttles anyway (another integration drained
the account), the client records a pause here that every process honours until the throttle period ends.

The budget is a :class:`~subscriptions.store.quotas.SlidingWindow` of the account's requests in the last minute (the
one sliding window tenants' quotas use too), with the pause as the window's pause key.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, cast

from redis.asyncio import Redis

from subscriptions.core.errors import RelayError
from subscriptions.store import keyspace
from subscriptions.store.quotas import SlidingWindow

BRIGHTPEARL_REQUESTS_PER_MINUTE = 200
WINDOW_MS = 60_000

Priority = Literal["high", "normal", "low"]
PRIORITY_SHARE: dict[Priority, float] = {"high": 1.0, "normal": 0.9, "low": 0.5}  # of the relay's own budget


def requests_per_minute(share: float) -> int:
    """The relay's requests a minute for a share of Brightpearl's 200 (at least one)."""
    return max(1, int(BRIGHTPEARL_REQUESTS_PER_MINUTE * share))


class BudgetExhausted(RelayError):
    """No request could be made within the wait the caller allowed."""

    def __init__(self, wait_ms: int) -> None:
        self.wait_ms = wait_ms
        super().__init__(f"the Brightpearl request budget frees up in {wait_ms} ms")


class RequestBudget:
    """One account's request budget: ``acquire`` before every Brightpearl request."""

    def __init__(
        self,
        redis: "Redis",
        account: str,
        per_minute: int,
        *,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.redis = redis
        self.account = account
        self.per_minute = per_minute
        self.now_ms = now_ms
        self.sleep = sleep

    async def acquire(self, *, max_wait_s: float, priority: Priority = "high") -> None:
        """Take one request from the budget, waiting up to ``max_wait_s`` for one to free up; raises
        :class:`BudgetExhausted` if none does. Lower priorities may fill less of the minute, so what matters
        most (new orders) always finds room left by what can wait (a reconciliation sweep)."""
        window = self._window(priority)
        waited_ms = 0
        while True:
            wait_ms = (await window.take(self.now_ms())).wait_ms
            if wait_ms <= 0:
                return
            if waited_ms + wait_ms > max_wait_s * 1000:
                raise BudgetExhausted(wait_ms)
            await self.sleep(wait_ms / 1000)
            waited_ms += wait_ms

    def _window(self, priority: Priority) -> SlidingWindow:
        """The requests of the last minute as a priority sees them: the same window, of which it may fill its share;
        nothing while Brightpearl's pause lasts."""
        limit = max(1, int(self.per_minute * PRIORITY_SHARE[priority]))
        return SlidingWindow(
            self.redis,
            keyspace.budget(self.account),
            limit=limit,
            window_ms=WINDOW_MS,
            pause_key=keyspace.budget_pause(self.account),
        )

    async def pause(self, wait_ms: int) -> None:
        """Hold every process's requests for ``wait_ms`` (Brightpearl throttled the account)."""
        if wait_ms > 0:
            await self.redis.set(keyspace.budget_pause(self.account), "1", px=wait_ms)

    async def used_last_minute(self) -> int:
        """Requests the relay made on this account in the last minute."""
        now = self.now_ms()
        return cast(int, await self.redis.zcount(keyspace.budget(self.account), now - WINDOW_MS, "+inf"))


class Budgets:
    """Every account's request budget, at ``per_minute`` requests, on one clock: the one place a process makes
    a :class:`RequestBudget` (the poller and the API each hold one)."""

    def __init__(self, redis: "Redis", per_minute: int, clock: Callable[[], datetime]) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def of(self, code: str) -> RequestBudget:
        """The request budget of account ``code``."""
        return RequestBudget(self.redis, code, self.per_minute, now_ms=self.now_ms)
