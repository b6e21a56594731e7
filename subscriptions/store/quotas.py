"""How much a tenant may ask of the relay in a while: a sliding window of uses in Redis, shared by every process.

Each use is a member of a sorted set scored by its time; uses older than the window fall out. ``take`` records a
use if the window has room and otherwise says how long until the oldest use leaves it, so the caller can answer
429 with a ``Retry-After`` that is true.
"""

import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from subscriptions.store.lua import Script

_TAKE = Script.beside(__file__, "sliding_window.lua")
_TAKE_MANY = Script.beside(__file__, "sliding_window_reserve.lua")


@dataclass(frozen=True)
class Use:
    """One use taken (``wait_ms`` 0; ``member`` names it, to give it back), or refused: ``wait_ms`` until a use
    leaves the window (or the window's pause ends)."""

    member: str
    wait_ms: int

    @property
    def refused(self) -> bool:
        return self.wait_ms > 0


class SlidingWindow:
    """At most ``limit`` uses in any ``window_ms``, counted at ``key``; none at all while ``pause_key`` exists (a
    pause with a time to live, as Brightpearl's throttle is kept: see ``workers.budget``)."""

    def __init__(self, redis: "Redis", key: str, *, limit: int, window_ms: int, pause_key: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.limit = limit
        self.window_ms = window_ms
        self.pause_key = pause_key

    async def take(self, now_ms: int) -> Use:
        """Record one use now; or, when the window is full (or paused), record nothing and say how many
        milliseconds until a use leaves it (or the pause ends)."""
        member = f"{now_ms}-{secrets.token_hex(4)}"
        script_keys = [self.key] if self.pause_key is None else [self.key, self.pause_key]
        args = {"now_ms": now_ms, "window_ms": self.window_ms, "limit": self.limit, "member": member}
        return Use(member, int(cast(int, await _TAKE.run(self.redis, script_keys, args))))

    async def take_many(self, now_ms: int, count: int, *, stamp_ms: int | None = None) -> list[str]:
        """Record up to ``count`` uses at once, as many as the window has room for (none while it is paused),
        stamped at ``stamp_ms`` (now, unless given: later counts them for longer); the members naming them."""
        stamp = now_ms if stamp_ms is None else max(now_ms, stamp_ms)
        members = [f"{stamp}-{secrets.token_hex(4)}" for _ in range(count)]
        if not members:
            return []
        script_keys = [self.key] if self.pause_key is None else [self.key, self.pause_key]
        args = {
            "now_ms": now_ms,
            "stamp_ms": stamp,
            "window_ms": self.window_ms,
            "limit": self.limit,
            "members": members,
        }
        taken = int(cast(int, await _TAKE_MANY.run(self.redis, script_keys, args)))
        return members[:taken]

    async def give_back(self, use: Use) -> None:
        """Forget a use that turned out not to count (a login whose token was good)."""
        await self.redis.zrem(self.key, use.member)
