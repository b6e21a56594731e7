"""Order polling against the Brightpearl sandbox (a real HTTP server) and a real Redis.

Polls are run by hand here, one at a time, so each test can arrange what Brightpearl does between them.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from tests.harness import ACCOUNT, Harness, now
from workers.brightpearl.timestamps import parse_timestamp
from workers.poller import PollPolicy


async def test_orders_existing_at_registration_send_nothing(harness: Harness) -> None:
    await harness.create_orders(12)
    await harness.register()
    await harness.poll()
    assert await harness.emitted() == []
    new = await harness.create_orders(2)
    await harness.poll()
    assert sorted(await harness.emitted()) == new


async def test_a_burst_sharing_one_timestamp_across_page_boundaries(harness: Harness) -> None:
    await harness.register()
    ids = await harness.create_orders(30)  # one createdOn second, pages of 7: boundaries fall inside the run
    await harness.poll()
    assert sorted(await harness.emitted()) == ids
    more = await harness.create_orders(9)  # the same second again, probably
    await harness.poll()
    await harness.poll()
    emitted = await harness.emitted()
    assert sorted(emitted) == ids + more
    assert len(emitted) == len(set(emitted))


async def test_new_orders_have_null_updated_on_and_are_still_found(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    page = await harness.sandbox_call("GET", "/orders")
    assert order_id in page["ids"]
    await harness.poll()
    event = (await harness.store.list_events(limit=1, cursor=None)).items[0]
    body = json.loads(event.body)
    assert body["data"]["resource"]["id"] == order_id
    assert "updatedOn" not in body["data"]["resource"]  # as Brightpearl returns a new order


async def test_the_webhook_body(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1, order_type="PO")
    await harness.poll()
    event = (await harness.store.list_events(limit=1, cursor=None)).items[0]
    body = json.loads(event.body)
    assert body["type"] == "order.created"
    resource = body["data"].pop("resource")
    assert body["data"] == {
        "accountCode": "acme",
        "resourceType": "order",
        "id": order_id,
        "lifecycleEvent": "created",
        "fullEvent": "order.created",
    }
    assert resource["orderTypeCode"] == "PO"
    assert resource["createdOn"].endswith("-06:00")  # as Brightpearl renders it
    assert body["timestamp"].endswith("Z")
    assert parse_timestamp(body["timestamp"]) == parse_timestamp(resource["createdOn"])


async def test_an_account_in_another_offset(harness: Harness) -> None:
    async with harness.http.post(
        f"{harness.sandbox.url}/_sandbox/accounts", json={"code": "kiwi", "offset_minutes": 660}
    ) as response:
        assert response.status == 201
    await harness.register("kiwi")
    async with harness.http.post(f"{harness.sandbox.url}/_sandbox/accounts/kiwi/orders", json={"count": 3}) as r:
        ids = (await r.json())["ids"]
    await harness.poll("kiwi")
    await harness.poll("kiwi")
    assert sorted(await harness.emitted("kiwi")) == ids
    event = (await harness.store.list_events(limit=1, cursor=None, account="kiwi")).items[0]
    resource = json.loads(event.body)["data"]["resource"]
    assert resource["createdOn"].endswith("+11:00")
    assert abs(parse_timestamp(event.timestamp) - now()) < timedelta(minutes=1)


async def test_an_order_that_becomes_visible_late(harness: Harness) -> None:
    await harness.register()
    first = await harness.create_orders(1)
    await harness.poll()
    late = await harness.create_orders(1, created_on=(now() - timedelta(seconds=20)).isoformat())
    await harness.poll()
    assert sorted(await harness.emitted()) == sorted(first + late)


async def test_orders_created_while_a_poll_pages(harness: Harness) -> None:
    await harness.register()
    before = await harness.create_orders(20)
    await harness.sandbox_call("POST", "/faults", {"kind": "slow", "delay_ms": 150, "path_contains": "order-search"})
    poll = asyncio.create_task(harness.poll())
    during = []
    for _ in range(4):
        await asyncio.sleep(0.1)
        during += await harness.create_orders(3)
    await poll
    await harness.sandbox_call("DELETE", "/faults")
    await harness.poll()
    emitted = await harness.emitted()
    assert sorted(emitted) == sorted(before + during)
    assert len(emitted) == len(set(emitted))


async def test_a_throttling_brightpearl_loses_nothing(harness: Harness) -> None:
    await harness.register()
    ids = await harness.create_orders(10)
    await harness.sandbox_call("POST", "/faults", {"kind": "throttle", "for_s": 1.5})
    await harness.poll()  # waits out the throttle period instead of failing
    assert sorted(await harness.emitted()) == ids
    assert (await harness.status())["last_error"] == ""
    throttles = harness.poller.metrics.registry.get_sample_value("relay_brightpearl_throttles_total")
    assert throttles is not None
    assert throttles >= 1


async def test_a_failing_brightpearl_is_caught_up_after(harness: Harness) -> None:
    await harness.register()
    ids = await harness.create_orders(5)
    await harness.sandbox_call(
        "POST", "/faults", {"kind": "error_500", "count": 1, "path_contains": "order-service/order/"}
    )
    await harness.poll()
    assert await harness.emitted() == []
    assert "HTTP 500" in (await harness.status())["last_error"]
    await harness.poll()
    assert sorted(await harness.emitted()) == ids
    assert (await harness.status())["last_error"] == ""


async def test_expired_credentials_are_reported(harness: Harness) -> None:
    await harness.register()
    await harness.sandbox_call("POST", "/faults", {"kind": "expire_token"})
    await harness.poll()
    assert "Authorization token expired" in (await harness.status())["last_error"]
    due = await harness.redis.zscore(keyspace.POLLS, ACCOUNT)
    assert due is not None
    assert due > (now() + timedelta(seconds=30)).timestamp() * 1000  # backs off, a person must act


async def test_a_poller_that_dies_before_committing_repeats_nothing_twice(harness: Harness) -> None:
    await harness.register()
    ids = await harness.create_orders(12)
    real_commit = harness.poller.queue.commit
    calls = 0

    async def dies(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise ConnectionError("the worker died here")

    harness.poller.queue.commit = dies  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await harness.poll()
    harness.poller.queue.commit = real_commit  # type: ignore[method-assign]
    assert calls == 1
    assert await harness.emitted() == []
    await harness.poll()
    await harness.poll()
    emitted = await harness.emitted()
    assert sorted(emitted) == ids
    assert len(emitted) == len(set(emitted))


async def test_one_poller_per_account_at_a_time(harness: Harness) -> None:
    await harness.register()
    await harness.create_orders(4)
    await harness.sandbox_call("DELETE", "/requests")
    await harness.sandbox_call("POST", "/faults", {"kind": "slow", "delay_ms": 300, "path_contains": "order-search"})
    await asyncio.gather(*(harness.poll() for _ in range(3)))
    requests = await harness.sandbox_call("GET", "/requests")
    assert requests["by_path"].get("order-service/order-search") == 2  # one poll: new orders, changed orders
    assert len(await harness.emitted()) == 4


async def test_a_deleted_account_stops_polling(harness: Harness) -> None:
    await harness.register()
    await harness.store.delete_account("acme")
    await harness.poll()
    assert await harness.redis.zscore(keyspace.POLLS, ACCOUNT) is None


async def test_the_relay_never_throttles_the_account_itself(harness: Harness) -> None:
    """Polling as fast as it can, the relay stays inside its budget: Brightpearl never has to answer 503."""
    await harness.register(resources=("orders", "products", "contacts"))
    account = harness.sandbox.account("acme")
    account.throttle = RollingWindowThrottle(limit=30)  # from now on, an account whose whole minute is 30 requests
    harness.poller.policy = PollPolicy(budget_per_minute=30, page_size=7)
    await harness.sandbox_call("DELETE", "/requests")

    async def keep_polling() -> None:
        while True:
            await harness.create_orders(2)
            await harness.poll()

    task = asyncio.create_task(keep_polling())
    await asyncio.sleep(3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    served = await harness.sandbox_call("GET", "/requests")
    assert served["throttled"] == 0
    assert 20 <= served["total"] <= 30  # it used its minute, and waited rather than go over


async def test_a_second_change_within_one_second_is_found_after_later_changes(harness: Harness) -> None:
    """An order changed twice within one second keeps its ``updatedOn``; it is read once more after a later
    second has been seen, even when other changes moved the newest stamp on by more than a second."""
    account = harness.sandbox.account()
    start = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    at = {"now": start}
    account.clock = lambda: at["now"]
    await harness.register()
    a, b = await harness.create_orders(2)
    await harness.poll()
    at["now"] = start.replace(second=5, microsecond=200_000)
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 4})
    await harness.poll()
    at["now"] = start.replace(second=5, microsecond=700_000)  # the same second: updatedOn does not move
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 5})
    at["now"] = start.replace(second=7)
    await harness.sandbox_call("PUT", f"/orders/{b}/status", {"status_id": 4})
    await harness.poll()
    await harness.poll()
    changes = sorted(
        (body["data"]["id"], body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"])
        for body in await harness.bodies("order.modified.order-status")
    )
    assert changes == sorted([(a, 4), (a, 5), (b, 4)])


async def test_a_second_change_within_one_second_is_found_after_brightpearls_clock_stepped_back(
    harness: Harness,
) -> None:
    """Brightpearl's clock stepped back 20 s (an NTP correction): stamps read before the step are newer than
    the second now running, so they say nothing about whether it is over. An order changed twice within that
    second is still read again, and its second change reported."""
    account = harness.sandbox.account()
    start = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    at = {"now": start.replace(second=30)}
    account.clock = lambda: at["now"]
    await harness.register()
    (early,) = await harness.create_orders(1)
    await harness.poll()
    await harness.sandbox_call("PUT", f"/orders/{early}/status", {"status_id": 4})  # updatedOn 10:00:30
    await harness.poll()
    at["now"] = start.replace(second=10)  # the clock steps back 20 s
    (a,) = await harness.create_orders(1)
    await harness.poll()
    at["now"] = start.replace(second=11, microsecond=200_000)
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 4})
    await harness.poll()  # reads the change at 10:00:11 beside the older stamp 10:00:30
    at["now"] = start.replace(second=11, microsecond=700_000)  # the same second: updatedOn does not move
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 5})
    await harness.poll()
    changes = sorted(
        (body["data"]["id"], body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"])
        for body in await harness.bodies("order.modified.order-status")
    )
    assert changes == sorted([(early, 4), (a, 4), (a, 5)])


async def test_a_change_read_beside_one_made_before_the_clock_stepped_back_is_read_again(harness: Harness) -> None:
    """One poll reads a change stamped before Brightpearl's clock stepped back 20 s and one stamped after: the
    older stamp is in the second now running, whatever the newer says, so that order is read again and its
    second change within that second reported."""
    account = harness.sandbox.account()
    start = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    at = {"now": start.replace(second=30)}
    account.clock = lambda: at["now"]
    await harness.register()
    early, a = await harness.create_orders(2)
    await harness.poll()
    at["now"] = start.replace(second=30, microsecond=500_000)
    await harness.sandbox_call("PUT", f"/orders/{early}/status", {"status_id": 4})  # updatedOn 10:00:30
    at["now"] = start.replace(second=11, microsecond=200_000)  # the clock steps back
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 4})  # updatedOn 10:00:11
    await harness.poll()  # reads both changes as new
    at["now"] = start.replace(second=11, microsecond=700_000)  # the same second: updatedOn does not move
    await harness.sandbox_call("PUT", f"/orders/{a}/status", {"status_id": 5})
    await harness.poll()
    changes = sorted(
        (body["data"]["id"], body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"])
        for body in await harness.bodies("order.modified.order-status")
    )
    assert changes == sorted([(early, 4), (a, 4), (a, 5)])


async def test_more_records_at_one_stamp_than_a_poll_reads_do_not_stall_the_stream(harness: Harness) -> None:
    """Pages of 7 and 20 pages a poll: 140 rows. 200 orders sharing one createdOn, then 3 more: the next polls
    carry on where the last stopped instead of reading the same first 140 for ever."""
    harness.sandbox.account().throttle = RollingWindowThrottle(limit=10**6)
    await harness.register()
    bulk = await harness.create_orders(200)  # one call: one createdOn
    await asyncio.sleep(1.1)
    later = await harness.create_orders(3)
    for _ in range(4):
        await harness.poll()
    assert sorted(await harness.emitted()) == sorted(bulk + later)


async def test_a_poller_whose_claim_was_taken_over_writes_nothing(harness: Harness) -> None:
    """A poller paused past its lease: the account is claimed again, and the first poller's commit and plan are
    refused; the new claim's poll sends the orders, once."""
    await harness.register()
    ids = await harness.create_orders(3)
    polls, lease_ms = harness.poller.polls, int(harness.poller.policy.lease_s * 1000)
    cursor_key = keyspace.position(ACCOUNT, "orders.created")
    cursor_before = await harness.redis.get(cursor_key)
    plan_before = await polls.plan(ACCOUNT)
    (first,) = await polls.claim(now_ms=ms(now()), lease_ms=lease_ms, limit=1, among=[ACCOUNT])
    await harness.sandbox_call("POST", "/faults", {"kind": "slow", "delay_ms": 400, "path_contains": "order-search"})
    stalled = asyncio.create_task(harness.poller.poll(first))
    await asyncio.sleep(0.2)  # inside its first search
    (second,) = await polls.claim(now_ms=ms(now()) + lease_ms, lease_ms=lease_ms, limit=1, among=[ACCOUNT])
    await stalled
    assert await harness.emitted() == []
    assert await harness.redis.get(cursor_key) == cursor_before
    assert await polls.plan(ACCOUNT) == plan_before
    await harness.sandbox_call("DELETE", "/faults")
    await harness.poller.poll(second)
    assert sorted(await harness.emitted()) == ids
    assert (await polls.plan(ACCOUNT)).due_ms["orders"] > ms(now())


async def test_a_claim_that_waited_before_its_poll_started_is_checked_when_the_poll_opens(harness: Harness) -> None:
    """A claim made a moment ago opens without a check (no other process can have its lease yet); one that waited
    (an overloaded worker) is checked and renewed as the poll opens: taken over meanwhile, its poll asks
    Brightpearl nothing and writes nothing."""
    await harness.register()
    await harness.create_orders(2)
    polls, lease_ms = harness.poller.polls, int(harness.poller.policy.lease_s * 1000)
    plan_before = await polls.plan(ACCOUNT)
    (waited,) = await polls.claim(now_ms=ms(now()) - lease_ms // 2, lease_ms=lease_ms, limit=1, among=[ACCOUNT])
    await harness.redis.set(keyspace.poll_owner(ACCOUNT), "another-worker")  # its claim was taken over
    await harness.sandbox_call("DELETE", "/requests")
    await harness.poller.poll(waited)
    assert (await harness.sandbox_call("GET", "/requests"))["by_path"] == {}
    assert await harness.emitted() == []
    assert await polls.plan(ACCOUNT) == plan_before
    await harness.redis.delete(keyspace.poll_owner(ACCOUNT))
    await harness.redis.zadd(keyspace.POLLS, {ACCOUNT: ms(now())})
    (fresh,) = await polls.claim(now_ms=ms(now()), lease_ms=lease_ms, limit=1, among=[ACCOUNT])
    await harness.poller.poll(fresh)
    assert len(await harness.emitted()) == 2
