"""Which claimed deliveries may be sent now: each subscription's concurrency cap and rate limit, and its
account's cap on attempts under way for all its subscriptions together, over every worker process at once,
without letting one subscriber's backlog stand in front of the others.

One Lua call per claimed batch decides for every subscription in it. Attempts under way sit in a sorted set
per subscription and one per account, scored by when their claim ends, so a worker that dies frees its slots
when its leases end; an attempt's outcome frees its slots at once (:func:`queue_release`).

A delivery whose subscription is at its cap is *parked*: taken out of the shared ``due`` set into the
subscription's own parked set, and put back, oldest first, one for each of its slots that frees. One whose
account is at its cap is parked in the account's set, and put back one for each of the account's slots that
frees, whichever subscription held it. So a subscriber that hangs keeps at most its cap of deliveries in flight
and the rest of its backlog out of everyone's way, instead of being claimed, loaded and put back again and
again; and an account whose subscribers all hang holds at most its account's cap of every worker's slots,
however many subscriptions it makes. (Slots freed by leases that ended, because a worker died, are found by
:meth:`Admissions.unpark` and :meth:`Admissions.unpark_account`, which the dispatcher calls every few seconds.)

The rate limit is a generic cell rate algorithm without burst: one stored time per subscription, attempts
spaced evenly, never closer than ``1 / rate`` seconds. Deliveries held back by it stay due, each at the time
it may go.

A subscription whose slots Redis cannot use is refused on its own (:attr:`Admission.error`), before anything of
it is written; the others in the batch are admitted as usual.
"""

import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions import keys
from subscriptions.lua import queue_eval

log = logging.getLogger(__name__)

MIN_RATE_PER_S = 0.01  # the slowest rate limit: one attempt every 100 s
MAX_INTERVAL_MS = round(1000 / MIN_RATE_PER_S)
MAX_CONCURRENCY = 100_000  # beyond any worker's slots: a cap this high is no cap
REFUSED = "not sent: the relay cannot read this subscription's delivery slots in Redis (see the worker's log)"

# A subscription whose arguments or keys Redis cannot use (a key of another type, say) is refused on its own,
# answered -1, before anything of it is written: the others in the batch are admitted as usual.
_ADMIT_SCRIPT = """
local function usable(key, kind)
  local found = redis.call('TYPE', key)['ok']
  return found == 'none' or found == kind
end
local now = tonumber(ARGV[1])
local out = {}
local a = 2
local swept = {}
for i = 4, #KEYS, 5 do
  local flight, rate, parked, account, account_parked = KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3], KEYS[i + 4]
  local sub, code, cap, account_cap = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local interval, lease_end, n = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  a = a + 7
  local admitted, wait_until, parking = 0, 0, 0
  if not (cap and account_cap and interval and lease_end and usable(flight, 'zset') and usable(rate, 'string')
          and usable(parked, 'zset') and usable(account, 'zset') and usable(account_parked, 'zset')) then
    admitted = -1
  else
    redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
    if not swept[account] then
      redis.call('ZREMRANGEBYSCORE', account, '-inf', now)
      swept[account] = true
    end
    local free = cap - redis.call('ZCARD', flight)
    local account_free = account_cap - redis.call('ZCARD', account)
    local tat = tonumber(redis.call('GET', rate)) or 0
    if tat < now then tat = now end
    for j = 0, n - 1 do
      local id = ARGV[a + j]
      if free <= 0 then
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', parked, now, id)
        redis.call('SADD', KEYS[2], sub)
        parking = parking + 1
      elseif account_free <= 0 then
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', account_parked, now, id)
        redis.call('SADD', KEYS[3], code)
        parking = parking + 1
      elseif interval > 0 and tat > now then
        wait_until = tat
        break
      else
        redis.call('ZADD', flight, lease_end, id)
        redis.call('ZADD', account, lease_end, id)
        free = free - 1
        account_free = account_free - 1
        admitted = admitted + 1
        if interval > 0 then tat = tat + interval end
      end
    end
    if interval > 0 then redis.call('SET', rate, tat, 'PX', tat - now + 1000) end
  end
  a = a + n
  out[#out + 1] = admitted
  out[#out + 1] = parking
  out[#out + 1] = wait_until
end
return out
"""

# Frees the slots of recorded attempts, in their subscription and their account, and makes as many deliveries
# due again, oldest first: as many parked for the subscription's cap, and as many parked for the account's.
_RELEASE_SCRIPT = """
for c = 4, #ARGV, 500 do
  local last = math.min(c + 499, #ARGV)
  redis.call('ZREM', KEYS[1], unpack(ARGV, c, last))
  redis.call('ZREM', KEYS[5], unpack(ARGV, c, last))
end
local freed = #ARGV - 3
local moved = 0
for _, parked in ipairs({KEYS[2], KEYS[6]}) do
  local popped = redis.call('ZPOPMIN', parked, freed)
  for i = 1, #popped, 2 do redis.call('ZADD', KEYS[3], ARGV[2], popped[i]) end
  moved = moved + #popped / 2
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
if redis.call('EXISTS', KEYS[6]) == 0 then redis.call('SREM', KEYS[7], ARGV[3]) end
return moved
"""

# Free expired slots and bring back as many parked deliveries as there is room for: a subscription's (its slots,
# its parked set, due, the set of subscriptions with parked ones), or an account's (the same of the account).
_UNPARK_SCRIPT = """
local now, room = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
room = room - redis.call('ZCARD', KEYS[1])
local moved = {}
if room > 0 then moved = redis.call('ZPOPMIN', KEYS[2], room) end
for i = 1, #moved, 2 do redis.call('ZADD', KEYS[3], now, moved[i]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return #moved / 2
"""

Holder = tuple[str, str]
"""Whose slots: (account code, subscription id)."""


@dataclass(frozen=True)
class Limits:
    """What holds a subscription's attempts back: its own cap on attempts under way and its rate (``None``: no
    limit), its account's cap on attempts under way for all its subscriptions together, and how long one
    attempt may hold its slots (its timeout and a margin). Out-of-range values (a record written before the
    API bounded them) are brought within what delivery can honour."""

    account: str
    max_concurrency: int
    rate_per_s: float | None
    account_concurrency: int = MAX_CONCURRENCY
    lease_ms: int = 25_000

    @property
    def interval_ms(self) -> int:
        return min(MAX_INTERVAL_MS, max(1, round(1000 / self.rate_per_s))) if self.rate_per_s else 0

    @property
    def cap(self) -> int:
        return min(MAX_CONCURRENCY, max(1, self.max_concurrency))

    @property
    def account_cap(self) -> int:
        return min(MAX_CONCURRENCY, max(1, self.account_concurrency))


@dataclass(frozen=True)
class Admission:
    """For one subscription: how many of the asked deliveries may go now (the first ones), how many after
    them were parked, and when the rate limit lets the rest go (Unix ms, 0 when none is left); or, if Redis
    refused to admit them, why (``error``), none admitted."""

    admitted: int
    parked: int
    retry_at_ms: int
    interval_ms: int = 0
    error: str | None = None

    def due_ms(self, held: int) -> list[int]:
        """When each of the ``held`` deliveries the rate limit held back may go: spaced by the limit."""
        return [self.retry_at_ms + i * self.interval_ms for i in range(held)]


def _slot_keys(holder: Holder) -> list[str]:
    account, sub_id = holder
    return [
        keys.subscription_in_flight(sub_id),
        keys.subscription_parked(sub_id),
        keys.DUE,
        keys.PARKED,
        keys.account_in_flight(account),
        keys.account_parked(account),
        keys.PARKED_ACCOUNTS,
    ]


class Admissions:
    """Admits claimed deliveries within their subscriptions' and accounts' limits, parking what must wait."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self._admit = redis.register_script(_ADMIT_SCRIPT)
        self._unpark = redis.register_script(_UNPARK_SCRIPT)

    async def admit(self, wanted: dict[str, tuple[Limits, Sequence[str]]], *, now_ms: int) -> dict[str, Admission]:
        """For each subscription, the deliveries (in order) it would send: the first ``admitted`` may go; a
        subscription Redis cannot admit answers with its ``error`` and none admitted, and the others go on."""
        if not wanted:
            return {}
        script_keys: list[str] = [keys.DUE, keys.PARKED, keys.PARKED_ACCOUNTS]
        args: list[Any] = [now_ms]
        for sub_id, (limits, ids) in wanted.items():
            script_keys += [
                keys.subscription_in_flight(sub_id),
                keys.subscription_rate(sub_id),
                keys.subscription_parked(sub_id),
                keys.account_in_flight(limits.account),
                keys.account_parked(limits.account),
            ]
            args += [sub_id, limits.account, limits.cap, limits.account_cap, limits.interval_ms]
            args += [now_ms + limits.lease_ms, len(ids), *ids]
        raw = cast(list[Any], await self._admit(keys=script_keys, args=args))
        found = {}
        for i, (sub_id, (limits, _)) in enumerate(wanted.items()):
            admitted, parked, retry_at_ms = int(raw[3 * i]), int(raw[3 * i + 1]), int(raw[3 * i + 2])
            if admitted < 0:
                log.error("cannot admit the deliveries of subscription %s: its slots in Redis are unusable", sub_id)
                found[sub_id] = Admission(0, 0, 0, limits.interval_ms, error=REFUSED)
            else:
                found[sub_id] = Admission(admitted, parked, retry_at_ms, limits.interval_ms)
        return found

    def queue_release(self, pipe: Pipeline, holder: Holder, delivery_ids: Sequence[str], now_ms: int) -> None:
        """Queue freeing the slots attempts held in their subscription and account (their outcomes are being
        recorded), and making as many of the subscription's parked deliveries due again."""
        if delivery_ids:
            queue_eval(pipe, _RELEASE_SCRIPT, _slot_keys(holder), [holder[1], now_ms, holder[0], *delivery_ids])

    async def extend(self, slots: Mapping[Holder, Mapping[str, int]]) -> None:
        """Hold slots longer: for each subscription, each delivery's slot (in the subscription's cap and in its
        account's) until the time given (Unix ms). A slot already freed stays free."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for (account, sub_id), until_ms in slots.items():
                pipe.zadd(keys.subscription_in_flight(sub_id), dict(until_ms), xx=True)
                pipe.zadd(keys.account_in_flight(account), dict(until_ms), xx=True)
            await pipe.execute()

    async def release(self, slots: Mapping[Holder, Sequence[str]], now_ms: int) -> None:
        """Free slots at once (attempts given up when a worker stops)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for holder, ids in slots.items():
                self.queue_release(pipe, holder, ids, now_ms)
            await pipe.execute()

    async def parked_subscriptions(self) -> list[str]:
        return sorted(await cast(Awaitable[set[str]], self.redis.smembers(keys.PARKED)))

    async def parked_accounts(self) -> list[str]:
        return sorted(await cast(Awaitable[set[str]], self.redis.smembers(keys.PARKED_ACCOUNTS)))

    async def unpark(self, sub_id: str, limits: Limits | None, now_ms: int) -> int:
        """Bring back deliveries parked for a subscription's cap whose slots freed without a release (a worker
        died, its cap was raised); with no ``limits`` (the subscription is gone), all of them. How many."""
        room = limits.cap if limits else 2**31
        slot_keys = [keys.subscription_in_flight(sub_id), keys.subscription_parked(sub_id), keys.DUE, keys.PARKED]
        return int(cast(int, await self._unpark(keys=slot_keys, args=[sub_id, now_ms, room])))

    async def unpark_account(self, account: str, account_concurrency: int, now_ms: int) -> int:
        """Bring back deliveries parked for an account's cap whose slots freed without a release (a worker died)."""
        slot_keys = [keys.account_in_flight(account), keys.account_parked(account), keys.DUE, keys.PARKED_ACCOUNTS]
        room = min(MAX_CONCURRENCY, max(1, account_concurrency))
        return int(cast(int, await self._unpark(keys=slot_keys, args=[account, now_ms, room])))
