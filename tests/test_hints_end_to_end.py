"""Hints end to end, as a user runs them: ``relay api`` and ``relay worker`` processes whose RELAY_PUBLIC_URL is
the API's own loopback URL, the sandbox subscribed and firing its thin webhooks there, a receiver verifying every
signature. The safety poll is long, so what arrives quickly arrived by a hint."""

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e import Relay, World, relay_processes, wait_for, world

pytestmark = pytest.mark.timeout(240)

WAREHOUSE = 2
HINTED = ["goods-out-note", "order.created", "order.modified", "order.modified.order-status", "product"]


async def register(relay: Relay, w: World, **fields: Any) -> dict[str, Any]:
    body = {**w.account_body(poll_interval_s=5), "safety_poll_interval_s": 60, **fields}
    account = await relay.call("POST", "/v1/accounts", body, expect=201)
    sub = await relay.call(
        "POST", "/v1/subscriptions", {"account": "acme", "url": w.receiver_url, "events": ["*"]}, expect=201
    )
    w.receiver.secret = sub["secret"]
    return dict(account)


def arrived(w: World, event_type: str) -> Counter[int]:
    return Counter(r.body["data"]["id"] for r in w.receiver.by_type(event_type))


def assert_once_each(w: World) -> None:
    """Every webhook verified, and no change delivered under two ids or twice."""
    assert all(r.verified for r in w.receiver.received), "a signature did not verify"
    ids = Counter(r.webhook_id for r in w.receiver.received)
    assert [i for i, n in ids.items() if n > 1] == [], "a webhook arrived twice"
    changes = Counter(
        (r.event_type, r.body["data"]["id"], str(r.body["data"].get("changes") or r.body["data"].get("after")))
        for r in w.receiver.received
    )
    assert [c for c, n in changes.items() if n > 1] == [], "one change arrived under two ids"


async def test_every_hinted_change_arrives_once_long_before_the_safety_poll(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, hints=True) as relay:
        await relay.start("api")
        await relay.start("worker")
        products = (await w.control("POST", "/products", {"count": 3, "stock": {str(WAREHOUSE): 10}}))["ids"]
        rows = [{"product_id": products[0], "quantity": 1}]
        old_order = (await w.control("POST", "/orders", {"count": 1, "rows": rows}))["ids"][0]
        note = (await w.control("POST", f"/orders/{old_order}/goods-out-notes"))["id"]
        account = await register(relay, w)
        assert account["hints"] is True
        assert sorted(account["status"]["hints"]["subscribed"]) == [e for e in HINTED if e != "order.created"]
        # refused on real accounts (API.md 7.3), and by the sandbox by default
        assert account["status"]["hints"]["refused"] == ["contact.created", "contact.modified", "order.created"]
        await asyncio.sleep(2)  # the first polls are done; the next are a minute away

        started = time.monotonic()
        new_orders = await w.create_orders(3)
        await w.control("PUT", f"/orders/{old_order}/status", {"status_id": 4})
        await w.control("POST", "/stock/receive", {"product_id": products[1], "warehouse_id": WAREHOUSE, "quantity": 5})
        await w.control("POST", f"/goods-out-notes/{note}/stage", {"stage": "printed"})
        await w.control("PATCH", f"/products/{products[2]}", {"name": "Renamed"})

        async def all_arrived() -> bool:
            return (
                sorted(arrived(w, "order.created")) == sorted(new_orders)
                and old_order in arrived(w, "order.modified.order-status")
                and products[1] in arrived(w, "product.modified.on-hand-modified")
                and note in arrived(w, "goods-out-note.modified.printed")
                and products[2] in arrived(w, "product.modified")
            )

        await wait_for(all_arrived, 15, "every change by its hint")
        assert time.monotonic() - started < 30, "arrived only by the safety poll"
        await asyncio.sleep(2)
        assert_once_each(w)
        view = await relay.call("GET", "/v1/accounts/acme", expect=200)
        hints = view["status"]["hints"]
        assert hints["state"] == "healthy"
        assert hints["last_hint_at"]
        assert hints["requests_last_minute"]["hints"] > 0


async def test_with_a_third_of_hints_dropped_every_order_still_arrives_once(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, hints=True) as relay:
        await relay.start("api")
        await relay.start("worker")
        await register(relay, w, safety_poll_interval_s=10, resources=["orders"])
        await w.control("PUT", "/hints/faults", {"drop": 0.3, "duplicate": 0.2, "reorder_window": 3, "seed": 7})
        made: list[int] = []
        for _ in range(30):
            made += await w.create_orders(1)
            await asyncio.sleep(0.1)
        await wait_for(lambda: sorted(arrived(w, "order.created")) == sorted(made), 60, "every order")
        await asyncio.sleep(2)
        assert_once_each(w)
        log = await w.control("GET", "/hints")
        assert log["counts"].get("dropped", 0) > 0, "the fault dropped nothing: the test proves nothing"


async def test_a_forged_hint_is_refused_and_costs_no_request(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, hints=True) as relay:
        await relay.start("api")
        await relay.start("worker")
        await register(relay, w, resources=["orders"])
        await asyncio.sleep(2)
        before = w.sandbox.account("acme").requests.total
        body = {"accountCode": "acme", "resourceType": "order", "id": "1-100", "fullEvent": "order.modified"}
        async with aiohttp.ClientSession() as http:
            for token in ("wrong", "x" * 43):
                async with http.post(f"{relay.api_url}/hooks/brightpearl/acme/{token}", json=body) as answer:
                    assert answer.status == 404
            async with http.post(f"{relay.api_url}/hooks/brightpearl/nobody/wrong", json=body) as answer:
                assert answer.status == 404
        await asyncio.sleep(1.5)
        assert w.sandbox.account("acme").requests.total == before


async def test_turning_hints_off_removes_only_the_relays_webhooks(redis_url: str, tmp_path: Path) -> None:
    async with world() as w, relay_processes(redis_url, tmp_path, hints=True) as relay:
        await relay.start("api")
        account = w.sandbox.account("acme")
        foreign = {
            "subscribeTo": "order.modified",
            "httpMethod": "POST",
            "uriTemplate": "http://127.0.0.1:9/someone-else",
            "bodyTemplate": "{}",
            "contentType": "application/json",
            "idSetAccepted": True,
            "qualityOfService": 1,
        }
        headers = {"brightpearl-app-ref": account.app_ref, "brightpearl-account-token": account.account_token}
        async with w.http.post(
            f"{w.sandbox.base_url()}/integration-service/webhook", json=foreign, headers=headers
        ) as r:
            assert r.status == 200
        await register(relay, w)
        hooks = (await w.control("GET", "/webhooks"))["webhooks"]
        assert len(hooks) == 1 + 4
        await relay.call("PATCH", "/v1/accounts/acme", {"hints": False}, expect=200)
        hooks = (await w.control("GET", "/webhooks"))["webhooks"]
        assert [h["uriTemplate"] for h in hooks] == ["http://127.0.0.1:9/someone-else"]
        view = await relay.call("GET", "/v1/accounts/acme", expect=200)
        assert view["status"]["hints"]["state"] == "off"


async def test_an_account_whose_orders_are_not_announced_has_its_orders_polled_as_asked(
    redis_url: str, tmp_path: Path
) -> None:
    """Real accounts refuse ``order.created`` and are said to fire ``order.modified`` on creation; an account that
    does not gets new orders no hint announces: its polls find them, its orders' hints are judged degraded, and they
    are polled as asked again."""
    async with world() as w, relay_processes(redis_url, tmp_path, hints=True) as relay:
        await relay.start("api")
        await relay.start("worker")
        await w.control("PATCH", "", {"order_modified_on_create": False})
        await register(relay, w, resources=["orders"], safety_poll_interval_s=10, poll_interval_s=1)
        made = await w.create_orders(3)
        await wait_for(lambda: sorted(arrived(w, "order.created")) == sorted(made), 30, "the orders, by the poll")

        async def degraded() -> bool:
            view = await relay.call("GET", "/v1/accounts/acme", expect=200)
            return bool(view["status"]["hints"]["state"] == "degraded")

        await wait_for(degraded, 40, "the orders' hints judged degraded")
        view = await relay.call("GET", "/v1/accounts/acme", expect=200)
        assert view["status"]["hints"]["degraded_resources"] == ["orders"]
        assert view["status"]["resources"]["orders"]["effective_poll_interval_s"] < 10  # as asked, not the safety poll
        assert_once_each(w)
