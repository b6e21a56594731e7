"""The relay as a user runs it: ``relay api`` and ``relay worker`` as separate processes over one Redis, a
Brightpearl sandbox, and a receiver checking every signature with the Standard Webhooks reference library."""

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import Relay, World, relay_processes, wait_for, world

pytestmark = pytest.mark.timeout(180)


async def subscribe(relay: Relay, w: World, events: list[str] | None = None) -> dict[str, str]:
    await relay.call("POST", "/v1/accounts", w.account_body(), expect=201)
    sub = await relay.call(
        "POST",
        "/v1/subscriptions",
        {"account": "acme", "url": w.receiver_url, "events": events or ["order.created"]},
        expect=201,
    )
    w.receiver.secret = sub["secret"]
    return dict(sub)


def assert_each_once(w: World, order_ids: list[int]) -> None:
    received = w.receiver.by_type("order.created")
    assert all(r.verified for r in received), "a signature did not verify"
    by_order = Counter(r.body["data"]["id"] for r in received)
    assert sorted(by_order) == sorted(order_ids), "an order is missing"
    ids_by_order: dict[int, set[str]] = {}
    for r in received:
        ids_by_order.setdefault(r.body["data"]["id"], set()).add(r.webhook_id)
    assert all(len(ids) == 1 for ids in ids_by_order.values()), "an order came under two webhook-ids"


async def test_new_orders_arrive_once_each_signed_within_the_poll_interval(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path) as relay:
        await relay.start("api")
        await relay.start("worker")
        await subscribe(relay, w)
        created_at: dict[int, float] = {}
        for burst in range(5):  # bursts of orders sharing one createdOn second
            for order_id in await w.create_orders(12, order_type=["SO", "PO", "SC"][burst % 3]):
                created_at[order_id] = time.monotonic()
            await asyncio.sleep(0.4)
        await wait_for(lambda: len(w.receiver.by_type("order.created")) >= 60, 30, "60 order webhooks")
        await asyncio.sleep(1.5)  # anything extra would show up now
        assert_each_once(w, list(created_at))
        assert len(w.receiver.received) == 60
        late = [r for r in w.receiver.received if r.at_monotonic - created_at[r.body["data"]["id"]] > 1 + 2]
        lat = sorted(r.at_monotonic - created_at[r.body["data"]["id"]] for r in w.receiver.received)
        assert late == [], f"{len(late)} webhooks arrived later than the poll interval + 2 s: {lat}"
        first = w.receiver.received[0]
        assert first.headers["content-type"] == "application/json"
        assert first.body["data"]["accountCode"] == "acme"
        deliveries = await relay.call("GET", f"/v1/deliveries?event_id={first.webhook_id}", expect=200)
        assert [d["status"] for d in deliveries["items"]] == ["succeeded"]
        account = await relay.call("GET", "/v1/accounts/acme", expect=200)
        assert account["status"]["requests_last_minute"] > 0
        assert account["status"]["resources"]["orders"]["lag_s"] < 5
        assert "account_token" not in account
        assert "token" not in account


async def test_a_worker_killed_mid_stream_loses_no_order(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, delivery_timeout_s="3") as relay:
        await relay.start("api")
        worker = await relay.start("worker")
        await subscribe(relay, w)
        made: list[int] = []
        started = time.monotonic()
        killed = restarted = False
        while time.monotonic() - started < 8:
            made += await w.create_orders(3 if len(made) % 2 else 1)
            elapsed = time.monotonic() - started
            if elapsed > 2.5 and not killed:
                relay.kill(worker)  # SIGKILL: no chance to finish, give back or record anything
                killed = True
            if elapsed > 3.5 and not restarted:
                await relay.start("worker")
                restarted = True
            await asyncio.sleep(0.2)
        await wait_for(
            lambda: {r.body["data"]["id"] for r in w.receiver.by_type("order.created")} >= set(made),
            60,
            f"all {len(made)} orders after the kill",
        )
        assert_each_once(w, made)


async def test_a_receiver_failing_twice_gets_the_third_attempt(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, retry_schedule_s="1,1,5") as relay:
        await relay.start("api")
        await relay.start("worker")
        await subscribe(relay, w)
        w.receiver.fail_next = 2
        (order_id,) = await w.create_orders(1)
        await wait_for(lambda: len(w.receiver.received) == 1, 20, "the third attempt")
        assert w.receiver.failures_sent == 2
        event_id = w.receiver.received[0].webhook_id
        (summary,) = (await relay.call("GET", f"/v1/deliveries?event_id={event_id}", expect=200))["items"]

        async def recorded() -> bool:  # attempts are recorded in batches, a few ms after the answer
            found = await relay.call("GET", f"/v1/deliveries/{summary['id']}", expect=200)
            return bool(found["status"] == "succeeded")

        await wait_for(recorded, 5, "the third attempt to be recorded")
        delivery = await relay.call("GET", f"/v1/deliveries/{summary['id']}", expect=200)
        assert delivery["status"] == "succeeded"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 204]
        assert delivery["attempts"][0]["response_excerpt"] == "receiver told to fail"
        assert all(a["duration_ms"] >= 0 and a["at"] for a in delivery["attempts"])
        assert delivery["event_id"] == event_id
        assert w.receiver.received[0].body["data"]["id"] == order_id


async def test_a_throttling_brightpearl_loses_no_order(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path) as relay:
        await relay.start("api")
        await relay.start("worker")
        await subscribe(relay, w)
        made = await w.create_orders(5)
        await w.fault(kind="throttle", for_s=3)
        for _ in range(6):
            made += await w.create_orders(2)
            await asyncio.sleep(0.5)
        await wait_for(lambda: len(w.receiver.by_type("order.created")) >= len(made), 30, "every order")
        assert_each_once(w, made)
