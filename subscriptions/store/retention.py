"""Retention: deliveries (with their attempts) and events expire a while after their last change, bounding Redis.

:func:`sweep` walks the oldest part of the delivery index, then of the event index, ``batch`` ids at a time:

- a delivery in a final state (succeeded, failed, skipped) whose last change (created, or last attempted) is
  before the cutoff goes with its attempts and its entries in every index and the due set; one still pending
  or retrying stays, however old;
- then an event created before the cutoff goes with its index entries once no delivery of it is left;
- an index entry whose record is already gone is removed from every index it can be found in.

Each page is read under WATCH and written in one MULTI, so a delivery retried by hand between the read and the
write is left alone (the page is read again). Running it twice, or in two processes at once, is harmless.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from subscriptions.core.models import FINAL, DeliveryStatus
from subscriptions.core.times import ms
from subscriptions.store import keyspace

log = logging.getLogger(__name__)

STATUS_INDEXES = tuple(keyspace.status_deliveries(status) for status in DeliveryStatus)
WATCH_TRIES = 3  # a page that keeps changing under the sweep is left for the next one


@dataclass
class RetentionCounts:
    """What one sweep removed."""

    deliveries: int = 0  # final deliveries, each with its attempts
    events: int = 0  # events none of whose deliveries was left
    dangling: int = 0  # index entries whose record was already gone

    def total(self) -> int:
        return self.deliveries + self.events + self.dangling


@dataclass(frozen=True)
class _ExpiredDelivery:
    id: str
    subscription: str
    account: str
    event_id: str


async def sweep(redis: "Redis", cutoff_ms: int, batch: int = 500) -> RetentionCounts:
    """Remove what expired before ``cutoff_ms`` (Unix ms): final deliveries, then events left with none."""
    counts = RetentionCounts()
    await _walk(
        redis, keyspace.DELIVERIES, cutoff_ms, batch, lambda ids: _retire_deliveries(redis, ids, cutoff_ms, counts)
    )
    await _walk(redis, keyspace.EVENTS, cutoff_ms, batch, lambda ids: _retire_events(redis, ids, counts))
    return counts


async def _walk(
    redis: "Redis", index: str, cutoff_ms: int, batch: int, retire: Callable[[list[str]], Awaitable[int]]
) -> None:
    """Page through the ids of ``index`` scored before ``cutoff_ms``, oldest first; ``retire`` removes what it
    can of a page and returns how many it kept (those stay at the front of the index, so the next page starts
    after them)."""
    kept = 0
    while True:
        ids = cast(list[str], await redis.zrangebyscore(index, "-inf", f"({cutoff_ms}", start=kept, num=batch))
        if not ids:
            return
        kept += await retire(ids)
        if len(ids) < batch:
            return


def _expired_delivery(delivery_id: str, text: str, cutoff_ms: int) -> _ExpiredDelivery | None:
    """The delivery stored as ``text`` if it is final and last changed before ``cutoff_ms``; else ``None``."""
    try:
        record = json.loads(text)
        if record["status"] not in FINAL:
            return None
        changed = [record["created_at"], record.get("last_attempt_at")]
        last_change_ms = max(ms(datetime.fromisoformat(at)) for at in changed if at)
        if last_change_ms >= cutoff_ms:
            return None
        return _ExpiredDelivery(
            delivery_id, str(record["subscription"]), str(record["account"]), str(record["event_id"])
        )
    except (ValueError, KeyError, TypeError) as error:
        log.warning("retention: delivery %s is unreadable, kept: %s", delivery_id, error)
        return None


async def _retire_deliveries(redis: "Redis", ids: Sequence[str], cutoff_ms: int, counts: RetentionCounts) -> int:
    record_keys = [keyspace.delivery(i) for i in ids]
    for _ in range(WATCH_TRIES):
        try:
            async with redis.pipeline(transaction=True) as pipe:
                await pipe.watch(*record_keys)
                raw = cast(list[str | None], await pipe.mget(record_keys))
                dangling = [i for i, text in zip(ids, raw, strict=True) if text is None]
                expired = [
                    found
                    for i, text in zip(ids, raw, strict=True)
                    if text is not None and (found := _expired_delivery(i, text, cutoff_ms)) is not None
                ]
                if not dangling and not expired:
                    return len(ids)
                # a dangling id's subscription and account are unknown: look in every one's index (rare)
                owners = await _owner_indexes(redis) if dangling else []
                pipe.multi()  # type: ignore[no-untyped-call]
                _remove_deliveries(pipe, expired, dangling, owners)
                await pipe.execute()
        except WatchError:
            continue
        counts.deliveries += len(expired)
        counts.dangling += len(dangling)
        return len(ids) - len(expired) - len(dangling)
    return len(ids)


async def _owner_indexes(redis: "Redis") -> list[str]:
    """The delivery index of every subscription and every account there is."""
    async with redis.pipeline(transaction=False) as read:
        read.zrange(keyspace.SUBSCRIPTIONS, 0, -1)
        read.zrange(keyspace.ACCOUNTS, 0, -1)
        sub_ids, codes = await read.execute()
    return [keyspace.subscription_deliveries(s) for s in sub_ids] + [keyspace.account_deliveries(c) for c in codes]


def _remove_deliveries(
    pipe: Pipeline, expired: Sequence[_ExpiredDelivery], dangling: Sequence[str], owner_indexes: Sequence[str]
) -> None:
    ids = [d.id for d in expired] + list(dangling)
    pipe.delete(*[keyspace.delivery(i) for i in ids], *[keyspace.attempts(i) for i in ids])
    for index in (keyspace.DELIVERIES, keyspace.DUE, *STATUS_INDEXES):
        pipe.zrem(index, *ids)
    for index, members in _grouped(
        chain(
            ((keyspace.subscription_deliveries(d.subscription), d.id) for d in expired),
            ((keyspace.account_deliveries(d.account), d.id) for d in expired),
            ((keyspace.event_deliveries(d.event_id), d.id) for d in expired),
            ((index, i) for index in owner_indexes for i in dangling),
        )
    ).items():
        pipe.zrem(index, *members)


async def _retire_events(redis: "Redis", ids: Sequence[str], counts: RetentionCounts) -> int:
    watched = [keyspace.event(i) for i in ids] + [keyspace.event_deliveries(i) for i in ids]
    for _ in range(WATCH_TRIES):
        try:
            async with redis.pipeline(transaction=True) as pipe:
                await pipe.watch(*watched)
                raw, members = await _event_state(redis, ids)
                gone = await _missing_deliveries(redis, set(chain.from_iterable(members)))
                removable: dict[str, str | None] = {}  # event id -> its account (None: the record is gone)
                for event_id, text, delivery_ids in zip(ids, raw, members, strict=True):
                    if set(delivery_ids) <= gone:
                        account = _event_account(event_id, text)
                        if text is None or account is not None:
                            removable[event_id] = account
                stale = {i: [d for d in m if d in gone] for i, m in zip(ids, members, strict=True)}
                stale = {i: dangling_ids for i, dangling_ids in stale.items() if dangling_ids}
                if not removable and not stale:
                    return len(ids)
                missing_events = [i for i, account in removable.items() if account is None]
                accounts = cast(list[str], await pipe.zrange(keyspace.ACCOUNTS, 0, -1)) if missing_events else []
                pipe.multi()  # type: ignore[no-untyped-call]
                _remove_events(pipe, removable, stale, accounts)
                await pipe.execute()
        except WatchError:
            continue
        counts.events += len(removable) - len(missing_events)
        counts.dangling += len(missing_events) + sum(len(d) for d in stale.values())
        return len(ids) - len(removable)
    return len(ids)


async def _event_state(redis: "Redis", ids: Sequence[str]) -> tuple[list[str | None], list[list[str]]]:
    """The stored text of each event (``None`` if gone) and the ids in each one's delivery index."""
    async with redis.pipeline(transaction=False) as read:
        read.mget([keyspace.event(i) for i in ids])
        for event_id in ids:
            read.zrange(keyspace.event_deliveries(event_id), 0, -1)
        raw, *members = await read.execute()
    return cast(list[str | None], raw), cast(list[list[str]], members)


async def _missing_deliveries(redis: "Redis", delivery_ids: Iterable[str]) -> set[str]:
    """Those of ``delivery_ids`` whose record is gone (removed above, or dangling)."""
    ordered = sorted(delivery_ids)
    if not ordered:
        return set()
    async with redis.pipeline(transaction=False) as read:
        for delivery_id in ordered:
            read.exists(keyspace.delivery(delivery_id))
        exists = await read.execute()
    return {i for i, found in zip(ordered, exists, strict=True) if not found}


def _event_account(event_id: str, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(json.loads(text)["account"])
    except (ValueError, KeyError, TypeError) as error:
        log.warning("retention: event %s is unreadable, kept: %s", event_id, error)
        return None


def _remove_events(
    pipe: Pipeline, removable: dict[str, str | None], stale: dict[str, list[str]], accounts: Sequence[str]
) -> None:
    for event_id, delivery_ids in stale.items():
        if event_id not in removable:
            pipe.zrem(keyspace.event_deliveries(event_id), *delivery_ids)
    if not removable:
        return
    ids = list(removable)
    pipe.delete(*[keyspace.event(i) for i in ids], *[keyspace.event_deliveries(i) for i in ids])
    pipe.zrem(keyspace.EVENTS, *ids)
    # a gone record's account is unknown: look in every account's index (rare, so cheap)
    by_account = _grouped(
        chain(
            ((keyspace.account_events(account), i) for i, account in removable.items() if account is not None),
            ((keyspace.account_events(account), i) for account in accounts for i, a in removable.items() if a is None),
        )
    )
    for index, members in by_account.items():
        pipe.zrem(index, *members)


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key, member in pairs:
        groups.setdefault(key, []).append(member)
    return groups
