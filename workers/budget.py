"""The relay's share of an account's Brightpearl requests, kept in Redis so every process spends one budget.

Brightpearl allows 200 requests per rolling minute per account, shared with every other integration. The
relay takes a share of it (``RELAY_BUDGET_SHARE``, default half) and paces itself inside that share, so in
steady state it never causes a throttle itself. When Brightpearl throttles anyway (another integration drained
the account), the client records a pause here that every process honours until the throttle period ends.

The budget is a :class:`~subscriptions.store.quotas.SlidingWindow` of the account's requests in the last minute (the
one sliding window tenants' quotas use too), with the pause as the window's pause key.

Other apps share Brightpearl's pool (every private app of an account draws on the same 200), so the relay's own
pacing is not enough: every answer says how many requests the pool has left (``brightpearl-requests-remaining``)
and when the next throttle period begins (``brightpearl-next-throttle-period``). When fewer than
:data:`PACING_RESERVE` are left, :func:`pacing_pause_ms` spreads what is left over the time until the period
ends, and the client records that as a pause every process honours, before Brightpearl answers 503.
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

PACING_RESERVE = 30  # tap-brightpearl sleeps when fewer than 30 remain (API.md section 3)
DEFAULT_PERIOD_MS = 5_000  # when an answer gives the remaining count without the period
MAX_PERIOD_MS = 60_000  # Brightpearl's periods are under a minute

Priority = Literal["high", "normal", "low"]
PRIORITY_SHARE: dict[Priority, float] = {"high": 1.0, "normal": 0.9, "low": 0.5}  # of the relay's own budget
# A poll reserves the requests it expects (its searches) in one call at its first request; what it reserved serves
# its requests for this long (stamped this long ahead, so counted a little longer than they last, never shorter).
RESERVATION_MS = 2_000


def requests_per_minute(share: float) -> int:
    """The relay's requests a minute for a share of Brightpearl's 200 (at least one)."""
    return max(1, int(BRIGHTPEARL_REQUESTS_PER_MINUTE * share))


def pacing_pause_ms(requests_remaining: int, next_throttle_period_ms: int | None, own_left: int) -> int:
    """How long every process holds off after an answer that says ``requests_remaining`` are left in the account's
    pool until ``next_throttle_period_ms``, when the relay's own budget still has ``own_left`` this minute.

    Nothing while at least :data:`PACING_RESERVE` are left, or while the pool holds at least what the relay may
    still spend (its own budget stops it first: others are not draining the pool). Otherwise the period is
    shared among the requests left (one more than left, so the last is not spent the moment the pool would refuse
    it), the whole period when none are left."""
    if requests_remaining >= PACING_RESERVE or requests_remaining >= own_left:
        return 0
    period_ms = DEFAULT_PERIOD_MS if next_throttle_period_ms is None else next_throttle_period_ms
    period_ms = min(MAX_PERIOD_MS, max(0, period_ms))
    return period_ms // (max(0, requests_remaining) + 1)


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
        self._expected = 0  # requests the poll expects to make: reserved at once at its first request
        self._reserved: list[str] = []  # uses reserved and not spent yet
        self._reserved_until_ms = 0
        self._dropped: list[str] = []  # reserved, then no longer to be spent (a pause came): to give back

    def expect(self, requests: int) -> None:
        """Say how many requests are about to be made (a poll's searches, from what its polls cost before): the
        first request (not of low priority) reserves that many uses at once, and the next ones spend them, one
        Redis call for all rather than one each. What is not spent is given back (:meth:`unspent`)."""
        self._expected = max(0, requests)

    def unspent(self) -> list[str]:
        """The reserved uses not spent, to give back (``Polls.save`` does, as the poll ends); forgotten here."""
        left = self._reserved + self._dropped
        self._reserved, self._dropped = [], []
        return left

    async def acquire(self, *, max_wait_s: float, priority: Priority = "high") -> None:
        """Take one request from the budget, waiting up to ``max_wait_s`` for one to free up; raises
        :class:`BudgetExhausted` if none does. Lower priorities may fill less of the minute, so what matters
        most (new orders) always finds room left by what can wait (a reconciliation sweep). A use reserved
        (:meth:`expect`) serves a request of high or normal priority at once, while the reservation lasts."""
        if priority != "low" and await self._spend_reserved():
            return
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

    async def _spend_reserved(self) -> bool:
        """Spend a reserved use, reserving what the poll expects first if it has not yet; False when there is
        none to spend (none expected, the window had no room, or the reservation ran out or lapsed)."""
        if self._expected > 0:
            count, self._expected = self._expected, 0
            now_ms = self.now_ms()
            window = self._window("normal")
            self._reserved = await window.take_many(now_ms, count, stamp_ms=now_ms + RESERVATION_MS)
            self._reserved_until_ms = now_ms + RESERVATION_MS
        if self._reserved and self.now_ms() >= self._reserved_until_ms:
            self._drop_reserved()
        if not self._reserved:
            return False
        self._reserved.pop()
        return True

    def _drop_reserved(self) -> None:
        self._dropped += self._reserved
        self._reserved = []

    async def pause(self, wait_ms: int) -> None:
        """Hold every process's requests for ``wait_ms`` (Brightpearl throttled the account)."""
        self._drop_reserved()  # the pause holds this poll's requests too
        if wait_ms > 0:
            await self.redis.set(keyspace.budget_pause(self.account), "1", px=wait_ms)

    async def pace(self, requests_remaining: int, next_throttle_period_ms: int | None) -> int:
        """Hold every process off as :func:`pacing_pause_ms` says after an answer showing the account's pool;
        the pause in ms. Reads the relay's own use only when the pool runs low."""
        if requests_remaining >= PACING_RESERVE:
            return 0
        own_left = self.per_minute - await self.used_last_minute()
        pause_ms = pacing_pause_ms(requests_remaining, next_throttle_period_ms, own_left)
        await self.pause_at_least(pause_ms)
        return pause_ms

    async def pause_at_least(self, wait_ms: int) -> None:
        """Hold every process's requests for ``wait_ms`` unless a longer pause already holds them (pacing must not
        cut short a throttle's pause)."""
        if wait_ms <= 0:
            return
        self._drop_reserved()
        key = keyspace.budget_pause(self.account)
        if cast(int, await self.redis.pttl(key)) < wait_ms:
            await self.redis.set(key, "1", px=wait_ms)

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

    def of(self, code: str, per_minute: int | None = None) -> RequestBudget:
        """The request budget of account ``code``, at ``per_minute`` when it is not the usual (an OAuth account's)."""
        return RequestBudget(self.redis, code, per_minute or self.per_minute, now_ms=self.now_ms)
