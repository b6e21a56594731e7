"""A sorted set of things due at a time, claimed with a lease: the scheduling primitive of the relay.

Members are scored by when they are due (Unix ms). ``claim`` takes the due ones and pushes their score
forward by a lease in one Lua call, so two processes never claim the same member at once; the claimer
reschedules or removes each member when it is done. If the claimer dies, its members come due again when the
lease ends. Due deliveries and due polls both live in one of these.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

_CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', until_ms, id) end
return ids
"""


def ms(value: datetime) -> int:
    """Unix milliseconds of an aware datetime: the score of every due set and index."""
    return int(value.timestamp() * 1000)


class DueSet:
    """One sorted set of due members in Redis."""

    def __init__(self, redis: "Redis", key: str) -> None:
        self.redis = redis
        self.key = key
        self._claim = redis.register_script(_CLAIM_SCRIPT)

    async def claim(self, *, now: datetime, lease_s: float, limit: int) -> list[str]:
        """Up to ``limit`` members due by ``now``, now leased to the caller for ``lease_s`` seconds."""
        ids = await self._claim(keys=[self.key], args=[ms(now), int(lease_s * 1000), limit])
        return [i.decode() if isinstance(i, bytes) else str(i) for i in cast(list[Any], ids)]

    async def schedule(self, members: Sequence[str], *, due: datetime, only_existing: bool = False) -> None:
        """Make ``members`` due at ``due`` (only those still in the set when ``only_existing``)."""
        if members:
            await self.redis.zadd(self.key, {m: ms(due) for m in members}, xx=only_existing)

    async def schedule_each(self, due_ms: dict[str, int]) -> None:
        """Make each member due at its own time (Unix ms), if it is still in the set."""
        if due_ms:
            await self.redis.zadd(self.key, dict(due_ms), xx=True)

    async def next_due(self) -> datetime | None:
        """When the earliest member is due (or its lease ends), or ``None`` if the set is empty."""
        first = cast(list[tuple[str, float]], await self.redis.zrange(self.key, 0, 0, withscores=True))
        return datetime.fromtimestamp(first[0][1] / 1000, UTC) if first else None

    async def remove(self, members: Sequence[str]) -> None:
        if members:
            await self.redis.zrem(self.key, *members)

    async def size(self) -> int:
        return cast(int, await self.redis.zcard(self.key))
