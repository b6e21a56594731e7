"""Delivery isolation: a subscriber that hangs or fails every request does not hold up the others.

A real dispatcher on a real Redis sends to loopback subscribers that answer 204 at once, never answer, or answer
500. Timings here are bounds far from what is expected (a healthy delivery takes milliseconds; the bound is
seconds, and the hanging subscriber's timeout longer still), not benchmarks: ``bench/isolation.py`` measures.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web
from redis.asyncio import Redis

from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import DeliveryRecord, DeliveryStatus, SubscriptionRecord
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.e2e import free_port, subscription_to, wait_for
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.metrics import Metrics
from workers.sender import delivery_session

TIMEOUT_S = 10.0  # the hanging subscriber's attempts would end here; every healthy one must arrive long before
HEALTHY_WITHIN_S = 3.0
PER_SUBSCRIPTION = 4
POLICY = DeliveryPolicy(
    retry_schedule_s=(60.0,),
    timeout_s=TIMEOUT_S,
    max_in_flight=16,
    per_subscription=PER_SUBSCRIPTION,
    allow_private_targets=True,
)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Subscriber:
    """One loopback subscriber: ``healthy`` answers 204 at once, ``hanging`` never answers, ``failing`` 500."""

    name: str
    arrivals: dict[str, float] = field(default_factory=dict)  # webhook-id -> time.monotonic() of first arrival
    requests: int = 0
    open_now: int = 0
    most_open: int = 0


@dataclass
class Rig:
    store: Store
    queue: DeliveryQueue
    base_url: str
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    committed_at: dict[str, float] = field(default_factory=dict)  # event id -> time.monotonic() of its commit
    _events: int = 0

    async def subscribe(self, name: str) -> SubscriptionRecord:
        self.subscribers[name] = Subscriber(name)
        sub = subscription_to(f"{self.base_url}/{name}", f"sub_{name}")
        await self.store.create_subscription(sub)
        return sub

    async def emit(self, count: int, subs: Sequence[SubscriptionRecord]) -> list[DeliveryRecord]:
        """Commit ``count`` events, each fanned out to every one of ``subs``."""
        first, self._events = self._events, self._events + count
        events = [
            NewEvent(
                f"evt_{n}", "order.created", "acme", n, "2026-11-26T10:00:00Z", event_body("order.created", "", {})
            )
            for n in range(first, self._events)
        ]
        started = time.monotonic()
        deliveries = await self.queue.commit(events, subs, now=now())
        self.committed_at.update(dict.fromkeys((e.id for e in events), started))
        return deliveries


def subscribers_app(rig: Rig, release: asyncio.Event) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        subscriber = rig.subscribers[request.match_info["name"]]
        await request.read()
        subscriber.requests += 1
        subscriber.open_now += 1
        subscriber.most_open = max(subscriber.most_open, subscriber.open_now)
        try:
            if subscriber.name.startswith("hanging"):
                await release.wait()  # the sender gives up first; teardown releases whatever is left
            if subscriber.name.startswith("failing"):
                return web.Response(status=500, text="always failing")
            subscriber.arrivals.setdefault(request.headers["webhook-id"], time.monotonic())
            return web.Response(status=204)
        finally:
            subscriber.open_now -= 1

    app = web.Application()
    app.router.add_post("/{name}", hook)
    return app


@pytest.fixture
async def rig(redis_client: Redis) -> AsyncIterator[Rig]:
    store, queue = Store(redis_client), DeliveryQueue(redis_client)
    port = free_port()
    rig = Rig(store, queue, f"http://127.0.0.1:{port}")
    release = asyncio.Event()
    runner = web.AppRunner(subscribers_app(rig, release), handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    session = delivery_session(allow_private=True)
    dispatcher = Dispatcher(store, queue, session, POLICY, Metrics(), clock=now)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield rig
    finally:
        await dispatcher.stop(drain_s=0)  # cuts the hanging attempts off; their claims are simply left
        await task
        await session.close()
        release.set()
        await runner.cleanup()


async def all_arrived(rig: Rig, names: Sequence[str], event_ids: Sequence[str], within_s: float) -> None:
    def arrived() -> bool:
        return all(e in rig.subscribers[name].arrivals for name in names for e in event_ids)

    await wait_for(arrived, within_s, f"every event at {', '.join(names)}")


def slowest_s(rig: Rig, names: Sequence[str], event_ids: Sequence[str]) -> float:
    """The longest time from commit to arrival among these deliveries."""
    return max(rig.subscribers[name].arrivals[e] - rig.committed_at[e] for name in names for e in event_ids)


async def test_a_hanging_subscriber_holds_only_its_own_slots(rig: Rig) -> None:
    hanging = await rig.subscribe("hanging")
    healthy = [await rig.subscribe("healthy-1"), await rig.subscribe("healthy-2")]
    await rig.emit(20, [hanging])  # it has been hanging a while: more waiting for it than its cap

    def holds_its_cap() -> bool:
        return rig.subscribers["hanging"].open_now == PER_SUBSCRIPTION

    await wait_for(holds_its_cap, HEALTHY_WITHIN_S, "the hanging subscriber to hold all of its slots")
    stream = await rig.emit(40, [hanging, *healthy])
    event_ids = sorted({d.event_id for d in stream})
    names = ["healthy-1", "healthy-2"]
    await all_arrived(rig, names, event_ids, HEALTHY_WITHIN_S + 1)
    assert slowest_s(rig, names, event_ids) < HEALTHY_WITHIN_S

    # Its deliveries come due again every few hundred ms while it is at its cap; none may start another request.
    await asyncio.sleep(1.0)
    hung = rig.subscribers["hanging"]
    assert (hung.most_open, hung.requests, hung.open_now) == (PER_SUBSCRIPTION, PER_SUBSCRIPTION, PER_SUBSCRIPTION)

    async def recorded() -> bool:
        done = await rig.store.load_deliveries([d.id for d in stream if d.subscription != hanging.id])
        return all(d is not None and d.status == DeliveryStatus.succeeded for d in done)

    await wait_for(recorded, HEALTHY_WITHIN_S, "the healthy deliveries to be recorded as succeeded")


async def test_a_failing_subscriber_does_not_stop_the_others(rig: Rig) -> None:
    failing = await rig.subscribe("failing")
    healthy = [await rig.subscribe("healthy-1"), await rig.subscribe("healthy-2")]
    stream = await rig.emit(30, [failing, *healthy])
    event_ids = sorted({d.event_id for d in stream})
    names = ["healthy-1", "healthy-2"]
    await all_arrived(rig, names, event_ids, HEALTHY_WITHIN_S + 1)
    assert slowest_s(rig, names, event_ids) < HEALTHY_WITHIN_S

    failed = [d for d in stream if d.subscription == failing.id]

    async def recorded() -> bool:
        done = await rig.store.load_deliveries([d.id for d in failed])
        return all(d is not None and d.status == DeliveryStatus.retrying for d in done)

    await wait_for(recorded, HEALTHY_WITHIN_S, "every delivery to the failing subscriber to be recorded")
    for delivery in failed:
        assert [a.status_code for a in await rig.store.attempts(delivery.id)] == [500]
    assert rig.subscribers["failing"].requests == len(failed) == 30
    assert rig.subscribers["failing"].most_open <= PER_SUBSCRIPTION


async def test_a_hanging_subscribers_backlog_is_parked_out_of_the_others_way(rig: Rig) -> None:
    hanging = await rig.subscribe("hanging")
    healthy = await rig.subscribe("healthy-1")
    backlog = await rig.emit(500, [hanging])

    async def parked() -> bool:
        return await rig.store.redis.zcard(f"relay:sub:{hanging.id}:parked") == len(backlog) - PER_SUBSCRIPTION

    await wait_for(parked, HEALTHY_WITHIN_S, "the backlog beyond the cap to be parked")
    due = set(await rig.store.redis.zrange("relay:due", 0, -1))
    assert len(due & {d.id for d in backlog}) == PER_SUBSCRIPTION  # only the ones under way keep a claim
    stream = await rig.emit(40, [healthy])
    await all_arrived(rig, ["healthy-1"], sorted({d.event_id for d in stream}), HEALTHY_WITHIN_S)
    assert slowest_s(rig, ["healthy-1"], sorted({d.event_id for d in stream})) < 1.0


async def test_a_subscription_with_a_longer_timeout_holds_its_slots_as_long(rig: Rig) -> None:
    hanging = await rig.subscribe("hanging")
    await rig.store.save_subscription(hanging.model_copy(update={"timeout_s": 100.0}))
    await rig.emit(PER_SUBSCRIPTION + 2, [hanging])

    def holds_its_cap() -> bool:
        return rig.subscribers["hanging"].open_now == PER_SUBSCRIPTION

    await wait_for(holds_its_cap, HEALTHY_WITHIN_S, "the hanging subscriber to hold all of its slots")
    leases = await rig.store.redis.zrange(f"relay:sub:{hanging.id}:in-flight", 0, -1, withscores=True)
    assert len(leases) == PER_SUBSCRIPTION
    assert min(score for _, score in leases) / 1000 >= time.time() + 100  # not the relay's 10 s default


async def test_parked_deliveries_come_back_when_a_dead_workers_slots_expire(rig: Rig) -> None:
    healthy = await rig.subscribe("healthy-1")
    redis = rig.store.redis
    # a worker died holding every slot of this subscription, its other deliveries parked behind them
    stale = {f"dlv_dead_{n}": 0 for n in range(PER_SUBSCRIPTION)}
    await redis.zadd(f"relay:sub:{healthy.id}:in-flight", stale)
    deliveries = await rig.emit(5, [healthy])
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem("relay:due", *(d.id for d in deliveries))
        pipe.zadd(f"relay:sub:{healthy.id}:parked", {d.id: 0 for d in deliveries})
        pipe.sadd("relay:parked", healthy.id)
        await pipe.execute()
    await all_arrived(rig, ["healthy-1"], sorted({d.event_id for d in deliveries}), 5.0)
    assert await redis.exists(f"relay:sub:{healthy.id}:parked", "relay:parked") == 0


async def test_deleting_a_subscription_ends_its_parked_deliveries_visibly(rig: Rig) -> None:
    hanging = await rig.subscribe("hanging")
    backlog = await rig.emit(20, [hanging])

    async def parked() -> bool:
        return await rig.store.redis.zcard(f"relay:sub:{hanging.id}:parked") == len(backlog) - PER_SUBSCRIPTION

    await wait_for(parked, HEALTHY_WITHIN_S, "the backlog beyond the cap to be parked")
    waiting = await rig.store.redis.zrange(f"relay:sub:{hanging.id}:parked", 0, -1)
    await rig.store.delete_subscription(hanging.id)

    async def ended() -> bool:
        loaded = await rig.store.load_deliveries(waiting)
        return all(d is not None and d.status == DeliveryStatus.failed for d in loaded)

    await wait_for(ended, HEALTHY_WITHIN_S, "the parked deliveries to end as failed")
    failed = [d for d in await rig.store.load_deliveries(waiting) if d and d.status == DeliveryStatus.failed]
    assert "subscription was deleted" in str((await rig.store.attempts(failed[0].id))[-1].error)
