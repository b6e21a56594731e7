"""A subscriber that is down for a long time loses nothing: once it is back its deliveries arrive by
themselves, or a single recovery sends them; one down for days is disabled, and what comes meanwhile is kept.

The dispatcher runs for real (real Redis, real HTTP over loopback); only its clock is moved by hand, so an
hour or five days pass in a second.
"""

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from redis.asyncio import Redis

from relay.receiver import Receiver
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import DeliveryStatus, SubscriptionRecord, SubscriptionState
from subscriptions.core.signing import new_secret
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from subscriptions.store.recovery import Recoveries
from tests.conftest import FakeClock
from tests.e2e import free_port, wait_for
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.metrics import Metrics
from workers.sender import delivery_session

SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0)


@dataclass
class Outage:
    store: Store
    queue: DeliveryQueue
    clock: FakeClock
    receiver: Receiver
    port: int
    sub: SubscriptionRecord
    dispatcher: Dispatcher
    runner: web.AppRunner | None = None

    async def up(self) -> None:
        self.runner = web.AppRunner(self.receiver.app())
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def emit(self, n: int) -> None:
        stamp = self.clock().isoformat()
        event = NewEvent(f"evt_{n}", "order.created", "acme", n, stamp, event_body("order.created", stamp, {"id": n}))
        await self.queue.commit([event], [await self.store.get_subscription(self.sub.id)], now=self.clock())

    async def statuses(self) -> dict[str, int]:
        page = await self.store.list_deliveries(limit=1000, cursor=None, subscription=self.sub.id)
        counts: dict[str, int] = {}
        for delivery in page.items:
            counts[delivery.status] = counts.get(delivery.status, 0) + 1
        return counts

    async def settle(self) -> None:
        """Let the dispatcher attempt everything due now (nothing in flight, nothing due by the clock)."""

        async def idle() -> bool:
            due = await self.queue.redis.zcount("relay:due", "-inf", int(self.clock().timestamp() * 1000))
            flight = await self.queue.redis.zcard(f"relay:sub:{self.sub.id}:in-flight")
            return due == 0 and flight == 0 and self.dispatcher.idle  # (a claim not yet admitted is not in flight)

        await wait_for(idle, 10, "every due delivery to be attempted")


@pytest.fixture
async def outage(redis_client: Redis) -> AsyncIterator[Outage]:
    clock = FakeClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    store, queue = Store(redis_client), DeliveryQueue(redis_client)
    receiver = Receiver(secret=new_secret())
    port = free_port()
    sub = SubscriptionRecord(
        id="sub_outage",
        account="acme",
        url=f"http://127.0.0.1:{port}/hooks",
        events=["*"],
        secret=receiver.secret or "",
        created_at=clock(),
        updated_at=clock(),
    )
    await store.create_subscription(sub)
    session = delivery_session(allow_private=True)
    policy = DeliveryPolicy(retry_schedule_s=SCHEDULE_S, timeout_s=2, allow_private_targets=True, idle_poll_s=0.02)
    dispatcher = Dispatcher(store, queue, session, policy, Metrics(), clock=clock, rng=random.Random(7))
    task = asyncio.create_task(dispatcher.run())
    state = Outage(store, queue, clock, receiver, port, sub, dispatcher)
    try:
        yield state
    finally:
        await dispatcher.stop()
        await task
        await session.close()
        if state.runner is not None:
            await state.runner.cleanup()


async def go_down_for_an_hour(outage: Outage, events: int) -> None:
    """The subscriber is down (connections refused) while ``events`` events come, over one hour."""
    for n in range(events):
        await outage.emit(n)
        await outage.settle()
        outage.clock.advance(3600 / events)
        await outage.settle()


async def test_back_after_an_hour_its_deliveries_arrive_by_themselves(outage: Outage) -> None:
    await go_down_for_an_hour(outage, 30)
    assert outage.receiver.received == []
    assert (await outage.statuses()).get("retrying") == 30  # none given up on
    await outage.up()
    outage.clock.advance(2 * 3600 * 1.2)  # past the longest retry any of them waits for
    await outage.settle()

    async def all_arrived() -> bool:
        return (await outage.statuses()).get("succeeded") == 30

    await wait_for(all_arrived, 10, "every delivery to succeed")
    ids = [r.webhook_id for r in outage.receiver.received]
    assert sorted(ids) == sorted(f"evt_{n}" for n in range(30))  # every one, once
    health = await outage.store.redis.hget("relay:sub:sub_outage:health", "failing_since")
    assert health is None  # a success ended the failing spell


async def test_one_recover_call_sends_what_ran_out_of_retries(outage: Outage) -> None:
    await outage.store.save_subscription(outage.sub.model_copy(update={"retry_schedule_s": [5.0, 60.0]}))
    started = outage.clock()
    await go_down_for_an_hour(outage, 20)
    outage.clock.advance(120)  # the last one's last retry
    await outage.settle()
    assert (await outage.statuses()) == {"failed": 20}
    await outage.up()
    recoveries = Recoveries(outage.store, outage.queue)
    recovery = await recoveries.start(outage.sub.id, started, outage.clock(), outage.clock())
    assert recovery.total == 20
    assert await recoveries.run(recovery.id, outage.clock()) == 20
    await outage.settle()

    async def completed() -> bool:
        return (await recoveries.progress(recovery.id)).status == "completed"

    await wait_for(completed, 10, "the recovery to complete")
    progress = await recoveries.progress(recovery.id)
    assert (progress.done, progress.succeeded, progress.failed) == (20, 20, 0)
    assert sorted(r.webhook_id for r in outage.receiver.received) == sorted(f"evt_{n}" for n in range(20))


async def test_five_days_without_a_success_disable_it_and_keep_what_comes_meanwhile(outage: Outage) -> None:
    await outage.emit(0)
    await outage.settle()
    for _ in range(5):  # five days of failed retries
        outage.clock.advance(86_400)
        await outage.emit(int(outage.clock().timestamp()))
        await outage.settle()
    sub = await outage.store.get_subscription(outage.sub.id)
    assert sub.state == SubscriptionState.disabled
    assert sub.disabled_reason is not None
    assert "no successful delivery since 2026-11-26T09:00:00+00:00" in sub.disabled_reason
    await outage.emit(999)
    outage.clock.advance(SCHEDULE_S[-1] * 2)
    await outage.settle()
    counts = await outage.statuses()
    assert counts.get("skipped", 0) >= 1
    assert set(counts) <= {"skipped", "failed"}  # nothing pending behind a disabled subscription
    skipped = await outage.store.list_deliveries(
        limit=100, cursor=None, subscription=outage.sub.id, status=DeliveryStatus.skipped
    )
    assert "evt_999" in {d.event_id for d in skipped.items}
    # re-enabled and recovered: everything arrives
    await outage.store.reenable_subscription(sub.model_copy(update={"state": SubscriptionState.active}))
    await outage.up()
    recoveries = Recoveries(outage.store, outage.queue)
    recovery = await recoveries.start(
        outage.sub.id, datetime(2026, 11, 26, tzinfo=UTC), outage.clock() + timedelta(seconds=1), outage.clock()
    )
    await recoveries.run(recovery.id, outage.clock())
    await outage.settle()

    async def everything() -> bool:
        return set(await outage.statuses()) == {"succeeded"}

    await wait_for(everything, 10, "every kept delivery to succeed")
    assert "evt_999" in {r.webhook_id for r in outage.receiver.received}
