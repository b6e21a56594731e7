"""The delivery hot path in Redis: events fan out into deliveries, due deliveries are claimed, attempts recorded.

A delivery waiting for an attempt sits in the ``due`` sorted set, scored by when the attempt is due. A
dispatcher *claims* due deliveries by pushing their score forward by a lease (one Lua call, atomic across
every worker process); when the attempt ends, its outcome removes the delivery from ``due`` or reschedules
it. A worker that dies mid-attempt never records an outcome, so its claims come due again when the lease
ends and another worker sends them: nothing is lost, and a repeat carries the same ``webhook-id``.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from subscriptions import keys
from subscriptions.admission import Admissions
from subscriptions.due import DueSet, ms
from subscriptions.envelope import NewEvent
from subscriptions.errors import LostLease
from subscriptions.events import matches_any
from subscriptions.fence import Fence
from subscriptions.health import queue_outcomes, time_of
from subscriptions.ids import delivery_id
from subscriptions.lua import queue_eval
from subscriptions.models import (
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    SubscriptionRecord,
    SubscriptionState,
)
from subscriptions.retry import DEFAULT_RETRY_SCHEDULE_S, GONE, next_attempt_delay_s

log = logging.getLogger(__name__)

# Lua helpers shared by the scripts below: keys named from the templates passed first (``keys.template``), and
# sorted-set writes gathered per key and sent in one command per key and 500 members, not one command per member.
_LUA_HELPERS = """
local function key(template, id) return template[1] .. id .. template[2] end
local function gather(sets, k, a, b)
  local s = sets[k]
  if not s then s = {}; sets[k] = s end
  s[#s + 1] = a
  if b ~= nil then s[#s + 1] = b end
end
local function apply(command, sets)
  for k, s in pairs(sets) do
    for c = 1, #s, 1000 do redis.call(command, k, unpack(s, c, math.min(c + 999, #s))) end
  end
end
"""

# Records a batch of attempts: per delivery its attempt, its new state, its status index and its due time. After
# three key templates (delivery, attempts, status), 7 arguments a delivery. Index moves are gathered and applied
# together; a delivery met twice in one batch first has the moves before it applied, so its moves keep their order.
_RECORD_SCRIPT = (
    _LUA_HELPERS
    + """
local delivery, attempts, status = {ARGV[1], ARGV[2]}, {ARGV[3], ARGV[4]}, {ARGV[5], ARGV[6]}
local off, on, seen = {}, {}, {}
local function flush()
  apply('ZREM', off)
  apply('ZADD', on)
  off, on, seen = {}, {}, {}
end
for i = 7, #ARGV, 7 do
  local id, was, now_in, created_ms, next_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if seen[id] then flush() end
  seen[id] = true
  redis.call('RPUSH', key(attempts, id), ARGV[i + 6])
  redis.call('SET', key(delivery, id), ARGV[i + 5])
  if was ~= now_in then
    gather(off, key(status, was), id)
    gather(on, key(status, now_in), created_ms, id)
  end
  if next_ms == '' then gather(off, KEYS[1], id) else gather(on, KEYS[1], next_ms, id) end
end
flush()
return (#ARGV - 6) / 7
"""
)


# Stores a batch of events and their deliveries: for each event not stored yet (an event seen again after a
# crash is left alone and fans out no second time), the event and its index entries, then each delivery's
# record, index entries and due time. After the creation time and seven key templates, 4 arguments an event
# and 5 a delivery; answers 1 or 0 an event.
_COMMIT_SCRIPT = (
    _LUA_HELPERS
    + """
local created = ARGV[1]
local event, account_events, account_deliveries = {ARGV[2], ARGV[3]}, {ARGV[4], ARGV[5]}, {ARGV[6], ARGV[7]}
local event_deliveries, delivery = {ARGV[8], ARGV[9]}, {ARGV[10], ARGV[11]}
local subscription_deliveries, status = {ARGV[12], ARGV[13]}, {ARGV[14], ARGV[15]}
local on, stored = {}, {}
local i = 16
while i <= #ARGV do
  local event_id, account, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 3])
  local new = redis.call('SET', key(event, event_id), ARGV[i + 2], 'NX')
  stored[#stored + 1] = new and 1 or 0
  i = i + 4
  if new then
    gather(on, KEYS[1], created, event_id)
    gather(on, key(account_events, account), created, event_id)
    for j = i, i + 5 * (n - 1), 5 do
      local id = ARGV[j]
      if redis.call('SET', key(delivery, id), ARGV[j + 4], 'NX') then
        gather(on, KEYS[2], created, id)
        gather(on, key(account_deliveries, account), created, id)
        gather(on, key(event_deliveries, event_id), created, id)
        gather(on, key(subscription_deliveries, ARGV[j + 1]), created, id)
        gather(on, key(status, ARGV[j + 2]), created, id)
        if ARGV[j + 3] ~= '' then gather(on, KEYS[3], ARGV[j + 3], id) end
      end
    end
  end
  i = i + 5 * n
end
apply('ZADD', on)
return stored
"""
)


# Claims due deliveries as ``DueSet.claim`` does, and answers each with its record: id, JSON (false if gone).
# Leases and reads go 500 deliveries a command (ZADD, MGET), not one each.
_CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
local leases, names, out = {}, {}, {}
for i, id in ipairs(ids) do
  leases[2 * i - 1], leases[2 * i] = until_ms, id
  names[i] = ARGV[4] .. id
end
for c = 1, #ids, 500 do
  local last = math.min(c + 499, #ids)
  redis.call('ZADD', KEYS[1], 'XX', unpack(leases, 2 * c - 1, 2 * last))
  local records = redis.call('MGET', unpack(names, c, last))
  for j = c, last do
    out[#out + 1] = ids[j]
    out[#out + 1] = records[j - c + 1]
  end
end
return out
"""


_COMMIT_TEMPLATES = [
    part
    for key_of in (
        keys.event,
        keys.account_events,
        keys.account_deliveries,
        keys.event_deliveries,
        keys.delivery,
        keys.subscription_deliveries,
        keys.status_deliveries,
    )
    for part in keys.template(key_of)
]
_RECORD_TEMPLATES = [
    part for key_of in (keys.delivery, keys.attempts, keys.status_deliveries) for part in keys.template(key_of)
]


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: the attempt itself, whether the receiver accepted it, and what decides the
    next one (the subscription's retry schedule, a ``Retry-After`` it asked for, bounded)."""

    delivery: DeliveryRecord
    attempt: Attempt
    succeeded: bool
    jitter: float  # in [-1, 1], drawn by the caller
    schedule_s: Sequence[float] = DEFAULT_RETRY_SCHEDULE_S
    retry_after_s: float | None = None
    held_slots: bool = True  # the attempt held slots in its subscription's and account's caps (to free now)

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: no more attempts, and the subscription is disabled."""
        return self.attempt.status_code == GONE


@dataclass(frozen=True)
class Recorded:
    """A batch of recorded attempts: the deliveries as they now stand, and for each subscription that had
    a failure in the batch, when its failing began."""

    deliveries: list[DeliveryRecord]
    failing_since: dict[str, datetime]


def after_attempt(outcome: Outcome, now: datetime) -> DeliveryRecord:
    """The delivery once ``outcome`` is recorded: succeeded, retrying at a later time, or failed for good.

    A retry waits as the schedule says, or as long as the receiver asked with ``Retry-After``; either way the
    attempt counts, so the schedule still ends. A 410 ends it at once.
    """
    delivery = outcome.delivery
    count = delivery.attempt_count + 1
    delay_s = None if outcome.gone else next_attempt_delay_s(count, outcome.schedule_s, outcome.jitter)
    if outcome.succeeded:
        status, next_at = DeliveryStatus.succeeded, None
    elif delay_s is None:
        status, next_at = DeliveryStatus.failed, None
    else:
        if outcome.retry_after_s is not None:
            delay_s = outcome.retry_after_s
        status, next_at = DeliveryStatus.retrying, now + timedelta(seconds=delay_s)
    return delivery.model_copy(
        update={
            "status": status,
            "attempt_count": count,
            "last_attempt_at": outcome.attempt.at,
            "next_attempt_at": next_at,
        }
    )


class Outbox:
    """Writes and claims deliveries; one per process, over the shared connection pool."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self.due = DueSet(redis, keys.DUE)
        self.admissions = Admissions(redis)
        self._claim = redis.register_script(_CLAIM_SCRIPT)

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
        (a poller's new cursor), all in one transaction; only while ``fence`` is still held.

        Events already stored (the same change detected again after a crash) are left as they are and fan
        out no second time. Returns the deliveries created.
        """
        planned = [
            (
                event,
                [
                    new_delivery(event.id, event.type, event.account, sub, now)
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
                    self._queue_commit(pipe, planned, now)
                if also is not None:
                    also(pipe)
                results = await pipe.execute()
            except WatchError as error:
                raise LostLease(f"lost {fence.key if fence else 'watch'}") from error
        stored = results[0] if planned else []
        return [d for (_, deliveries), new in zip(planned, stored, strict=True) if new for d in deliveries]

    async def send_to(self, event: NewEvent, sub: SubscriptionRecord, now: datetime) -> DeliveryRecord:
        """Store an event meant for one subscription alone (a ``ping``) and its delivery, due now."""
        delivery = new_delivery(event.id, event.type, event.account, sub, now)
        async with self.redis.pipeline(transaction=True) as pipe:
            self._queue_commit(pipe, [(event, [delivery])], now)
            await pipe.execute()
        return delivery

    async def claim(self, *, now: datetime, lease_s: float, limit: int) -> list[tuple[str, DeliveryRecord | None]]:
        """Up to ``limit`` due deliveries, leased to the caller for ``lease_s`` (see ``subscriptions.due``),
        each with its record (``None`` when it is no longer kept, or cannot be read), in one round trip."""
        raw = await self._claim(keys=[keys.DUE], args=[ms(now), int(lease_s * 1000), limit, keys.delivery("")])
        pairs = cast(list[Any], raw)
        claimed: list[tuple[str, DeliveryRecord | None]] = []
        for i in range(0, len(pairs), 2):
            delivery_id, text = str(pairs[i]), pairs[i + 1]
            try:
                claimed.append((delivery_id, DeliveryRecord.model_validate_json(text) if text else None))
            except ValidationError as error:  # one unreadable record must not stop every claim after it
                log.error("delivery %s cannot be read, so it is taken off the queue: %s", delivery_id, error)
                claimed.append((delivery_id, None))
        return claimed

    def _queue_commit(
        self, pipe: Pipeline, planned: Sequence[tuple[NewEvent, Sequence[DeliveryRecord]]], now: datetime
    ) -> None:
        """Queue storing events and their deliveries, all created ``now`` (one command for the batch)."""
        args: list[str | int] = [ms(now), *_COMMIT_TEMPLATES]
        for event, deliveries in planned:
            record = EventRecord(
                id=event.id,
                type=event.type,
                account=event.account,
                resource_id=event.resource_id,
                timestamp=event.timestamp,
                created_at=now,
                body=event.body,
            )
            args += [event.id, event.account, record.model_dump_json(), len(deliveries)]
            for delivery in deliveries:
                args += [
                    delivery.id,
                    delivery.subscription,
                    delivery.status,
                    ms(delivery.next_attempt_at) if delivery.next_attempt_at else "",
                    delivery.model_dump_json(),
                ]
        queue_eval(pipe, _COMMIT_SCRIPT, [keys.EVENTS, keys.DELIVERIES, keys.DUE], args)

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> Recorded:
        """Record a batch of attempts in one transaction, with what they say about their subscriptions'
        health, and free the slots they held."""
        updated = [after_attempt(outcome, now) for outcome in outcomes]
        failed_subs = sorted({o.delivery.subscription for o in outcomes if not o.succeeded})
        by_subscription: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in sorted(outcomes, key=lambda o: o.attempt.at):
            by_subscription[outcome.delivery.subscription].append(outcome)
        async with self.redis.pipeline(transaction=True) as pipe:
            args: list[str | int] = [*_RECORD_TEMPLATES]
            for outcome, delivery in zip(outcomes, updated, strict=True):
                args += [
                    delivery.id,
                    outcome.delivery.status,
                    delivery.status,
                    ms(delivery.created_at),
                    ms(delivery.next_attempt_at) if delivery.next_attempt_at else "",
                    delivery.model_dump_json(),
                    outcome.attempt.model_dump_json(),
                ]
            queue_eval(pipe, _RECORD_SCRIPT, [keys.DUE], args)
            for sub_id, theirs in by_subscription.items():
                queue_outcomes(pipe, sub_id, [(o.succeeded, o.attempt.at) for o in theirs])
                holder = (theirs[0].delivery.account, sub_id)
                self.admissions.queue_release(pipe, holder, [o.delivery.id for o in theirs if o.held_slots], ms(now))
            for sub_id in failed_subs:
                pipe.hget(keys.subscription_health(sub_id), "failing_since")
            results = await pipe.execute()
        since = results[len(results) - len(failed_subs) :] if failed_subs else []
        failing = {sub_id: when for sub_id, value in zip(failed_subs, since, strict=True) if (when := time_of(value))}
        return Recorded(updated, failing)

    async def abandon(self, delivery: DeliveryRecord, reason: str, now: datetime) -> DeliveryRecord:
        """Fail a delivery that can no longer be sent (its subscription or event is gone)."""
        done = delivery.model_copy(update={"status": DeliveryStatus.failed, "next_attempt_at": None})
        attempt = Attempt(at=now, status_code=None, error=reason, duration_ms=0)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.attempts(delivery.id), attempt.model_dump_json())
            self._write_state(pipe, delivery.status, done)
            await pipe.execute()
        return done

    async def skip(self, delivery: DeliveryRecord) -> DeliveryRecord:
        """Keep a delivery as ``skipped`` (its subscription is disabled): visible and replayable, not sent."""
        skipped = delivery.model_copy(update={"status": DeliveryStatus.skipped, "next_attempt_at": None})
        async with self.redis.pipeline(transaction=True) as pipe:
            self._write_state(pipe, delivery.status, skipped)
            await pipe.execute()
        return skipped

    async def schedule_now(self, delivery: DeliveryRecord, now: datetime) -> DeliveryRecord:
        """Make a delivery due at once, whatever its state (a manual retry)."""
        (again,) = await self.requeue([delivery], now)
        return again

    async def requeue(self, deliveries: Sequence[DeliveryRecord], now: datetime) -> list[DeliveryRecord]:
        """Make deliveries due at once, whatever their state, in one transaction (a retry or a recovery)."""
        again = [
            d.model_copy(
                update={
                    "status": DeliveryStatus.retrying if d.attempt_count else DeliveryStatus.pending,
                    "next_attempt_at": now,
                }
            )
            for d in deliveries
        ]
        async with self.redis.pipeline(transaction=True) as pipe:
            for before, after in zip(deliveries, again, strict=True):
                self._write_state(pipe, before.status, after)
            await pipe.execute()
        return again

    @staticmethod
    def _write_state(pipe: Pipeline, previous: DeliveryStatus, delivery: DeliveryRecord) -> None:
        pipe.set(keys.delivery(delivery.id), delivery.model_dump_json())
        if previous != delivery.status:
            score = ms(delivery.created_at)
            pipe.zrem(keys.status_deliveries(previous), delivery.id)
            pipe.zadd(keys.status_deliveries(delivery.status), {delivery.id: score})
        if delivery.next_attempt_at is None:
            pipe.zrem(keys.DUE, delivery.id)
        else:
            pipe.zadd(keys.DUE, {delivery.id: ms(delivery.next_attempt_at)})


def new_delivery(
    event_id: str, event_type: str, account: str, sub: SubscriptionRecord, now: datetime
) -> DeliveryRecord:
    """The delivery of an event to a subscription: due now, or ``skipped`` while the subscription is disabled
    (kept, visible and replayable, never silently dropped)."""
    skipped = sub.state == SubscriptionState.disabled
    return DeliveryRecord(
        id=delivery_id(event_id, sub.id),
        event_id=event_id,
        subscription=sub.id,
        account=account,
        type=event_type,
        status=DeliveryStatus.skipped if skipped else DeliveryStatus.pending,
        created_at=now,
        next_attempt_at=None if skipped else now,
    )
