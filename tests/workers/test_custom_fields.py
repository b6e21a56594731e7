"""Custom fields against the sandbox and a real Redis: an edit of one is an ``order.modified`` /
``product.modified`` naming ``customFields.{CODE}``, and snapshots taken before the relay read custom fields send
nothing spurious."""

from subscriptions.store import keyspace
from tests.harness import Harness
from workers.snapshots import Snapshots, pack


async def test_a_custom_field_edit_is_an_order_modified_naming_it(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"custom_fields": {"PCF_GIFTWRAP": True}})
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies("order.modified")
    assert event["data"]["changes"] == {"customFields.PCF_GIFTWRAP": {"before": None, "after": True}}
    assert event["data"]["resource"]["customFields"] == {"PCF_GIFTWRAP": True, "PCF_DELIVNOTE": None}
    assert event["timestamp"]
    both = {"PCF_GIFTWRAP": False, "PCF_DELIVNOTE": "leave at the door"}
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"custom_fields": both})
    await harness.sandbox_call("PUT", f"/orders/{order_id}/status", {"status_id": 4})
    await harness.poll()
    await harness.poll()
    events = await harness.bodies("order.modified")
    assert [e["data"]["changes"] for e in events[1:]] == [
        {
            "customFields.PCF_DELIVNOTE": {"before": None, "after": "leave at the door"},
            "customFields.PCF_GIFTWRAP": {"before": True, "after": False},
        }
    ]
    [status] = await harness.bodies("order.modified.order-status")  # still an event of its own
    assert set(status["data"]["changes"]) == {"orderStatus"}


async def test_a_custom_field_edit_is_a_product_modified_naming_it(harness: Harness) -> None:
    await harness.register(resources=("products",))
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/products/{product_id}", {"custom_fields": {"PCF_COLOUR": "red"}})
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies("product.modified")
    assert event["data"]["changes"] == {"customFields.PCF_COLOUR": {"before": None, "after": "red"}}


async def test_snapshots_from_before_custom_fields_were_read_send_nothing_spurious(harness: Harness) -> None:
    await harness.register()
    ids = await harness.create_orders(2)
    await harness.poll()
    snapshots = Snapshots(harness.redis, "acme", "orders")
    for order_id, record in (await snapshots.load(ids)).items():  # as the relay kept them before this change
        del record["customFields"]
        await harness.redis.set(keyspace.snapshot("acme", "orders", order_id), pack(record))
    first, second = ids
    await harness.sandbox_call("PATCH", f"/orders/{first}", {"custom_fields": {"PCF_GIFTWRAP": True}})
    await harness.sandbox_call("PATCH", f"/orders/{second}", {"reference": "R-2"})
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies("order.modified")  # the custom field edit is unknown: only the reference
    assert (event["data"]["id"], event["data"]["changes"]) == (second, {"reference": {"before": "", "after": "R-2"}})
    await harness.sandbox_call("PATCH", f"/orders/{first}", {"custom_fields": {"PCF_GIFTWRAP": None}})
    await harness.poll()
    await harness.poll()
    events = await harness.bodies("order.modified")
    assert events[-1]["data"]["changes"] == {"customFields.PCF_GIFTWRAP": {"before": True, "after": None}}
    assert len(events) == 2
