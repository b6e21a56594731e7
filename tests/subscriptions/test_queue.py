"""The delivery queue on a real Redis: fan-out, claiming and recording."""

from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.errors import LostLease
from subscriptions.core.fence import Fence
from subscriptions.core.ids import delivery_id
from subscriptions.core.models import Attempt, DeliveryStatus, SubscriptionRecord, SubscriptionState
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store
from tests.conftest import FakeClock


def sub(
    sub_id: str,
    events: list[str],
    clock: FakeClock,
    *,
    account: str = "acme",
    state: SubscriptionState = SubscriptionState.active,
) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=sub_id,
        account=account,
        url="https://example.com/h",
        events=events,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        state=state,
        created_at=clock(),
        updated_at=clock(),
    )


def event(n: int, event_type: str = "order.created", account: str = "acme") -> NewEvent:
    return NewEvent(
        id=f"evt_{n}",
        type=event_type,
        account=account,
        resource_id=n,
        timestamp="2026-11-26T10:00:00Z",
        body=event_body(event_type, "2026-11-26T10:00:00Z", {"id": n}),
    )


async def test_commit_fans_out_to_matching_subscriptions(redis_client: Redis, clock: FakeClock) -> None:
    queue, store = DeliveryQueue(redis_client), Store(redis_client)
    subs = [
        sub("sub_all", ["*"], clock),
        sub("sub_orders", ["order.*"], clock),
        sub("sub_contacts", ["contact.*"], clock),
        sub("sub_off", ["*"], clock, state=SubscriptionState.disabled),
        sub("sub_other_account", ["*"], clock, account="beta"),
    ]
    created = await queue.commit([event(1), event(2)], subs, now=clock())
    assert sorted(d.subscription for d in created if d.event_id == "evt_1") == ["sub_all", "sub_off", "sub_orders"]
    by_id = {d.id: d for d in created}
    assert by_id[delivery_id("evt_1", "sub_off")].status == DeliveryStatus.skipped
    assert by_id[delivery_id("evt_1", "sub_all")].status == DeliveryStatus.pending
    assert await redis_client.zcard(keyspace.DUE) == 4  # skipped deliveries are kept, not queued
    stored = await store.get_event("evt_1")
    assert stored.body == event_body("order.created", "2026-11-26T10:00:00Z", {"id": 1})


async def test_the_same_change_committed_twice_fans_out_once(redis_client: Redis, clock: FakeClock) -> None:
    queue = DeliveryQueue(redis_client)
    subs = [sub("sub_all", ["*"], clock)]
    assert len(await queue.commit([event(1)], subs, now=clock())) == 1
    clock.advance(5)
    again = await queue.commit([event(1), event(2)], subs, now=clock())
    assert [d.event_id for d in again] == ["evt_2"]
    page = await Store(redis_client).list_deliveries(limit=10, cursor=None)
    assert sorted(d.event_id for d in page.items) == ["evt_1", "evt_2"]


async def test_commit_writes_the_cursor_with_the_events(redis_client: Redis, clock: FakeClock) -> None:
    queue = DeliveryQueue(redis_client)

    def cursor(pipe: Pipeline) -> None:
        pipe.set(keyspace.position("acme", "orders"), "C1")

    await queue.commit([event(1)], [], now=clock(), also=cursor)
    assert await redis_client.get(keyspace.position("acme", "orders")) == "C1"
    assert await redis_client.exists(keyspace.event("evt_1"))


async def test_a_lost_lock_writes_nothing(redis_client: Redis, clock: FakeClock) -> None:
    queue = DeliveryQueue(redis_client)
    await redis_client.set("lock", "someone-else")

    def cursor(pipe: Pipeline) -> None:
        pipe.set(keyspace.position("acme", "orders"), "stale")

    with pytest.raises(LostLease):
        await queue.commit([event(1)], [sub("s", ["*"], clock)], now=clock(), fence=Fence("lock", "mine"), also=cursor)
    assert not await redis_client.exists(keyspace.event("evt_1"), keyspace.position("acme", "orders"))
    await redis_client.set("lock", "mine")
    await queue.commit([event(1)], [], now=clock(), fence=Fence("lock", "mine"), also=cursor)
    assert await redis_client.get(keyspace.position("acme", "orders")) == "stale"


async def test_claims_are_leased(redis_client: Redis, clock: FakeClock) -> None:
    queue = DeliveryQueue(redis_client)
    created = await queue.commit([event(1), event(2), event(3)], [sub("s", ["*"], clock)], now=clock())
    first = await queue.claim(now=clock(), timeout_s=15, limit=2)  # leased 15 s and the margin: 25 s
    second = await queue.claim(now=clock(), timeout_s=15, limit=10)
    assert len(first) == 2
    assert len(second) == 1
    assert {d for d, _ in first + second} == {d.id for d in created}
    assert await queue.claim(now=clock(), timeout_s=15, limit=10) == []
    clock.advance(26)  # the claimer died: its claims come due again
    again = await queue.claim(now=clock(), timeout_s=15, limit=10)
    assert sorted(d for d, _ in again) == sorted(d.id for d in created)


async def test_a_claim_answers_each_delivery_with_its_record_over_more_than_one_chunk(
    redis_client: Redis, clock: FakeClock
) -> None:
    queue = DeliveryQueue(redis_client)
    created = []
    for start in range(0, 1_200, 400):
        created += await queue.commit(
            [event(n) for n in range(start, start + 400)], [sub("s", ["*"], clock)], now=clock()
        )
    gone = created[700]
    await redis_client.delete(keyspace.delivery(gone.id))  # removed meanwhile (retention, say)
    claimed = await queue.claim(now=clock(), timeout_s=15, limit=1_100)
    records = dict(claimed)
    assert len(claimed) == len(records) == 1_100
    assert records.pop(gone.id, "not claimed") is None
    assert all(record is not None and record.id == claimed_id for claimed_id, record in records.items())
    rest = await queue.claim(now=clock(), timeout_s=15, limit=1_100)
    assert len(rest) == 100  # every claim above is leased: only the last 100 were still due
    assert {d for d, _ in claimed} | {d for d, _ in rest} == {d.id for d in created}


async def test_recording_outcomes(redis_client: Redis, clock: FakeClock) -> None:
    queue, store = DeliveryQueue(redis_client), Store(redis_client)
    ok, flaky, doomed = await queue.commit([event(1), event(2), event(3)], [sub("s", ["*"], clock)], now=clock())
    schedule = (5.0, 60.0)

    def outcome(delivery: object, succeeded: bool, status: int | None) -> Outcome:
        attempt = Attempt(at=clock(), status_code=status, error=None if status else "timeout", duration_ms=12)
        return Outcome(delivery, attempt, succeeded, jitter=0.0, schedule_s=schedule)  # type: ignore[arg-type]

    await queue.record([outcome(ok, True, 200), outcome(flaky, False, 500), outcome(doomed, False, None)], clock())
    assert (await store.get_delivery(ok.id)).status == DeliveryStatus.succeeded
    retrying = await store.get_delivery(flaky.id)
    assert retrying.status == DeliveryStatus.retrying
    assert retrying.next_attempt_at == clock() + timedelta(seconds=5)
    assert retrying.attempt_count == 1
    assert [a.status_code for a in await store.attempts(flaky.id)] == [500]
    due = await redis_client.zrange(keyspace.DUE, 0, -1)
    assert sorted(due) == sorted([flaky.id, doomed.id])
    # the last scheduled retry fails too: failed for good, nothing left due
    doomed_now = await store.get_delivery(doomed.id)
    for _ in range(2):
        clock.advance(60)
        await queue.record([outcome(doomed_now, False, 503)], clock())
        doomed_now = await store.get_delivery(doomed.id)
    assert doomed_now.status == DeliveryStatus.failed
    assert doomed_now.attempt_count == 3
    assert doomed.id not in await redis_client.zrange(keyspace.DUE, 0, -1)
    assert [a.status_code for a in await store.attempts(doomed.id)] == [None, 503, 503]
    assert [d.id for d in (await store.list_deliveries(limit=10, cursor=None, status=DeliveryStatus.failed)).items] == [
        doomed.id
    ]


async def test_two_outcomes_of_one_delivery_in_one_batch_apply_in_order(redis_client: Redis, clock: FakeClock) -> None:
    # index moves are gathered per batch; a delivery met twice must still end where its last outcome puts it
    queue, store = DeliveryQueue(redis_client), Store(redis_client)
    (delivery,) = await queue.commit([event(1)], [sub("s", ["*"], clock)], now=clock())
    failed = Outcome(delivery, Attempt(at=clock(), status_code=500, error=None, duration_ms=5), False, 0.0)
    retrying = delivery.model_copy(update={"status": DeliveryStatus.retrying, "attempt_count": 1})
    ok = Outcome(retrying, Attempt(at=clock(), status_code=204, error=None, duration_ms=5), True, 0.0)
    await queue.record([failed, ok], clock())
    assert (await store.get_delivery(delivery.id)).status == DeliveryStatus.succeeded
    statuses = {s: await redis_client.zrange(keyspace.status_deliveries(s), 0, -1) for s in DeliveryStatus}
    assert {s: ids for s, ids in statuses.items() if ids} == {DeliveryStatus.succeeded: [delivery.id]}
    assert await redis_client.zrange(keyspace.DUE, 0, -1) == []
    assert [a.status_code for a in await store.attempts(delivery.id)] == [500, 204]


async def test_a_commit_of_thousands_indexes_every_event_and_delivery(redis_client: Redis, clock: FakeClock) -> None:
    # sorted-set writes go out 500 members a command: more than that in one commit must all land
    queue = DeliveryQueue(redis_client)
    subs = [sub("s1", ["*"], clock), sub("s2", ["order.*"], clock)]
    created = await queue.commit([event(n) for n in range(1200)], subs, now=clock())
    assert len(created) == 2400
    assert await redis_client.zcard(keyspace.EVENTS) == 1200
    assert await redis_client.zcard(keyspace.account_events("acme")) == 1200
    for key in (
        keyspace.DELIVERIES,
        keyspace.DUE,
        keyspace.account_deliveries("acme"),
        keyspace.status_deliveries("pending"),
    ):
        assert await redis_client.zcard(key) == 2400
    assert await redis_client.zcard(keyspace.subscription_deliveries("s2")) == 1200
    assert await redis_client.zcard(keyspace.event_deliveries("evt_1199")) == 2


async def test_manual_retry_makes_any_delivery_due(redis_client: Redis, clock: FakeClock) -> None:
    queue, store = DeliveryQueue(redis_client), Store(redis_client)
    (delivery,) = await queue.commit([event(1)], [sub("s", ["*"], clock)], now=clock())
    attempt = Attempt(at=clock(), status_code=200, error=None, duration_ms=3)
    await queue.record([Outcome(delivery, attempt, True, 0.0, schedule_s=(5.0,))], clock())
    again = await queue.schedule_now(await store.get_delivery(delivery.id), clock())
    assert again.status == DeliveryStatus.retrying
    assert [d for d, _ in await queue.claim(now=clock(), timeout_s=0, limit=5)] == [delivery.id]
    assert [
        d.id for d in (await store.list_deliveries(limit=5, cursor=None, status=DeliveryStatus.succeeded)).items
    ] == []
