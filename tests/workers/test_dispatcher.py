"""The dispatcher on a real Redis, sending to a real receiver over loopback."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from relay.receiver import Receiver
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import DeliveryRecord, DeliveryStatus, SubscriptionRecord, SubscriptionState
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.e2e import free_port, subscription_to, wait_for
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.metrics import Metrics
from workers.sender import delivery_session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Rig:
    store: Store
    queue: DeliveryQueue
    receiver: Receiver
    url: str

    async def subscribe(
        self, url: str | None = None, state: SubscriptionState = SubscriptionState.active
    ) -> SubscriptionRecord:
        sub = subscription_to(url or self.url, f"sub_{len(self.receiver.received)}_{url is None}", state=state)
        self.receiver.secret = sub.secret
        await self.store.create_subscription(sub)
        return sub

    async def emit(self, n: int, sub: SubscriptionRecord) -> DeliveryRecord:
        event = NewEvent(
            f"evt_{n}",
            "order.created",
            "acme",
            n,
            "2026-11-26T10:00:00Z",
            event_body("order.created", "2026-11-26T10:00:00Z", {"id": n}),
        )
        (delivery,) = await self.queue.commit([event], [sub], now=now())
        return delivery

    async def settled(self, delivery_id: str) -> DeliveryRecord:
        async def done() -> bool:
            return (await self.store.get_delivery(delivery_id)).status not in (DeliveryStatus.pending,)

        await wait_for(done, 10, f"{delivery_id} to be attempted")
        return await self.store.get_delivery(delivery_id)


async def _run(redis_client: Redis, allow_private: bool) -> AsyncIterator[Rig]:
    receiver = Receiver()
    app = receiver.app()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://example.com/elsewhere")

    app.router.add_post("/moved", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    session = delivery_session(allow_private=allow_private)
    store, queue = Store(redis_client), DeliveryQueue(redis_client)
    dispatcher = Dispatcher(
        store,
        queue,
        session,
        DeliveryPolicy(retry_schedule_s=(60.0,), timeout_s=2, allow_private_targets=allow_private),
        Metrics(),
        clock=now,
    )
    task = asyncio.create_task(dispatcher.run())
    try:
        yield Rig(store, queue, receiver, f"http://127.0.0.1:{port}/hooks")
    finally:
        await dispatcher.stop()
        await task
        await session.close()
        await runner.cleanup()


@pytest.fixture
async def rig(redis_client: Redis) -> AsyncIterator[Rig]:
    async for value in _run(redis_client, allow_private=True):
        yield value


@pytest.fixture
async def guarded(redis_client: Redis) -> AsyncIterator[Rig]:
    async for value in _run(redis_client, allow_private=False):
        yield value


async def test_delivers_and_records(rig: Rig) -> None:
    sub = await rig.subscribe()
    delivery = await rig.emit(1, sub)
    done = await rig.settled(delivery.id)
    assert done.status == DeliveryStatus.succeeded
    (attempt,) = await rig.store.attempts(delivery.id)
    assert attempt.status_code == 204
    assert rig.receiver.received[0].verified
    assert rig.receiver.received[0].webhook_id == "evt_1"


async def test_a_failure_is_scheduled_for_retry(rig: Rig) -> None:
    sub = await rig.subscribe()
    rig.receiver.fail_next, rig.receiver.fail_status = 1, 503
    done = await rig.settled((await rig.emit(2, sub)).id)
    assert done.status == DeliveryStatus.retrying
    assert done.next_attempt_at is not None
    assert 47 < (done.next_attempt_at - now()).total_seconds() < 73  # 60 s ± 20 % jitter
    assert [a.status_code for a in await rig.store.attempts(done.id)] == [503]


async def test_redirects_are_not_followed(rig: Rig) -> None:
    sub = await rig.subscribe(rig.url.replace("/hooks", "/moved"))
    done = await rig.settled((await rig.emit(3, sub)).id)
    (attempt,) = await rig.store.attempts(done.id)
    assert attempt.status_code == 302
    assert attempt.error == "redirect to https://example.com/elsewhere not followed"
    assert done.status == DeliveryStatus.retrying


async def test_no_answer_is_described(rig: Rig) -> None:
    sub = await rig.subscribe(f"http://127.0.0.1:{free_port()}/nobody")
    done = await rig.settled((await rig.emit(4, sub)).id)
    (attempt,) = await rig.store.attempts(done.id)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("connection failed: ")


async def test_a_disabled_subscription_keeps_its_deliveries_as_skipped(rig: Rig) -> None:
    sub = await rig.subscribe()
    delivery = await rig.emit(5, sub)
    await rig.store.save_subscription(sub.model_copy(update={"state": SubscriptionState.disabled}))
    done = await rig.settled(delivery.id)
    assert done.status == DeliveryStatus.skipped
    assert rig.receiver.received == []


async def test_a_deleted_subscription_fails_its_deliveries_with_a_reason(rig: Rig) -> None:
    sub = await rig.subscribe()
    await rig.store.delete_subscription(sub.id)
    delivery = await rig.emit(6, sub)  # committed as the subscription went: the dispatcher may not claim it between
    done = await rig.settled(delivery.id)
    assert done.status == DeliveryStatus.failed
    assert (await rig.store.attempts(done.id))[0].error == "not sent: its subscription was deleted"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::ffff:127.0.0.1]",
        "\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1",  # Unicode digits the HTTP client reads as 127.0.0.1
        "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11",
    ],
)
async def test_private_targets_are_refused_at_connection_time(guarded: Rig, host: str) -> None:
    # stored directly, as if its name resolved elsewhere when it was registered (DNS rebinding), or as if it was
    # registered before the registration check read hosts as the HTTP client does
    sub = await guarded.subscribe(guarded.url.replace("127.0.0.1", host))
    done = await guarded.settled((await guarded.emit(7, sub)).id)
    (attempt,) = await guarded.store.attempts(done.id)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "refused" in attempt.error
    assert "loopback" in attempt.error
    assert guarded.receiver.received == []


async def test_a_burst_is_recorded_in_full_long_before_any_lease_ends(rig: Rig, redis_client: Redis) -> None:
    # Attempts end while the recorder is taking a batch; an outcome lost there would stay unrecorded until its
    # lease ends (12 s here) and be sent again. Every one must be recorded well before that, and sent once.
    sub = await rig.subscribe()
    sub = sub.model_copy(update={"max_concurrency": 1000})
    await rig.store.save_subscription(sub)
    events = [
        NewEvent(f"evt_burst_{n}", "order.created", "acme", n, "2026-11-26T10:00:00Z", event_body("x", "t", {"n": n}))
        for n in range(3000)
    ]
    for start in range(0, len(events), 500):
        await rig.queue.commit(events[start : start + 500], [sub], now=now())

    async def all_succeeded() -> bool:
        return await redis_client.zcard(keyspace.status_deliveries("succeeded")) == len(events)

    await wait_for(all_succeeded, 8, "3,000 deliveries to be recorded as succeeded")
    assert sorted(r.webhook_id for r in rig.receiver.received) == sorted(e.id for e in events)


@dataclass
class Solo:
    """A dispatcher of its own, with the policy a test asks for, sending to one receiver handler."""

    store: Store
    queue: DeliveryQueue
    dispatcher: Dispatcher
    port: int

    async def subscribe(self, sub_id: str, path: str, host: str = "127.0.0.1") -> SubscriptionRecord:
        sub = subscription_to(f"http://{host}:{self.port}/{path}", sub_id)
        await self.store.create_subscription(sub)
        return sub

    async def emit(self, sub: SubscriptionRecord, prefix: str, count: int) -> None:
        body = event_body("order.created", "t", {})
        events = [NewEvent(f"evt_{prefix}{n}", "order.created", "acme", n, "t", body) for n in range(count)]
        await self.queue.commit(events, [sub], now=now())


@contextlib.asynccontextmanager
async def solo(redis_client: Redis, handler: Handler, **policy: Any) -> AsyncIterator[Solo]:
    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    session = delivery_session(allow_private=True)
    store, queue = Store(redis_client), DeliveryQueue(redis_client)
    rules = DeliveryPolicy(retry_schedule_s=(60.0,), allow_private_targets=True, **policy)
    dispatcher = Dispatcher(store, queue, session, rules, Metrics(), clock=now)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield Solo(store, queue, dispatcher, port)
    finally:
        await dispatcher.stop()
        await task
        await session.close()
        await runner.cleanup()


async def test_stopping_gives_back_the_deliveries_claimed_but_not_started(redis_client: Redis) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    async with solo(redis_client, hang, timeout_s=30, max_in_flight=2) as rig:
        try:
            sub = await rig.subscribe("sub_hang", "hang")
            await rig.emit(sub, "h", 6)
            dispatcher = rig.dispatcher
            await wait_for(lambda: len(dispatcher._sending) == 2 and len(dispatcher._ready) == 2, 5, "2 and 2")
            ready = [r.delivery.id for r in dispatcher._ready]
            await dispatcher.stop(drain_s=0.1)
            # the ready ones are due at once and hold no slot; the two cut off keep their claims until the lease ends
            due = dict(await redis_client.zrange(keyspace.DUE, 0, -1, withscores=True))
            assert all(due[d] <= ms(now()) for d in ready)
            assert await redis_client.zcard(keyspace.subscription_in_flight(sub.id)) == 0
            assert sum(1 for score in due.values() if score > ms(now()) + 20_000) == 2
        finally:
            release.set()


async def test_a_cookie_one_receiver_sets_is_never_sent_back(redis_client: Redis) -> None:
    cookies: list[str | None] = []

    async def hook(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.Response(status=204)
        response.set_cookie("session", "secret-of-this-receiver")
        return response

    async with solo(redis_client, hook, timeout_s=5) as rig:
        for n, name in enumerate(["one", "two", "one"]):
            sub = await rig.subscribe(f"sub_{n}", name, host="localhost")  # a name: IP addresses keep no cookies
            await rig.emit(sub, f"c{n}_", 1)
            await wait_for(lambda n=n: len(cookies) == n + 1, 5, f"webhook {n + 1}")  # type: ignore[misc]
    assert cookies == [None, None, None]


async def test_deliveries_kept_ready_behind_slow_receivers_keep_their_claims_and_slots(redis_client: Redis) -> None:
    # one slot, held by a receiver that answers after 7 s: the ones claimed behind it wait longer than half
    # the lease margin, and their claims are pushed on so that no other worker sends them meanwhile
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 7)
        return web.Response(status=204)

    async with solo(redis_client, slow, timeout_s=10, max_in_flight=1) as rig:
        try:
            await rig.emit(await rig.subscribe("sub_slow", "slow"), "s", 2)
            dispatcher = rig.dispatcher
            await wait_for(lambda: len(dispatcher._sending) == 1 and len(dispatcher._ready) == 1, 5, "1 and 1")
            (waiting,) = [ready.delivery.id for ready in dispatcher._ready]
            first_lease = await redis_client.zscore(keyspace.DUE, waiting)
            first_slot = await redis_client.zscore(keyspace.subscription_in_flight("sub_slow"), waiting)
            assert first_lease is not None
            assert first_slot is not None

            async def extended() -> bool:
                score = await redis_client.zscore(keyspace.DUE, waiting)
                return score is not None and score >= first_lease + 4_000

            await wait_for(extended, 8, "the waiting delivery's claim to be extended")
            # and the slot it holds in its subscription's cap, so that no other worker fills it meanwhile
            slot = await redis_client.zscore(keyspace.subscription_in_flight("sub_slow"), waiting)
            assert slot is not None
            assert slot >= first_slot + 4_000
            release.set()
            await wait_for(lambda: not dispatcher._ready and not dispatcher._sending, 5, "both sent")
        finally:
            release.set()


async def test_a_receiver_that_hangs_holds_only_its_connections_while_others_are_delivered(redis_client: Redis) -> None:
    # eight slots, two connections a receiver: the hanging receiver gets two attempts at a time, its other
    # deliveries wait ready, and the slots left carry another receiver's webhooks at once
    release = asyncio.Event()
    hanging, most = 0, 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal hanging, most
        if request.match_info["name"] == "hang":
            hanging += 1
            most = max(most, hanging)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(release.wait(), 20)
            finally:
                hanging -= 1
        return web.Response(status=204)

    async with solo(redis_client, hook, timeout_s=30, max_in_flight=8, connections_per_host=2) as rig:
        try:
            await rig.emit(await rig.subscribe("sub_hang", "hang"), "h", 10)
            await wait_for(lambda: hanging == 2, 5, "two attempts to the hanging receiver")
            other = await rig.subscribe("sub_other", "other", host="localhost")  # the same server, another origin
            await rig.emit(other, "o", 5)

            async def delivered() -> bool:
                return await redis_client.zcard(keyspace.status_deliveries("succeeded")) == 5

            await wait_for(delivered, 5, "the other receiver's five webhooks")
            assert most == 2
            assert len(rig.dispatcher._ready) == 8
        finally:
            release.set()


async def _fan_out(rig: Rig, subs: list[SubscriptionRecord], n: int = 3) -> list[DeliveryRecord]:
    """``n`` events committed at once to every one of ``subs``: they are claimed in the same batches."""
    events = [
        NewEvent(f"evt_{i}", "order.created", "acme", i, "2026-11-26T10:00:00Z", event_body("order.created", "t", {}))
        for i in range(n)
    ]
    return await rig.queue.commit(events, subs, now=now())


async def test_a_subscription_whose_slots_redis_cannot_use_fails_its_own_deliveries_only(
    rig: Rig, redis_client: Redis
) -> None:
    """One bad record used to fail every delivery claimed beside it, batch after batch: other tenants' webhooks
    stayed pending until it was deleted."""
    bad, good = await rig.subscribe(), await rig.subscribe(rig.url + "?good")
    await redis_client.set(keyspace.subscription_in_flight(bad.id), "clobbered")
    deliveries = await _fan_out(rig, [bad, good])
    for delivery in deliveries:
        done = await rig.settled(delivery.id)
        if delivery.subscription == good.id:
            assert done.status == DeliveryStatus.succeeded
        else:
            assert done.status == DeliveryStatus.retrying  # retried on its schedule, its reason on record
            (attempt,) = await rig.store.attempts(delivery.id)
            assert attempt.status_code is None
            assert attempt.error is not None
            assert "delivery slots" in attempt.error
    assert len(rig.receiver.received) == 3


async def test_a_delivery_that_cannot_be_attempted_fails_alone_with_its_reason(rig: Rig) -> None:
    """A subscription whose secret cannot be decoded (a record damaged in Redis) fails its own attempt with the
    reason, instead of being claimed again and again when its lease ends."""
    damaged = (await rig.subscribe()).model_copy(update={"secret": "whsec_%%%not-base64%%%"})
    await rig.store.save_subscription(damaged)
    good = await rig.subscribe(rig.url + "?good")
    for delivery in await _fan_out(rig, [damaged, good]):
        done = await rig.settled(delivery.id)
        if delivery.subscription == good.id:
            assert done.status == DeliveryStatus.succeeded
        else:
            assert done.status == DeliveryStatus.retrying
            (attempt,) = await rig.store.attempts(delivery.id)
            assert attempt.error is not None
            assert attempt.error.startswith("not sent: the relay could not make")


async def test_an_unreadable_delivery_record_does_not_stop_the_others(rig: Rig, redis_client: Redis) -> None:
    await redis_client.set(keyspace.delivery("dlv_damaged"), "{not json")
    await redis_client.zadd(keyspace.DUE, {"dlv_damaged": 0})
    sub = await rig.subscribe()
    (delivery,) = await _fan_out(rig, [sub], n=1)
    assert (await rig.settled(delivery.id)).status == DeliveryStatus.succeeded

    async def off_the_queue() -> bool:
        return await redis_client.zscore(keyspace.DUE, "dlv_damaged") is None

    await wait_for(off_the_queue, 5, "the damaged one to leave the queue")
