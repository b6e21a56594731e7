"""The delivery queue in Redis: events fan out into deliveries, due deliveries are claimed and admitted,
attempts recorded, claims extended and given back.

A delivery waiting for an attempt sits in the ``due`` sorted set, scored by when the attempt is due. A
dispatcher *claims* due deliveries by pushing their score forward by a lease (``subscriptions.core.lease``;
one Lua call, atomic across every worker process), then *admits* them within their subscriptions' and
accounts' limits (``subscriptions.store.admission``); when the attempt ends, its outcome removes the delivery from
``due`` or reschedules it, and frees its slots. A worker that dies mid-attempt never records an outcome, so its
claims come due again when the lease ends and another worker sends them: nothing is lost, and a repeat carries
the same ``webhook-id``. What each change does to a delivery is decided by ``subscriptions.core.transitions``;
the scripts here only apply it.
"""

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from subscriptions.core.envelope import NewEvent
from subscriptions.core.errors import LostLease
from subscriptions.core.events import matches_any
from subscriptions.core.fence import Fence
from subscriptions.core.lease import lease_ms
from subscriptions.core.models import DeliveryRecord, SubscriptionRecord
from subscriptions.core.times import ms
from subscriptions.core.transitions import Change, GiveUp, Outcome, Requeue, Skip, Transition, created, transition
from subscriptions.store import keyspace
from subscriptions.store.admission import Admission, Admissions, Holder, Limits
from subscriptions.store.health import queue_outcomes, time_of
from subscriptions.store.queue import scripts
from subscriptions.store.queue.backlog import Backlog, read_backlog

log = logging.getLogger(__name__)

RELEASE_DELAY_S = 0.2  # how soon a claim given back (its subscriber was busy) comes due again


@dataclass(frozen=True)
class Recorded:
    """A batch of recorded attempts: the deliveries as they now stand, and for each subscription that had
    a failure in the batch, when its failing began."""

    deliveries: list[DeliveryRecord]
    failing_since: dict[str, datetime]


class DeliveryQueue:
    """Writes, claims, admits and records deliveries; one per process, over the shared connection pool."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self._admissions = Admissions(redis)

    async def commit(
        self,
        events: Sequence[NewEvent],
        subscriptions: Sequence[SubscriptionRecord],
        *,
        now: datetime,
        fence: Fence | None = None,
        also: Callable[[Pipeline], None] | None = None,
    ) -> list[DeliveryRecord]:
        """Store the events not stored yet, one delivery per matching subscription, and ``also``'s writes
        (a poller's new cursor), all in one transaction; only while ``fence`` is still held (``GET fence.key``
        answers ``fence.token``), else :class:`LostLease`.

        Events already stored (the same change detected again after a crash) are left as they are and fan
        out no second time. Returns the deliveries created.
        """
        planned = [
            (
                event,
                [
                    created(event.id, event.type, event.account, sub, now)
                    for sub in subscriptions
                    if sub.account == event.account and matches_any(sub.events, event.type)
                ],
            )
            for event in events
        ]
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                if fence is not None:
                    await pipe.watch(fence.key)
                    if await pipe.get(fence.key) != fence.token:
                        raise LostLease(f"lost {fence.key}")
                pipe.multi()  # type: ignore[no-untyped-call]
                if planned:
                    scripts.COMMIT.queue(pipe, *scripts.commit_args(planned, now))
                if also is not None:
                    also(pipe)
                results = await pipe.execute()
            except WatchError as error:
                raise LostLease(f"lost {fence.key if fence else 'watch'}") from error
        stored = results[0] if planned else []
        return [d.record for (_, deliveries), new in zip(planned, stored, strict=True) if new for d in deliveries]

    async def send_to(self, event: NewEvent, sub: SubscriptionRecord, now: datetime) -> DeliveryRecord:
        """Store an event meant for one subscription alone (a ``ping``) and its delivery, due now."""
        new = created(event.id, event.type, event.account, sub, now)
        await scripts.COMMIT.run(self.redis, *scripts.commit_args([(event, [new])], now))
        return new.record

    async def claim(self, *, now: datetime, timeout_s: float, limit: int) -> list[tuple[str, DeliveryRecord | None]]:
        """Up to ``limit`` due deliveries, leased to the caller for an attempt of ``timeout_s`` (see
        ``subscriptions.core.lease``), each with its record (``None`` when it is no longer kept, or cannot be
        read): the claim, then one read of the records it found."""
        found = cast(
            list[Any], await scripts.CLAIM.run(self.redis, *scripts.claim_args(now, lease_ms(timeout_s), limit))
        )
        ids = [str(delivery_id) for delivery_id in found]
        texts = cast(list[Any], await self.redis.mget([keyspace.delivery(i) for i in ids])) if ids else []
        claimed: list[tuple[str, DeliveryRecord | None]] = []
        for delivery_id, text in zip(ids, texts, strict=True):
            try:
                claimed.append((delivery_id, DeliveryRecord.model_validate_json(text) if text else None))
            except ValidationError as error:  # one unreadable record must not stop every claim after it
                log.error("delivery %s cannot be read, so it is taken off the queue: %s", delivery_id, error)
                claimed.append((delivery_id, None))
        return claimed

    async def admit(self, wanted: Mapping[str, tuple[Limits, Sequence[str]]], now: datetime) -> dict[str, Admission]:
        """Admit claimed deliveries within their subscriptions' and accounts' limits (see
        ``subscriptions.store.admission``): for each subscription, the first ``admitted`` may go now, the ``parked``
        after them wait for a slot, and the rest, held back by its rate limit, are each made due when the limit
        lets it go (no sooner than ``RELEASE_DELAY_S``)."""
        admissions = await self._admissions.admit(dict(wanted), now_ms=ms(now))
        soonest = ms(now + timedelta(seconds=RELEASE_DELAY_S))
        dues: dict[str, int] = {}
        for sub_id, (_, ids) in wanted.items():
            admission = admissions[sub_id]
            held = ids[admission.admitted + admission.parked :] if admission.error is None else []
            dues.update({d: max(soonest, at) for d, at in zip(held, admission.due_ms(len(held)), strict=True)})
        if dues:
            await self.redis.zadd(keyspace.DUE, dues, xx=True)
        return admissions

    async def extend(self, claims: Mapping[Holder, Mapping[str, float]], now: datetime, *, slots: bool = True) -> None:
        """Lease claims anew from ``now``: for each subscription, each delivery's claim for an attempt of the
        timeout given (seconds), and with ``slots`` the slots it holds in its subscription's and account's caps
        (so no other process sends it, or fills those slots, meanwhile). A claim or slot already ended stays so."""
        at_ms = ms(now)
        until = {holder: {d: at_ms + lease_ms(t) for d, t in theirs.items()} for holder, theirs in claims.items()}
        leases = {d: at for theirs in until.values() for d, at in theirs.items()}
        if leases:
            await self.redis.zadd(keyspace.DUE, leases, xx=True)
        if slots and leases:
            await self._admissions.extend(until)

    async def give_back(self, delivery_ids: Sequence[str], now: datetime) -> None:
        """End claims not started (a worker stopping): the deliveries are due again at once."""
        if delivery_ids:
            await self.redis.zadd(keyspace.DUE, dict.fromkeys(delivery_ids, ms(now)), xx=True)

    async def release(self, slots: Mapping[Holder, Sequence[str]], now: datetime) -> None:
        """Free slots at once (attempts given up when a worker stops)."""
        await self._admissions.release(slots, ms(now))

    async def discard(self, delivery_ids: Sequence[str]) -> None:
        """Take claimed deliveries off the queue: their records are gone, or they need no attempt."""
        if delivery_ids:
            await self.redis.zrem(keyspace.DUE, *delivery_ids)

    async def unpark(
        self, limits_of: Callable[[list[str]], Awaitable[list[Limits | None]]], account_cap: int, now: datetime
    ) -> int:
        """Bring back parked deliveries whose slots were freed by leases ending rather than by outcomes (a
        worker died), by another subscription of their account, or whose subscription's cap was raised or which
        was deleted (``limits_of`` answers ``None`` for it). How many came back."""
        now_ms, moved = ms(now), 0
        parked = await self._admissions.parked_subscriptions()
        for sub_id, limits in zip(parked, await limits_of(parked), strict=True):
            moved += await self._admissions.unpark(sub_id, limits, now_ms)
        for account in await self._admissions.parked_accounts():
            moved += await self._admissions.unpark_account(account, account_cap, now_ms)
        return moved

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> Recorded:
        """Record a batch of attempts in one transaction, with what they say about their subscriptions'
        health, and free the slots they held."""
        changes = [transition(outcome.delivery, outcome, now) for outcome in outcomes]
        failed_subs = sorted({o.delivery.subscription for o in outcomes if not o.succeeded})
        by_subscription: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in sorted(outcomes, key=lambda o: o.attempt.at):
            by_subscription[outcome.delivery.subscription].append(outcome)
        async with self.redis.pipeline(transaction=True) as pipe:
            scripts.APPLY.queue(pipe, *scripts.apply_args(changes))
            for sub_id, theirs in by_subscription.items():
                queue_outcomes(pipe, sub_id, [(o.succeeded, o.attempt.at) for o in theirs])
                holder = (theirs[0].delivery.account, sub_id)
                self._admissions.queue_release(pipe, holder, [o.delivery.id for o in theirs if o.held_slots], ms(now))
            for sub_id in failed_subs:
                pipe.hget(keyspace.subscription_health(sub_id), "failing_since")
            results = await pipe.execute()
        since = results[len(results) - len(failed_subs) :] if failed_subs else []
        failing = {sub_id: when for sub_id, value in zip(failed_subs, since, strict=True) if (when := time_of(value))}
        return Recorded([change.record for change in changes], failing)

    async def abandon(self, delivery: DeliveryRecord, reason: str, now: datetime) -> DeliveryRecord:
        """Fail a delivery that can no longer be sent (its subscription or event is gone)."""
        (done,) = await self._apply([delivery], GiveUp(reason), now)
        return done

    async def skip(self, delivery: DeliveryRecord, now: datetime) -> DeliveryRecord:
        """Keep a delivery as ``skipped`` (its subscription is disabled): visible and replayable, not sent."""
        (skipped,) = await self._apply([delivery], Skip(), now)
        return skipped

    async def schedule_now(self, delivery: DeliveryRecord, now: datetime) -> DeliveryRecord:
        """Make a delivery due at once, whatever its state (a manual retry)."""
        (again,) = await self.requeue([delivery], now)
        return again

    async def requeue(self, deliveries: Sequence[DeliveryRecord], now: datetime) -> list[DeliveryRecord]:
        """Make deliveries due at once, whatever their state, in one transaction (a retry or a recovery)."""
        return await self._apply(deliveries, Requeue(), now)

    async def backlog(self, now: datetime) -> Backlog:
        """How many deliveries wait for a first attempt and for a retry, and the oldest wait."""
        return await read_backlog(self.redis, now)

    async def _apply(self, deliveries: Sequence[DeliveryRecord], change: Change, now: datetime) -> list[DeliveryRecord]:
        """Apply one change to each of ``deliveries`` (one script call, atomic)."""
        if not deliveries:
            return []
        changes: list[Transition] = [transition(delivery, change, now) for delivery in deliveries]
        await scripts.APPLY.run(self.redis, *scripts.apply_args(changes))
        return [c.record for c in changes]
