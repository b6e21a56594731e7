"""Which claimed deliveries may be sent now: each subscription's concurrency cap and rate limit, over every
worker process at once.

One Lua call per claimed batch decides for every subscription in it. Attempts under way sit in a sorted set
per subscription, scored by when their claim ends, so a worker that dies frees its slots when its leases
end; an attempt's outcome frees its slot at once (``release``). The rate limit is a generic cell rate
algorithm without burst: one stored time per subscription, so attempts are spaced evenly, never closer than
``1 / rate`` seconds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions import keys

_ADMIT_SCRIPT = """
local now = tonumber(ARGV[1])
local lease_end = tonumber(ARGV[2])
local out = {}
local a = 3
for i = 1, #KEYS, 2 do
  local flight, rate = KEYS[i], KEYS[i + 1]
  local cap, interval, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
  local free = cap - redis.call('ZCARD', flight)
  local tat = tonumber(redis.call('GET', rate) or '0')
  if tat < now then tat = now end
  local admitted, wait_until = 0, 0
  for j = 0, n - 1 do
    if free <= 0 then break end
    if interval > 0 and tat > now then wait_until = tat break end
    redis.call('ZADD', flight, lease_end, ARGV[a + j])
    free = free - 1
    admitted = admitted + 1
    if interval > 0 then tat = tat + interval end
  end
  if interval > 0 then redis.call('SET', rate, tat, 'PX', tat - now + 1000) end
  a = a + n
  out[#out + 1] = admitted
  out[#out + 1] = wait_until
end
return out
"""


@dataclass(frozen=True)
class Limits:
    """A subscription's limits: attempts under way at once, and attempts a second (``None``: no limit)."""

    max_concurrency: int
    rate_per_s: float | None


@dataclass(frozen=True)
class Admission:
    """For one subscription: how many of the asked deliveries may go now, and when each of the rest may
    (Unix ms; 0 when only the concurrency cap held them back)."""

    admitted: int
    retry_at_ms: int
    interval_ms: int = 0  # the rate limit's spacing between attempts

    def due_ms(self, held: int) -> list[int]:
        """When to claim each of ``held`` deliveries held back again: spaced by the rate limit."""
        return [self.retry_at_ms + i * self.interval_ms for i in range(held)] if self.retry_at_ms else [0] * held


class Admissions:
    """Admits claimed deliveries within their subscriptions' limits."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self._admit = redis.register_script(_ADMIT_SCRIPT)

    async def admit(
        self, wanted: dict[str, tuple[Limits, Sequence[str]]], *, now_ms: int, lease_end_ms: int
    ) -> dict[str, Admission]:
        """For each subscription, the deliveries (in order) it would send: the first ``admitted`` may go."""
        if not wanted:
            return {}
        script_keys: list[str] = []
        args: list[Any] = [now_ms, lease_end_ms]
        for sub_id, (limits, ids) in wanted.items():
            interval_ms = max(1, round(1000 / limits.rate_per_s)) if limits.rate_per_s else 0
            script_keys += [keys.subscription_in_flight(sub_id), keys.subscription_rate(sub_id)]
            args += [limits.max_concurrency, interval_ms, len(ids), *ids]
        raw = cast(list[Any], await self._admit(keys=script_keys, args=args))
        intervals = [max(1, round(1000 / w[0].rate_per_s)) if w[0].rate_per_s else 0 for w in wanted.values()]
        return {
            sub_id: Admission(int(raw[2 * i]), int(raw[2 * i + 1]), intervals[i]) for i, sub_id in enumerate(wanted)
        }


def queue_release(pipe: Pipeline, sub_id: str, *delivery_ids: str) -> None:
    """Queue freeing the slots attempts held (their outcomes are being recorded)."""
    if delivery_ids:
        pipe.zrem(keys.subscription_in_flight(sub_id), *delivery_ids)
