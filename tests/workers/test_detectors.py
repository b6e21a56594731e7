"""Every change that matters, detected against the sandbox: order changes, stock, goods-out notes, products,
contacts; polls run by hand."""

from typing import Any

from tests.harness import Harness
from workers.stock import SweepState

ALL = ("orders", "stock", "goods-out-notes", "products", "contacts")


STAGES = [
    "goods-out-note.modified.printed",
    "goods-out-note.modified.picked",
    "goods-out-note.modified.packed",
    "goods-out-note.modified.shipped",
]


def types(bodies: list[dict[str, Any]]) -> list[str]:
    """Event types in the order they were stored (events stored together come in no particular order)."""
    return [b["type"] for b in bodies]


async def test_an_order_status_change(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1, status_id=1)
    await harness.poll()
    await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": 4})
    await harness.poll()
    (status,) = await harness.bodies("order.modified.order-status")
    assert status["data"]["id"] == order_id
    change = status["data"]["changes"]["orderStatus"]
    assert change["before"]["orderStatusId"] == 1
    assert change["after"]["orderStatusId"] == 4
    assert list(status["data"]["changes"]) == ["orderStatus"]
    assert await harness.bodies("order.modified") == []  # nothing else changed
    await harness.poll()
    assert len(await harness.bodies("order.modified.order-status")) == 1  # seen again: no second event


async def test_other_order_changes_name_their_fields(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"reference": "PO-77"})
    await harness.poll()
    (modified,) = await harness.bodies("order.modified")
    assert modified["data"]["changes"] == {"reference": {"before": "", "after": "PO-77"}}
    assert "updatedOn" not in modified["data"]["changes"]


async def test_two_changes_to_one_order_in_one_second(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1, status_id=1)
    await harness.poll()
    await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": 2})
    await harness.poll()
    await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": 4})  # same updatedOn second
    await harness.poll()
    after = [
        b["data"]["changes"]["orderStatus"]["after"]["orderStatusId"]
        for b in await harness.bodies("order.modified.order-status")
    ]
    assert after == [2, 4]


async def test_products_and_contacts(harness: Harness) -> None:
    await harness.register(resources=("products", "contacts"))
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    (contact_id,) = (await harness.sandbox_call("POST", "/contacts", {"count": 1}))["ids"]
    await harness.poll()
    assert [b["data"]["id"] for b in await harness.bodies("product.created")] == [product_id]
    assert [b["data"]["id"] for b in await harness.bodies("contact.created")] == [contact_id]
    await harness.sandbox_call("PATCH", f"/products/{product_id}", {"name": "Winter coat"})
    await harness.sandbox_call("PATCH", f"/contacts/{contact_id}", {"last_name": "Smith"})
    await harness.poll()
    (product,) = await harness.bodies("product.modified")
    assert set(product["data"]["changes"]) == {"salesChannels"}
    assert product["data"]["resource"]["id"] == product_id
    (contact,) = await harness.bodies("contact.modified")
    assert contact["data"]["changes"]["lastName"]["after"] == "Smith"
    assert contact["data"]["resourceType"] == "contact"


async def test_a_record_that_existed_before_registration(harness: Harness) -> None:
    (contact_id,) = (await harness.sandbox_call("POST", "/contacts", {"count": 1}))["ids"]
    await harness.sandbox_call("PATCH", "", {"clock_skew_s": 30})  # the contact was last changed 30 s ago
    await harness.sandbox_call("POST", "/contacts", {"count": 1})
    await harness.register(resources=("contacts",))
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/contacts/{contact_id}", {"first_name": "Ada"})
    await harness.poll()
    (modified,) = await harness.bodies("contact.modified")
    assert modified["data"]["changes"] is None  # the relay never saw it before: it cannot say what was
    await harness.sandbox_call("PATCH", f"/contacts/{contact_id}", {"first_name": "Grace"})
    await harness.poll()
    second = (await harness.bodies("contact.modified"))[1]
    assert second["data"]["changes"]["firstName"] == {"before": "Ada", "after": "Grace"}


async def test_goods_out_notes_reach_each_stage_once_in_order(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 2}])
    note_id = (await harness.sandbox_call("POST", f"/orders/{order_id}/goods-out-notes"))["id"]
    await harness.poll()
    assert types(await harness.bodies()) == ["goods-out-note.created"]
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "printed"})
    await harness.poll()
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})  # jumps
    await harness.poll()
    await harness.poll()
    found = types(await harness.bodies())
    assert found[:2] == ["goods-out-note.created", "goods-out-note.modified.printed"]
    assert sorted(found[2:]) == sorted(STAGES[1:])  # each stage once, the skipped ones filled in
    assert {b["data"]["id"] for b in await harness.bodies()} == {note_id}


async def test_a_note_first_seen_shipped_reports_every_stage(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 1}])
    note_id = (await harness.sandbox_call("POST", f"/orders/{order_id}/goods-out-notes"))["id"]
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})
    await harness.poll()
    assert sorted(types(await harness.bodies())) == sorted(["goods-out-note.created", *STAGES])


async def test_stock_moves_with_goods_in_allocation_and_shipping(harness: Harness) -> None:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 5}}))["ids"]
    await harness.register(resources=("orders", "stock"))  # the baseline holds the 5 on hand
    await harness.poll()
    await harness.sandbox_call("POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 2, "quantity": 10})
    await harness.poll()
    (received,) = await harness.bodies("product.modified.on-hand-modified")
    assert received["data"]["id"] == product_id
    assert received["data"]["before"]["total"]["onHand"] == 5  # the true before, from the baseline
    assert received["data"]["after"]["total"]["onHand"] == 15
    assert received["data"]["after"]["warehouses"]["2"]["inStock"] == 15
    # an allocation moves the figures without any goods movement: found through the changed order
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 4}], allocate=True)
    await harness.poll()
    allocated = (await harness.bodies("product.modified.on-hand-modified"))[1]
    assert allocated["data"]["after"]["total"]["allocated"] == 4
    assert allocated["data"]["after"]["total"]["onHand"] == 11
    note_id = (await harness.sandbox_call("POST", f"/orders/{order_id}/goods-out-notes"))["id"]
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})
    await harness.poll()
    shipped = (await harness.bodies("product.modified.on-hand-modified"))[2]
    assert shipped["data"]["after"]["total"]["inStock"] == 11
    assert shipped["data"]["after"]["total"]["allocated"] == 0
    await harness.poll()
    assert len(await harness.bodies("product.modified.on-hand-modified")) == 3


async def test_stock_follows_orders_itself_when_orders_are_not_watched(harness: Harness) -> None:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 5}}))["ids"]
    await harness.register(resources=("stock",))
    await harness.poll()
    await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 2}], allocate=True)
    await harness.poll()
    (allocated,) = await harness.bodies("product.modified.on-hand-modified")
    assert allocated["data"]["after"]["total"]["allocated"] == 2
    assert types(await harness.bodies()) == ["product.modified.on-hand-modified"]  # no order events


async def test_the_sweep_catches_what_polling_missed(harness: Harness) -> None:
    ids = (await harness.sandbox_call("POST", "/products", {"count": 20, "stock": {"2": 1}}))["ids"]
    await harness.register(resources=("stock",))
    await harness.poll()
    # change the figures behind the relay's back: no movement, no order (as a missed change would look)
    harness.sandbox.account("acme").stock.stock_existing([ids[3]], {2: 8})
    await harness.redis.set("relay:cursor:acme:stock.sweep", SweepState("idle", 1, due_ms=0).text())  # due now
    await harness.poll()
    await harness.poll()
    (caught,) = await harness.bodies("product.modified.on-hand-modified")
    assert caught["data"]["id"] == ids[3]
    assert harness.poller.metrics.reconciliation_corrections._value.get() == 1
