"""Which claimed deliveries may be sent now: each subscription's concurrency cap and rate limit, over every
worker process at once, without letting one subscriber's backlog stand in front of the others.

One Lua call per claimed batch decides for every subscription in it. Attempts under way sit in a sorted set
per subscription, scored by when their claim ends, so a worker that dies frees its slots when its leases
end; an attempt's outcome frees its slot at once (:func:`queue_release`).

A delivery whose subscription is at its cap is *parked*: taken out of the shared ``due`` set into the
subscription's own parked set, and put back, oldest first, one for each slot that frees. So a subscriber that
hangs keeps at most its cap of deliveries in flight and the rest of its backlog out of everyone's way, instead
of being claimed, loaded and put back again and again. (If a worker dies, its slots free when their leases
end, and :meth:`Admissions.unpark` brings the parked deliveries back.)

The rate limit is a generic cell rate algorithm without burst: one stored time per subscription, attempts
spaced evenly, never closer than ``1 / rate`` seconds. Deliveries held back by it stay due, each at the time
it may go.
"""

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions import keys
from subscriptions.lua import queue_eval

_ADMIT_SCRIPT = """
local now = tonumber(ARGV[1])
local out = {}
local a = 2
for i = 3, #KEYS, 3 do
  local flight, rate, parked = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local sub, cap, interval = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local lease_end, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
  local free = cap - redis.call('ZCARD', flight)
  local tat = tonumber(redis.call('GET', rate) or '0')
  if tat < now then tat = now end
  local admitted, wait_until, parking = 0, 0, 0
  for j = 0, n - 1 do
    local id = ARGV[a + j]
    if free <= 0 then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', parked, now, id)
      parking = parking + 1
    elseif interval > 0 and tat > now then
      wait_until = tat
      break
    else
      redis.call('ZADD', flight, lease_end, id)
      free = free - 1
      admitted = admitted + 1
      if interval > 0 then tat = tat + interval end
    end
  end
  if parking > 0 then redis.call('SADD', KEYS[2], sub) end
  if interval > 0 then redis.call('SET', rate, tat, 'PX', tat - now + 1000) end
  a = a + n
  out[#out + 1] = admitted
  out[#out + 1] = parking
  out[#out + 1] = wait_until
end
return out
"""

# Frees the slots of recorded attempts and makes as many parked deliveries due again, oldest first.
_RELEASE_SCRIPT = """
for c = 3, #ARGV, 500 do redis.call('ZREM', KEYS[1], unpack(ARGV, c, math.min(c + 499, #ARGV))) end
local moved = redis.call('ZPOPMIN', KEYS[2], #ARGV - 2)
for i = 1, #moved, 2 do redis.call('ZADD', KEYS[3], ARGV[2], moved[i]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return #moved / 2
"""

# After a worker died: free expired slots and bring back as many parked deliveries as there is room for.
_UNPARK_SCRIPT = """
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local room = cap - redis.call('ZCARD', KEYS[1])
local moved = {}
if room > 0 then moved = redis.call('ZPOPMIN', KEYS[2], room) end
for i = 1, #moved, 2 do redis.call('ZADD', KEYS[3], now, moved[i]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return #moved / 2
"""


@dataclass(frozen=True)
class Limits:
    """A subscription's limits: attempts under way at once, attempts a second (``None``: no limit), and how
    long one attempt may hold its slot (its timeout and a margin)."""

    max_concurrency: int
    rate_per_s: float | None
    lease_ms: int = 25_000

    @property
    def interval_ms(self) -> int:
        return max(1, round(1000 / self.rate_per_s)) if self.rate_per_s else 0


@dataclass(frozen=True)
class Admission:
    """For one subscription: how many of the asked deliveries may go now (the first ones), how many after
    them were parked, and when the rate limit lets the rest go (Unix ms, 0 when none is left)."""

    admitted: int
    parked: int
    retry_at_ms: int
    interval_ms: int = 0

    def due_ms(self, held: int) -> list[int]:
        """When each of the ``held`` deliveries the rate limit held back may go: spaced by the limit."""
        return [self.retry_at_ms + i * self.interval_ms for i in range(held)]


class Admissions:
    """Admits claimed deliveries within their subscriptions' limits, parking what must wait for a slot."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self._admit = redis.register_script(_ADMIT_SCRIPT)
        self._unpark = redis.register_script(_UNPARK_SCRIPT)

    async def admit(self, wanted: dict[str, tuple[Limits, Sequence[str]]], *, now_ms: int) -> dict[str, Admission]:
        """For each subscription, the deliveries (in order) it would send: the first ``admitted`` may go."""
        if not wanted:
            return {}
        script_keys: list[str] = [keys.DUE, keys.PARKED]
        args: list[Any] = [now_ms]
        for sub_id, (limits, ids) in wanted.items():
            script_keys += [
                keys.subscription_in_flight(sub_id),
                keys.subscription_rate(sub_id),
                keys.subscription_parked(sub_id),
            ]
            args += [sub_id, limits.max_concurrency, limits.interval_ms, now_ms + limits.lease_ms, len(ids), *ids]
        raw = cast(list[Any], await self._admit(keys=script_keys, args=args))
        return {
            sub_id: Admission(int(raw[3 * i]), int(raw[3 * i + 1]), int(raw[3 * i + 2]), limits.interval_ms)
            for i, (sub_id, (limits, _)) in enumerate(wanted.items())
        }

    def queue_release(self, pipe: Pipeline, sub_id: str, delivery_ids: Sequence[str], now_ms: int) -> None:
        """Queue freeing the slots attempts held (their outcomes are being recorded), and making as many of
        the subscription's parked deliveries due again."""
        if delivery_ids:
            queue_eval(
                pipe,
                _RELEASE_SCRIPT,
                [keys.subscription_in_flight(sub_id), keys.subscription_parked(sub_id), keys.DUE, keys.PARKED],
                [sub_id, now_ms, *delivery_ids],
            )

    async def extend(self, slots: Mapping[str, Mapping[str, int]]) -> None:
        """Hold slots longer: for each subscription, each delivery's slot until the time given (Unix ms). A slot
        already freed stays free."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sub_id, until_ms in slots.items():
                pipe.zadd(keys.subscription_in_flight(sub_id), dict(until_ms), xx=True)
            await pipe.execute()

    async def release(self, slots: Mapping[str, Sequence[str]], now_ms: int) -> None:
        """Free slots at once (attempts given up when a worker stops)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for sub_id, ids in slots.items():
                self.queue_release(pipe, sub_id, ids, now_ms)
            await pipe.execute()

    async def parked_subscriptions(self) -> list[str]:
        return sorted(await cast(Awaitable[set[str]], self.redis.smembers(keys.PARKED)))

    async def unpark(self, sub_id: str, cap: int, now_ms: int) -> int:
        """Bring back parked deliveries of a subscription whose slots freed without a release (a worker
        died); returns how many."""
        moved = await self._unpark(
            keys=[keys.subscription_in_flight(sub_id), keys.subscription_parked(sub_id), keys.DUE, keys.PARKED],
            args=[sub_id, now_ms, cap],
        )
        return int(cast(int, moved))
