"""Hints in Redis: ids Brightpearl's native webhooks named, waiting for a targeted read, and what is known of them.

The API process accepts a hint (:meth:`Hints.offer`): within the account's hints a minute, its ids join the
resource's queue (a set: a repeated hint costs nothing more), the time each was hinted is kept for a quarter of
an hour (:meth:`Hints.last_hinted`, how polls tell a change hints announced from one they missed), and the
account's poll is brought forward by a few tens of milliseconds, so that hints arriving together are read
together. The poll job of the account takes the ids (:meth:`Hints.take`) under its claim, so targeted reads are
fenced like every other write of a poll, and a poll under way looks for hints before it ends (``poll_plan.lua``
keeps an account with hints pending due at once). A hint naming more ids than a read should take, or arriving
while too many wait, asks for a poll of the whole resource instead (:meth:`Hints.take_overflow`).

Nothing here moves a cursor: hints only say where to look.
"""

import secrets
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.lua import Script

OFFER = Script.beside(__file__, "hint_offer.lua")
TAKE = Script.beside(__file__, "hint_take.lua")

SEEN_MS = 15 * 60_000  # how long the time of a hint is kept, for judging whether polls found changes hints missed
IDS_TTL_MS = 3_600_000  # ids never taken (the account's polling stopped) go after an hour
WINDOW_MS = 60_000


@dataclass(frozen=True)
class HintLimits:
    """How much one account's hints may ask: hints a minute, ids waiting per resource, and how long a hint waits
    for others to be read with it."""

    per_minute: int = 600
    max_pending: int = 5_000
    coalesce_ms: int = 30


@dataclass(frozen=True)
class Offered:
    """The ids one hint names for one resource (``overflow``: it named too many; poll the resource whole)."""

    resource: str
    ids: Sequence[int]
    overflow: bool = False


class Hints:
    """The hints of every account, over one Redis connection pool (``decode_responses=True``)."""

    def __init__(self, redis: "Redis", limits: HintLimits | None = None) -> None:
        self.redis = redis
        self.limits = limits or HintLimits()

    async def offer(
        self, code: str, groups: Sequence[Offered], *, now_ms: int, at: str, coalesce_ms: int | None = None
    ) -> Literal["ok", "limited"]:
        """Queue a hint's ids for the account's next poll, due ``coalesce_ms`` from now (the limits' own when not
        given; ``at``: now, as the status shows it); ``"limited"``, with nothing written, when the account's hints
        this minute are spent."""
        keys = [
            keyspace.POLLS,
            keyspace.poll_owner(code),
            keyspace.account_status(code),
            keyspace.hint_rate(code),
            keyspace.hint_pending(code),
            keyspace.hint_overflow(code),
        ]
        for group in groups:
            keys += [keyspace.hint_ids(code, group.resource), keyspace.hinted(code, group.resource)]
        args = {
            "code": code,
            "now_ms": now_ms,
            "at": at,
            "hint": f"{now_ms}:{secrets.token_hex(4)}",
            "coalesce_ms": self.limits.coalesce_ms if coalesce_ms is None else coalesce_ms,
            "per_minute": self.limits.per_minute,
            "max_pending": self.limits.max_pending,
            "seen_ms": SEEN_MS,
            "ids_ttl_ms": IDS_TTL_MS,
            "groups": [{"resource": g.resource, "ids": list(g.ids), "overflow": g.overflow} for g in groups],
        }
        return cast(Literal["ok", "limited"], await OFFER.run(self.redis, keys, args))

    async def retry_after_s(self, code: str, *, now_ms: int) -> int:
        """Whole seconds until the account's oldest hint of the last minute leaves its window: when a hint refused
        as ``"limited"`` may be accepted (what a 429's Retry-After says)."""
        oldest = cast(list[tuple[str, float]], await self.redis.zrange(keyspace.hint_rate(code), 0, 0, withscores=True))
        if not oldest:
            return 1
        return max(1, -(-(int(oldest[0][1]) + WINDOW_MS - now_ms) // 1000))

    async def pending(self, code: str) -> tuple[set[str], set[str]]:
        """The resources with hinted ids waiting, and those a hint asked to poll whole: one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keyspace.hint_pending(code))
            pipe.smembers(keyspace.hint_overflow(code))
            waiting, whole = await pipe.execute()
        return set(waiting), set(whole)

    async def take(self, code: str, resource: str, count: int) -> list[int]:
        """Up to ``count`` of a resource's hinted ids, no longer waiting once taken."""
        keys = [keyspace.hint_ids(code, resource), keyspace.hint_pending(code)]
        taken = await TAKE.run(self.redis, keys, {"resource": resource, "count": count})
        return sorted(int(i) for i in taken or [])

    async def take_overflow(self, code: str) -> set[str]:
        """The resources a hint asked to poll whole, no longer asked once taken."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(keyspace.hint_overflow(code))
            pipe.delete(keyspace.hint_overflow(code))
            whole, _ = await pipe.execute()
        return set(whole)

    async def last_hinted(self, code: str, resource: str, ids: Sequence[int]) -> Mapping[int, int]:
        """When each of ``ids`` was last hinted (Unix ms), for those hinted in the last quarter of an hour."""
        if not ids:
            return {}
        scores = await cast(
            Awaitable[list[float | None]], self.redis.zmscore(keyspace.hinted(code, resource), [str(i) for i in ids])
        )
        return {i: int(s) for i, s in zip(ids, scores, strict=True) if s is not None}

    async def spent(self, code: str, requests: int, *, now_ms: int) -> None:
        """Count ``requests`` Brightpearl requests made for hints (the account shows them beside its polls')."""
        if requests <= 0:
            return
        key = keyspace.hint_requests(code)
        members = {f"{now_ms}:{secrets.token_hex(4)}:{n}": now_ms for n in range(requests)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now_ms - WINDOW_MS)
            pipe.zadd(key, members)
            pipe.pexpire(key, WINDOW_MS)
            await pipe.execute()

    async def spent_last_minute(self, code: str, *, now_ms: int) -> int:
        """Brightpearl requests made for the account's hints in the last minute."""
        return cast(int, await self.redis.zcount(keyspace.hint_requests(code), now_ms - WINDOW_MS, "+inf"))

    async def forget(self, code: str) -> None:
        """Remove every hint kept of an account (it was removed, or its hints turned off)."""
        keys = [key async for key in self.redis.scan_iter(match=keyspace.hint_keys(code), count=1000)]
        if keys:
            await self.redis.unlink(*keys)
