"""Snapshots compressed with each resource's preset dictionary: small, and every snapshot ever written still reads.

A snapshot packed by an earlier version (plain zlib, no dictionary) gives its ``before`` as it did; one naming a
dictionary this version does not have (written by a newer relay) is skipped with ``changes: null``, never a failed
poll."""

import base64
import json
import zlib
from datetime import UTC, datetime

import pytest

from relay.sandbox.products import new_products, render_product
from subscriptions.store import keyspace
from tests.harness import Harness
from tests.workers.test_idle_polls import Clock
from workers.snapshots import DICTIONARIES, dictionary_for, pack, unpack


def plain_pack(record: dict[str, object]) -> str:
    """A snapshot as the relay wrote it before it had dictionaries."""
    return base64.b64encode(zlib.compress(json.dumps(record, separators=(",", ":")).encode(), 6)).decode()


def test_every_snapshotted_resource_has_its_dictionary() -> None:
    assert {dictionary_for(r) is not None for r in ("orders", "stock.orders", "products", "contacts")} == {True}
    assert dictionary_for("goods-out-notes") == DICTIONARIES["goods-out-notes"]
    assert dictionary_for("stock.orders") == DICTIONARIES["orders"]


def test_a_product_snapshot_is_a_fraction_of_its_plain_compression() -> None:
    (product,) = new_products([1234], "SKU-", None, datetime(2026, 12, 4, 10, 11, 12, tzinfo=UTC))
    record = render_product(product, (2,), 60)
    packed = pack(record, dictionary_for("products"))
    assert unpack(packed) == record
    assert len(packed) * 3 < len(plain_pack(record))


@pytest.mark.parametrize("dictionary", [None, *DICTIONARIES.values()])
def test_what_was_packed_unpacks_whichever_dictionary(dictionary: bytes | None) -> None:
    record = {"id": 7, "reference": "R-1", "nested": {"list": [1, 2.5, None, True]}}
    assert unpack(pack(record, dictionary)) == record
    assert unpack(plain_pack(record)) == record  # written before dictionaries


def test_a_snapshot_naming_an_unknown_dictionary_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dictionary this version"):
        unpack(pack({"id": 1}, b'{"a dictionary":"from a newer relay"}'))
    with pytest.raises(ValueError, match="not a snapshot"):
        unpack("not base64 at all!")


async def test_an_order_changed_after_an_old_snapshot_reports_its_before(harness: Harness) -> None:
    await harness.register()
    (order_id,) = await harness.create_orders(1)
    await harness.poll()
    key = keyspace.snapshot("acme", "orders", order_id)
    stored = await harness.redis.get(key)
    assert stored is not None
    await harness.redis.set(key, plain_pack(unpack(stored)))  # as an earlier version left it
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"reference": "R-9"})
    await harness.poll()
    await harness.poll()
    [event] = await harness.bodies("order.modified")
    assert event["data"]["changes"]["reference"] == {"before": "", "after": "R-9"}
    assert len(await harness.redis.get(key) or "") < len(plain_pack(unpack(stored))) / 2  # rewritten, smaller


async def test_an_unreadable_snapshot_gives_changes_null_and_the_poll_goes_on(harness: Harness) -> None:
    clock = Clock(harness)
    await harness.register(resources=("products",))
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    for _ in range(2):
        clock.step(2)
        await harness.poll()
    key = keyspace.snapshot("acme", "products", product_id)
    await harness.redis.set(key, pack({"id": product_id}, b'{"from":"a newer relay"}'))
    clock.step(2)
    await harness.sandbox_call("PATCH", f"/products/{product_id}", {"name": "Renamed"})
    (other,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    for _ in range(2):
        clock.step(2)
        await harness.poll()
    [modified] = await harness.bodies("product.modified")
    assert (modified["data"]["id"], modified["data"]["changes"]) == (product_id, None)
    assert [e["data"]["id"] for e in await harness.bodies("product.created")][-1] == other
