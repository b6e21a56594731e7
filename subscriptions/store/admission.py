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

from subscriptions.store import keyspace
from subscriptions.store.lua import Script

log = logging.getLogger(__name__)

MIN_RATE_PER_S = 0.01  # the slowest rate limit: one attempt every 100 s
MAX_INTERVAL_MS = round(1000 / MIN_RATE_PER_S)
MAX_CONCURRENCY = 100_000  # beyond any worker's slots: a cap this high is no cap
REFUSED = "not sent: the relay cannot read this subscription's delivery slots in Redis (see the worker's log)"

_ADMIT = Script.beside(__file__, "admit.lua")
_RELEASE = Script.beside(__file__, "release_slots.lua")
_UNPARK = Script.beside(__file__, "unpark.lua")

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
        keyspace.subscription_in_flight(sub_id),
        keyspace.subscription_parked(sub_id),
        keyspace.DUE,
        keyspace.PARKED,
        keyspace.account_in_flight(account),
        keyspace.account_parked(account),
        keyspace.PARKED_ACCOUNTS,
    ]


def admit_call(wanted: Mapping[str, tuple[Limits, Sequence[str]]], now_ms: int) -> tuple[list[str], dict[str, Any]]:
    """The keys and argument of the admit script for a batch (see ``admit.lua``): the three shared keys, then
    each subscription's own and its account's (an account's once, however many of its subscriptions ask), each
    subscription naming its keys by their place in ``KEYS`` (counted from 1, as Lua does)."""
    script_keys: list[str] = [keyspace.DUE, keyspace.PARKED, keyspace.PARKED_ACCOUNTS]
    accounts: dict[str, tuple[int, int]] = {}
    items: list[dict[str, Any]] = []
    for sub_id, (limits, ids) in wanted.items():
        own = len(script_keys) + 1
        script_keys += [keyspace.subscription_in_flight(sub_id), keyspace.subscription_rate(sub_id)]
        script_keys.append(keyspace.subscription_parked(sub_id))
        if limits.account not in accounts:
            accounts[limits.account] = (len(script_keys) + 1, len(script_keys) + 2)
            script_keys += [keyspace.account_in_flight(limits.account), keyspace.account_parked(limits.account)]
        account_in_flight, account_parked = accounts[limits.account]
        items.append(
            {
                "id": sub_id,
                "account": limits.account,
                "cap": limits.cap,
                "account_cap": limits.account_cap,
                "interval_ms": limits.interval_ms,
                "lease_end_ms": now_ms + limits.lease_ms,
                "deliveries": list(ids),
                "keys": {
                    "in_flight": own,
                    "rate": own + 1,
                    "parked": own + 2,
                    "account_in_flight": account_in_flight,
                    "account_parked": account_parked,
                },
            }
        )
    return script_keys, {"now_ms": now_ms, "subscriptions": items}


class Admissions:
    """Admits claimed deliveries within their subscriptions' and accounts' limits, parking what must wait."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis

    async def admit(self, wanted: dict[str, tuple[Limits, Sequence[str]]], *, now_ms: int) -> dict[str, Admission]:
        """For each subscription, the deliveries (in order) it would send: the first ``admitted`` may go; a
        subscription Redis cannot admit answers with its ``error`` and none admitted, and the others go on."""
        if not wanted:
            return {}
        raw = cast(list[Any], await _ADMIT.run(self.redis, *admit_call(wanted, now_ms)))
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
            account, sub_id = holder
            args = {"subscription": sub_id, "account": account, "now_ms": now_ms, "deliveries": list(delivery_ids)}
            _RELEASE.queue(pipe, _slot_keys(holder), args)

    async def extend(self, slots: Mapping[Holder, Mapping[str, int]]) -> None:
        """Hold slots longer: for each subscription, each delivery's slot (in the subscription's cap and in its
        account's) until the time given (Unix ms). A slot already freed stays free."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for (account, sub_id), until_ms in slots.items():
                pipe.zadd(keyspace.subscription_in_flight(sub_id), dict(until_ms), xx=True)
                pipe.zadd(keyspace.account_in_flight(account), dict(until_ms), xx=True)
            await pipe.execute()

    async def release(self, slots: Mapping[Holder, Sequence[str]], now_ms: int) -> None:
        """Free slots at once (attempts given up when a worker stops)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for holder, ids in slots.items():
                self.queue_release(pipe, holder, ids, now_ms)
            await pipe.execute()

    async def parked_subscriptions(self) -> list[str]:
        return sorted(await cast(Awaitable[set[str]], self.redis.smembers(keyspace.PARKED)))

    async def parked_accounts(self) -> list[str]:
        return sorted(await cast(Awaitable[set[str]], self.redis.smembers(keyspace.PARKED_ACCOUNTS)))

    async def unpark(self, sub_id: str, limits: Limits | None, now_ms: int) -> int:
        """Bring back deliveries parked for a subscription's cap whose slots freed without a release (a worker
        died, its cap was raised); with no ``limits`` (the subscription is gone), all of them. How many."""
        room = limits.cap if limits else 2**31
        slot_keys = [
            keyspace.subscription_in_flight(sub_id),
            keyspace.subscription_parked(sub_id),
            keyspace.DUE,
            keyspace.PARKED,
        ]
        args = {"holder": sub_id, "now_ms": now_ms, "room": room}
        return int(cast(int, await _UNPARK.run(self.redis, slot_keys, args)))

    async def unpark_account(self, account: str, account_concurrency: int, now_ms: int) -> int:
        """Bring back deliveries parked for an account's cap whose slots freed without a release (a worker died)."""
        slot_keys = [
            keyspace.account_in_flight(account),
            keyspace.account_parked(account),
            keyspace.DUE,
            keyspace.PARKED_ACCOUNTS,
        ]
        args = {"holder": account, "now_ms": now_ms, "room": min(MAX_CONCURRENCY, max(1, account_concurrency))}
        return int(cast(int, await _UNPARK.run(self.redis, slot_keys, args)))
