"""Targeted reads: a hint's ids read in a poll job against the sandbox (a real HTTP server) and a real Redis, the
events the same ones the poll gives (a full poll after adds nothing), no cursor moved, stock settled at once."""

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from subscriptions.core.models import Resource
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.hints import HintLimits, Hints, Offered
from tests.harness import Harness
from workers.hints import wanted_events

LEASE_MS = 10_000


def now() -> datetime:
    return datetime.now(UTC)


AVAILABILITY_ROUTE = "warehouse-service/product-availability/{ids}"


async def register_hinted(harness: Harness, resources: Sequence[Resource], *, covered: bool = True) -> None:
    """An account with hints on and, when ``covered``, every watched resource's events subscribed."""
    await harness.register(resources=resources)
    account = await harness.store.get_account("acme")
    await harness.store.save_account(account.model_copy(update={"hints": True}), {}, 0)
    if covered:
        subscribed = json.dumps(wanted_events(resources))
        await harness.store.update_account_status("acme", {"hints:subscribed": subscribed})


async def hint(harness: Harness, resource: str, ids: Sequence[int], *, overflow: bool = False) -> None:
    at = harness.poller.clock()
    answer = await Hints(harness.redis).offer(
        "acme", [Offered(resource, list(ids), overflow)], now_ms=ms(at), at=at.isoformat()
    )
    assert answer == "ok"


async def job(harness: Harness) -> None:
    """One poll job as the scheduler runs it: only what is due (hints bring the account forward, a few tens of
    milliseconds on, so that hints arriving together are read together)."""
    await asyncio.sleep(HintLimits().coalesce_ms / 1000 + 0.01)
    at_ms = ms(harness.poller.clock())
    for claim in await harness.poller.polls.claim(now_ms=at_ms, lease_ms=LEASE_MS, limit=1, among=["acme"]):
        await harness.poller.poll(claim)


async def types(harness: Harness) -> list[str]:
    return [body["type"] for body in await harness.bodies()]


async def event_ids(harness: Harness) -> list[str]:
    page = await harness.store.list_events(limit=1000, cursor=None, account="acme", type_=None)
    return sorted(event.id for event in page.items)


async def positions(harness: Harness) -> dict[str, str]:
    keys = [key async for key in harness.redis.scan_iter(match=keyspace.position("acme", "*"))]
    return {key: str(await harness.redis.get(key)) for key in keys}


async def polled_requests(harness: Harness) -> list[str]:
    return list((await harness.sandbox_call("GET", "/requests"))["by_path"])


async def test_a_hinted_new_order_is_created_and_the_poll_adds_nothing(harness: Harness) -> None:
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    before = await positions(harness)
    await harness.sandbox_call("DELETE", "/requests")
    await hint(harness, "orders", [order_id])
    await job(harness)
    assert await types(harness) == ["order.created"]
    assert not any("order-search" in path for path in await polled_requests(harness))  # only the hint was read
    assert await positions(harness) == before  # hints never move a cursor
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids  # the poll derived the same id: delivered once
    assert await harness.emitted() == [order_id]
    status = await harness.status()
    assert status["orders:last_hint_read_at"]
    assert await Hints(harness.redis).spent_last_minute("acme", now_ms=ms(now())) >= 1


async def test_a_change_between_the_hint_read_and_the_poll_is_modified(harness: Harness) -> None:
    """derive_created: a new order a hint read first is diffed against that read, not just snapshotted again."""
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await hint(harness, "orders", [order_id])
    await job(harness)
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"reference": "changed after the hint"})
    await harness.poll()
    bodies = await harness.bodies()
    assert [b["type"] for b in bodies] == ["order.created", "order.modified"]
    assert "reference" in bodies[1]["data"]["changes"]
    await harness.poll()
    assert len(await harness.bodies()) == 2


async def test_a_hinted_status_change_and_a_hint_for_nothing(harness: Harness) -> None:
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    await hint(harness, "orders", [order_id])  # nothing changed
    await job(harness)
    assert await types(harness) == ["order.created"]
    await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": 4})
    before = await positions(harness)
    await hint(harness, "orders", [order_id])
    await job(harness)
    assert await types(harness) == ["order.created", "order.modified.order-status"]
    assert await positions(harness) == before
    ids = await event_ids(harness)
    await harness.poll()
    await harness.poll()
    assert await event_ids(harness) == ids


async def test_hinted_products_and_contacts(harness: Harness) -> None:
    await register_hinted(harness, ["products", "contacts"])
    await harness.poll()
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    (contact_id,) = (await harness.sandbox_call("POST", "/contacts", {"count": 1}))["ids"]
    await hint(harness, "products", [product_id])
    await hint(harness, "contacts", [contact_id])
    await job(harness)
    assert sorted(await types(harness)) == ["contact.created", "product.created"]
    await harness.sandbox_call("PATCH", f"/products/{product_id}", {"name": "Renamed"})
    await harness.sandbox_call("PATCH", f"/contacts/{contact_id}", {"first_name": "Renamed"})
    await hint(harness, "products", [product_id])
    await hint(harness, "contacts", [contact_id])
    await job(harness)
    bodies = await harness.bodies()
    assert sorted(b["type"] for b in bodies) == [
        "contact.created",
        "contact.modified",
        "product.created",
        "product.modified",
    ]
    ids = await event_ids(harness)
    await harness.poll()
    await harness.poll()
    assert await event_ids(harness) == ids


async def test_a_hinted_record_from_before_registration(harness: Harness) -> None:
    """No snapshot and older than the created cursor: the poll's ``modified`` with changes null, same id."""
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    await register_hinted(harness, ["products"])
    await harness.poll()
    await hint(harness, "products", [product_id])  # unchanged since registration: nothing
    await job(harness)
    assert await types(harness) == []
    await harness.redis.delete(keyspace.snapshot("acme", "products", product_id))  # as if it expired
    await asyncio.sleep(1.1)  # a stamp of its own (a second change within one second is the recheck's to find)
    await harness.sandbox_call("PATCH", f"/products/{product_id}", {"name": "Renamed"})
    await hint(harness, "products", [product_id])
    await job(harness)
    bodies = await harness.bodies()
    assert [(b["type"], b["data"]["changes"]) for b in bodies] == [("product.modified", None)]
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids


async def test_stock_by_hint_and_by_an_order_hint(harness: Harness) -> None:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    await register_hinted(harness, ["orders", "stock"])
    await harness.poll()
    await harness.sandbox_call("POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 2, "quantity": 5})
    await hint(harness, "stock", [product_id])
    await job(harness)
    bodies = await harness.bodies()
    assert [(b["type"], b["data"]["id"], b["data"]["after"]["total"]["onHand"]) for b in bodies] == [
        ("product.modified.on-hand-modified", product_id, 15)
    ]
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids
    # an order allocating the product: stock's hints are trusted, so the order's hint leaves stock to its own hint
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 2}], allocate=True)
    await hint(harness, "orders", [order_id])
    requests = harness.sandbox.account("acme").requests
    availability_before = requests.by_route.get(AVAILABILITY_ROUTE, 0)
    await job(harness)
    assert requests.by_route.get(AVAILABILITY_ROUTE, 0) == availability_before
    await hint(harness, "stock", [product_id])  # Brightpearl's own, for the allocation
    await job(harness)
    found = await types(harness)
    assert found.count("order.created") == 1
    assert found.count("product.modified.on-hand-modified") == 2
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids


async def test_an_order_hint_settles_its_products_stock_when_stock_has_no_hints(harness: Harness) -> None:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    await register_hinted(harness, ["orders", "stock"], covered=False)
    await harness.store.update_account_status("acme", {"hints:subscribed": json.dumps(wanted_events(["orders"]))})
    await harness.poll()
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 2}], allocate=True)
    await hint(harness, "orders", [order_id])
    await job(harness)
    found = await types(harness)
    assert found == ["order.created", "product.modified.on-hand-modified"]  # the allocation, in the order's job
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids


async def note_of(harness: Harness) -> int:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 1}])
    return int((await harness.sandbox_call("POST", f"/orders/{order_id}/goods-out-notes"))["id"])


async def test_notes_created_staged_and_destroyed_by_hint(harness: Harness) -> None:
    await register_hinted(harness, ["goods-out-notes"])
    await harness.poll()
    note_id = await note_of(harness)
    before = await positions(harness)
    await hint(harness, "goods-out-notes", [note_id])
    await job(harness)
    assert await types(harness) == ["goods-out-note.created"]
    after = await positions(harness)
    created_key = keyspace.position("acme", "goods-out-notes.created")
    assert after[created_key] == before[created_key]  # the created stream's cursor did not move
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "printed"})
    await hint(harness, "goods-out-notes", [note_id])
    await job(harness)
    assert await types(harness) == ["goods-out-note.created", "goods-out-note.modified.printed"]
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids
    await harness.sandbox_call("DELETE", f"/goods-out-notes/{note_id}")
    await hint(harness, "goods-out-notes", [note_id])
    await job(harness)
    assert (await types(harness))[-1] == "goods-out-note.destroyed"
    ids = await event_ids(harness)
    await harness.poll()
    assert await event_ids(harness) == ids


async def test_a_hint_for_an_old_note_not_followed_is_ignored(harness: Harness) -> None:
    note_id = await note_of(harness)
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})
    await register_hinted(harness, ["goods-out-notes"])
    await harness.poll()
    await hint(harness, "goods-out-notes", [note_id])
    await job(harness)
    assert await types(harness) == []


async def test_overflow_polls_the_resource_now(harness: Harness) -> None:
    await register_hinted(harness, ["orders"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await harness.sandbox_call("DELETE", "/requests")
    await hint(harness, "orders", [], overflow=True)
    await job(harness)
    assert any("order-search" in path for path in await polled_requests(harness))
    assert await harness.emitted() == [order_id]


async def test_hinted_ids_beyond_a_job_wait_for_the_next(harness: Harness, monkeypatch: Any) -> None:
    from workers import poller

    monkeypatch.setattr(poller, "MAX_HINTED_IDS", 2)
    await register_hinted(harness, ["orders"])
    await harness.poll()
    orders = await harness.create_orders(3)
    await hint(harness, "orders", orders)
    await job(harness)
    assert len(await harness.emitted()) == 2
    await job(harness)  # the plan kept the account due at once: its hints wait
    assert sorted(await harness.emitted()) == orders


async def test_hints_of_an_account_with_hints_off_are_dropped(harness: Harness) -> None:
    await harness.register(resources=("orders",))
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    await hint(harness, "orders", [order_id])
    await job(harness)
    waiting, whole = await Hints(harness.redis).pending("acme")
    assert (waiting, whole) == (set(), set())


async def test_a_failed_hint_read_is_recorded_as_a_lane_error(harness: Harness) -> None:
    await register_hinted(harness, ["orders", "products"])
    await harness.poll()
    (order_id,) = await harness.create_orders(1)
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    await harness.sandbox_call("POST", "/faults", {"kind": "expire_token"})
    await hint(harness, "orders", [order_id])
    await hint(harness, "products", [product_id])
    await job(harness)
    status = await harness.status()
    assert "Authorization token expired" in status["orders:last_error"]
    assert status["orders:last_hint_read_at"]
    assert await Hints(harness.redis).pending("acme") == (set(), set())  # not read again and again: the poll backs off
    due = await harness.redis.zscore(keyspace.POLLS, "acme")
    assert due is not None
    assert due > ms(now()) + 10_000
