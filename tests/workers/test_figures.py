"""Stock figures kept compactly: every shape reads back exactly as it was written, figures kept as JSON by an
earlier version still read, and a change after them reports its true ``before``."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.store import keyspace
from tests.harness import Harness
from workers.figures import decode, encode

RECORDED = {  # API.md 6.5, product 1532
    "total": {"inStock": 60, "onHand": 48, "allocated": 12, "inTransit": 0},
    "warehouses": {"2": {"inStock": 60, "onHand": 48, "allocated": 12, "inTransit": 0}},
}


def old_text(figures: dict[str, Any], changes: int) -> str:
    """How figures were kept before: JSON, keys sorted."""
    return json.dumps({"figures": figures, "changes": changes}, sort_keys=True, separators=(",", ":"))


def test_one_warehouse_as_recorded_takes_a_tenth_of_the_json() -> None:
    text = encode(RECORDED, 3)
    assert text == "3|12,60,0,48|2="
    assert decode(text) == (RECORDED, 3)
    assert len(text) * 10 < len(old_text(RECORDED, 3))


def test_warehouses_of_their_own_are_kept_each() -> None:
    figures = {
        "total": {"inStock": 9, "onHand": 7, "allocated": 2, "inTransit": 1},
        "warehouses": {
            "2": {"inStock": 4, "onHand": 4, "allocated": 0, "inTransit": 0},
            "11": {"inStock": 5, "onHand": 3, "allocated": 2, "inTransit": 1},
        },
    }
    assert encode(figures, 0) == "0|2,9,1,7|11:2,5,1,3;2:0,4,0,4"
    assert decode(encode(figures, 0)) == (figures, 0)


@pytest.mark.parametrize(
    "figures",
    [
        {"total": None, "warehouses": None},  # a product answered without figures
        {"total": {"inStock": 1.5, "onHand": 1.5, "allocated": 0, "inTransit": 0}, "warehouses": {}},  # a fraction
        {"total": {**RECORDED["total"], "onOrder": 3}, "warehouses": {}},  # a quantity Brightpearl may add
        {"total": RECORDED["total"], "warehouses": {"main": RECORDED["total"]}},  # a warehouse id not a number
        {"total": {"inStock": True, "onHand": 0, "allocated": 0, "inTransit": 0}, "warehouses": {}},
    ],
)
def test_figures_of_another_shape_are_kept_as_json(figures: dict[str, Any]) -> None:
    assert encode(figures, 1) == old_text(figures, 1)
    assert decode(encode(figures, 1)) == (figures, 1)


quantities = st.fixed_dictionaries({name: st.integers(-(10**12), 10**12) for name in RECORDED["total"]})


@given(
    total=quantities,
    warehouses=st.dictionaries(st.integers(0, 10**6).map(str), quantities | st.just(None), max_size=4),
    changes=st.integers(0, 10**6),
)
def test_whatever_is_written_reads_back_the_same(
    total: dict[str, int], warehouses: dict[str, Any], changes: int
) -> None:
    figures = {"total": total, "warehouses": {w: q if q is not None else dict(total) for w, q in warehouses.items()}}
    assert decode(encode(figures, changes)) == (figures, changes)
    assert decode(old_text(figures, changes)) == (figures, changes)


def test_text_that_is_not_figures_is_refused() -> None:
    with pytest.raises(ValueError, match="not stock figures"):
        decode("1|1,2,3|")


async def test_a_change_after_figures_kept_as_json_reports_its_true_before(harness: Harness) -> None:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 5}}))["ids"]
    await harness.register(resources=("stock",))
    await harness.poll()
    key = keyspace.stock_figures("acme")
    kept = await harness.redis.hget(key, str(product_id))
    assert kept is not None
    assert not kept.startswith("{")
    await harness.redis.hset(key, str(product_id), old_text(*decode(kept)))  # as an earlier version kept it
    await harness.sandbox_call("POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 2, "quantity": 10})
    await harness.poll()
    (received,) = await harness.bodies("product.modified.on-hand-modified")
    assert received["data"]["before"]["total"]["onHand"] == 5
    assert received["data"]["after"]["warehouses"]["2"]["onHand"] == 15
    assert await harness.redis.hget(key, str(product_id)) == "1|0,15,0,15|2="
