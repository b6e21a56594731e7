"""How much a tenant may ask of the relay in a while: a sliding window of uses in Redis, shared by every process.

Each use is a member of a sorted set scored by its time; uses older than the window fall out. ``take`` records a
use if the window has room and otherwise says how long until the oldest use leaves it, so the caller can answer
429 with a ``Retry-After`` that is true.
"""

import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

_TAKE_SCRIPT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@dataclass(frozen=True)
class Use:
    """One use taken (``wait_ms`` 0; ``member`` names it, to give it back), or refused: ``wait_ms`` until a use
    leaves the window."""

    member: str
    wait_ms: int

    @property
    def refused(self) -> bool:
        return self.wait_ms > 0


class SlidingWindow:
    """At most ``limit`` uses in any ``window_ms``, counted at ``key``."""

    def __init__(self, redis: "Redis", key: str, *, limit: int, window_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.limit = limit
        self.window_ms = window_ms
        self._take = redis.register_script(_TAKE_SCRIPT)

    async def take(self, now_ms: int) -> Use:
        """Record one use now; or, when the window is full, record nothing and say how many milliseconds until a
        use leaves it."""
        member = f"{now_ms}-{secrets.token_hex(4)}"
        wait_ms = await self._take(keys=[self.key], args=[now_ms, self.window_ms, self.limit, member])
        return Use(member, int(cast(int, wait_ms)))

    async def give_back(self, use: Use) -> None:
        """Forget a use that turned out not to count (a login whose token was good)."""
        await self.redis.zrem(self.key, use.member)
