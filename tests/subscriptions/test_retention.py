"""Retention on a real Redis: what expired goes with every index entry, what is still wanted stays."""

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.ids import delivery_id
from subscriptions.core.models import (
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    SubscriptionRecord,
    SubscriptionState,
)
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store
from subscriptions.store.retention import RetentionCounts, sweep

OLD = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)
CUTOFF_MS = ms(NOW - RETENTION)


def subscription(
    sub_id: str, events: list[str], state: SubscriptionState = SubscriptionState.active
) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=sub_id,
        account="acme",
        url="https://example.com/h",
        events=events,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        state=state,
        created_at=OLD,
        updated_at=OLD,
    )


async def write_event(redis: Redis, event_id: str, at: datetime, account: str = "acme") -> None:
    """An event as the queue stores it: the record and its two index entries."""
    record = EventRecord(
        id=event_id,
        type="order.created",
        account=account,
        resource_id=1,
        timestamp=at.isoformat(),
        created_at=at,
        body="{}",
    )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keyspace.event(event_id), record.model_dump_json())
        pipe.zadd(keyspace.EVENTS, {event_id: ms(at)})
        pipe.zadd(keyspace.account_events(account), {event_id: ms(at)})
        await pipe.execute()


async def write_delivery(
    redis: Redis,
    event_id: str,
    sub_id: str,
    status: DeliveryStatus,
    at: datetime,
    *,
    last_attempt_at: datetime | None = None,
    attempts: int = 1,
) -> str:
    """A delivery as the queue leaves it: the record, its attempts and its index entries (and its due time
    while it is not final)."""
    final = status in (DeliveryStatus.succeeded, DeliveryStatus.failed, DeliveryStatus.skipped)
    last = last_attempt_at or (at + timedelta(seconds=10) if attempts else None)
    record = DeliveryRecord(
        id=delivery_id(event_id, sub_id),
        event_id=event_id,
        subscription=sub_id,
        account="acme",
        type="order.created",
        status=status,
        created_at=at,
        next_attempt_at=None if final else at + timedelta(hours=1),
        attempt_count=attempts,
        last_attempt_at=last,
    )
    score = ms(at)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keyspace.delivery(record.id), record.model_dump_json())
        for n in range(attempts):
            attempt = Attempt(at=at + timedelta(seconds=n), status_code=500, error=None, duration_ms=12)
            pipe.rpush(keyspace.attempts(record.id), attempt.model_dump_json())
        for index in (
            keyspace.DELIVERIES,
            keyspace.subscription_deliveries(sub_id),
            keyspace.account_deliveries("acme"),
            keyspace.event_deliveries(event_id),
            keyspace.status_deliveries(status),
        ):
            pipe.zadd(index, {record.id: score})
        if record.next_attempt_at is not None:
            pipe.zadd(keyspace.DUE, {record.id: ms(record.next_attempt_at)})
        await pipe.execute()
    return record.id


async def all_keys(redis: Redis) -> set[str]:
    return {key async for key in redis.scan_iter(count=1000)}


RECORD_KEYS = (keyspace.PREFIX + "deliver", keyspace.PREFIX + "event", keyspace.DUE)  # records and their indexes


async def footprint(redis: Redis) -> tuple[set[str], dict[str, int]]:
    """Every key, and the size of each that holds deliveries or events (members of an index, attempts...).

    Per-subscription figures (health, recent outcomes) are bounded by the number of subscriptions, not of
    deliveries, so they count as keys but not by size.
    """
    names = await all_keys(redis)
    sizes = {}
    for key in sorted(k for k in names if k.startswith(RECORD_KEYS)):
        kind = await redis.type(key)
        size = {"zset": redis.zcard, "set": redis.scard, "list": redis.llen, "hash": redis.hlen}.get(kind)
        sizes[key] = await size(key) if size else 1  # type: ignore[operator]
    return names, sizes


async def members(redis: Redis, key: str) -> list[str]:
    return list(await redis.zrange(key, 0, -1))


async def test_old_final_deliveries_and_their_events_go_what_is_still_wanted_stays(redis_client: Redis) -> None:
    store = Store(redis_client)
    for sub_id in ("sub_a", "sub_b"):
        await store.create_subscription(subscription(sub_id, ["*"]))
    recent = NOW - timedelta(hours=1)
    # expired: every delivery of evt_done is final and old
    done = [
        await write_delivery(redis_client, "evt_done", "sub_a", DeliveryStatus.succeeded, OLD),
        await write_delivery(redis_client, "evt_done", "sub_b", DeliveryStatus.failed, OLD, attempts=3),
    ]
    await write_event(redis_client, "evt_done", OLD)
    skipped = await write_delivery(redis_client, "evt_skipped", "sub_a", DeliveryStatus.skipped, OLD, attempts=0)
    await write_event(redis_client, "evt_skipped", OLD)
    # kept: an old delivery still retrying keeps itself and its event, though its sibling goes
    await write_event(redis_client, "evt_retrying", OLD)
    retrying = await write_delivery(redis_client, "evt_retrying", "sub_a", DeliveryStatus.retrying, OLD)
    sibling = await write_delivery(redis_client, "evt_retrying", "sub_b", DeliveryStatus.succeeded, OLD)
    # kept: old, final, but retried by hand recently (its last change is recent)
    await write_event(redis_client, "evt_retried", OLD)
    retried = await write_delivery(
        redis_client, "evt_retried", "sub_a", DeliveryStatus.succeeded, OLD, last_attempt_at=recent
    )
    # kept: old and pending (the backlog), and everything recent
    await write_event(redis_client, "evt_pending", OLD)
    pending = await write_delivery(redis_client, "evt_pending", "sub_a", DeliveryStatus.pending, OLD, attempts=0)
    await write_event(redis_client, "evt_recent", recent)
    fresh = await write_delivery(redis_client, "evt_recent", "sub_a", DeliveryStatus.succeeded, recent)
    # an old event that matched no subscription goes too
    await write_event(redis_client, "evt_unmatched", OLD)

    counts = await sweep(redis_client, CUTOFF_MS, batch=2)  # small pages: kept ids must not stall the walk

    assert counts == RetentionCounts(deliveries=4, events=3, dangling=0)
    for gone in [*done, skipped, sibling]:
        assert not await redis_client.exists(keyspace.delivery(gone), keyspace.attempts(gone))
    kept = [retrying, retried, pending, fresh]
    assert sorted(await members(redis_client, keyspace.DELIVERIES)) == sorted(kept)
    assert sorted(await members(redis_client, keyspace.subscription_deliveries("sub_a"))) == sorted(kept)
    assert sorted(await members(redis_client, keyspace.account_deliveries("acme"))) == sorted(kept)
    assert not await redis_client.exists(keyspace.subscription_deliveries("sub_b"))  # emptied, so gone
    assert await members(redis_client, keyspace.event_deliveries("evt_retrying")) == [retrying]
    assert sorted(await members(redis_client, keyspace.status_deliveries(DeliveryStatus.succeeded))) == sorted(
        [retried, fresh]
    )
    assert not await redis_client.exists(keyspace.status_deliveries(DeliveryStatus.failed))
    assert not await redis_client.exists(keyspace.status_deliveries(DeliveryStatus.skipped))
    assert sorted(await members(redis_client, keyspace.DUE)) == sorted([retrying, pending])
    assert await redis_client.llen(keyspace.attempts(retrying)) == 1
    events = ["evt_pending", "evt_recent", "evt_retried", "evt_retrying"]
    assert sorted(await members(redis_client, keyspace.EVENTS)) == events
    assert sorted(await members(redis_client, keyspace.account_events("acme"))) == events
    for gone_event in ("evt_done", "evt_skipped", "evt_unmatched"):
        assert not await redis_client.exists(keyspace.event(gone_event), keyspace.event_deliveries(gone_event))

    before = await all_keys(redis_client)
    assert await sweep(redis_client, CUTOFF_MS) == RetentionCounts()  # a second sweep is a no-op
    assert await all_keys(redis_client) == before


async def test_the_event_goes_once_its_last_delivery_has(redis_client: Redis) -> None:
    await write_event(redis_client, "evt_1", OLD)
    await write_delivery(redis_client, "evt_1", "sub_a", DeliveryStatus.retrying, OLD)
    assert await sweep(redis_client, CUTOFF_MS) == RetentionCounts()
    # the last retry fails: the delivery is final now, and expires with its event a retention period later
    failed_at = OLD + timedelta(days=2)
    await write_delivery(redis_client, "evt_1", "sub_a", DeliveryStatus.failed, OLD, last_attempt_at=failed_at)
    await redis_client.zrem(keyspace.status_deliveries(DeliveryStatus.retrying), delivery_id("evt_1", "sub_a"))
    await redis_client.zrem(keyspace.DUE, delivery_id("evt_1", "sub_a"))
    assert await sweep(redis_client, ms(failed_at)) == RetentionCounts()  # last changed at the cutoff: kept
    assert await sweep(redis_client, ms(failed_at) + 1) == RetentionCounts(deliveries=1, events=1)
    assert await all_keys(redis_client) == {"relay-test:claimed"}


async def test_dangling_index_entries_are_cleaned(redis_client: Redis) -> None:
    await Store(redis_client).create_subscription(subscription("sub_a", ["*"]))
    await redis_client.zadd(keyspace.ACCOUNTS, {"acme": ms(OLD)})
    baseline = await footprint(redis_client)
    # a delivery whose record vanished, left in all its indexes and the due set
    await write_event(redis_client, "evt_1", OLD)
    lost = await write_delivery(redis_client, "evt_1", "sub_a", DeliveryStatus.retrying, OLD)
    await redis_client.delete(keyspace.delivery(lost))
    # an event whose record vanished
    await write_event(redis_client, "evt_2", OLD)
    await redis_client.delete(keyspace.event("evt_2"))

    counts = await sweep(redis_client, CUTOFF_MS)

    # the delivery's id in the delivery indexes, then in its event's index; the second event's id
    assert counts == RetentionCounts(deliveries=0, events=1, dangling=3)
    assert await footprint(redis_client) == baseline
    assert await sweep(redis_client, CUTOFF_MS) == RetentionCounts()


async def test_unreadable_records_are_kept(redis_client: Redis) -> None:
    await write_event(redis_client, "evt_1", OLD)
    broken = await write_delivery(redis_client, "evt_1", "sub_a", DeliveryStatus.failed, OLD)
    await redis_client.set(keyspace.delivery(broken), "{not json")
    await write_event(redis_client, "evt_2", OLD)
    await redis_client.set(keyspace.event("evt_2"), "[]")
    assert await sweep(redis_client, CUTOFF_MS) == RetentionCounts()
    assert await redis_client.exists(keyspace.delivery(broken), keyspace.event("evt_2")) == 2


def new_event(n: int) -> NewEvent:
    return NewEvent(
        id=f"evt_{n}",
        type="order.created",
        account="acme",
        resource_id=n,
        timestamp="2026-11-01T10:00:00Z",
        body=event_body("order.created", "2026-11-01T10:00:00Z", {"id": n}),
    )


async def test_memory_is_bounded_once_the_retention_period_passes(redis_client: Redis) -> None:
    """Through the queue's own writes: once the old records expire, Redis holds the keys it held before."""
    queue, store = DeliveryQueue(redis_client), Store(redis_client)
    subs = [
        subscription("sub_ok", ["*"]),
        subscription("sub_down", ["*"]),
        subscription("sub_off", ["*"], SubscriptionState.disabled),
    ]
    for sub in subs:
        await store.create_subscription(sub)

    async def deliver(events: list[NewEvent], at: datetime) -> None:
        created = await queue.commit(events, subs, now=at)
        attempt = Attempt(at=at + timedelta(seconds=1), status_code=None, error="refused", duration_ms=3)
        outcomes = [
            Outcome(d, attempt, succeeded=d.subscription == "sub_ok", jitter=0.0, schedule_s=())
            for d in created
            if d.status == DeliveryStatus.pending
        ]
        await queue.record(outcomes, at + timedelta(seconds=1))

    await deliver([new_event(0)], NOW - timedelta(minutes=5))  # recent traffic: every per-subscription key exists
    baseline = await footprint(redis_client)
    await deliver([new_event(n) for n in range(1, 40)], OLD)
    assert len(await all_keys(redis_client)) > len(baseline) + 39 * 4

    counts = await sweep(redis_client, CUTOFF_MS, batch=16)

    assert counts == RetentionCounts(deliveries=39 * 3, events=39)
    assert await footprint(redis_client) == baseline  # the same keys, each holding as much as before
    assert await members(redis_client, keyspace.EVENTS) == ["evt_0"]
