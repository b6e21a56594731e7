"""No answer stops a lane (issue 14): whatever Brightpearl (or Cloudflare in front of it) answers, the lane
records its error, its kind and since when, the metric counts it, and once the answer is right again the next
poll recovers with nothing lost. Real sandbox, real Redis, polls run by hand."""

import asyncio
import dataclasses
from typing import Any

import pytest

from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.polls import Polls
from tests.e2e import wait_for
from tests.harness import Harness, now
from workers.metrics import Metrics


def errors_counted(metrics: Metrics, resource: str, kind: str) -> float:
    return float(metrics.brightpearl_errors.labels(resource, kind)._value.get())


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"kind": "html", "status": 403}, "html"),  # Cloudflare's firewall page: not a bad token
        ({"kind": "html", "status": 502}, "html"),
        ({"kind": "html", "status": 520}, "html"),
        ({"kind": "html", "status": 522}, "html"),
        ({"kind": "empty"}, "empty"),
        ({"kind": "malformed"}, "malformed"),  # JSON cut short
        ({"kind": "slow", "delay_ms": 1500}, "timeout"),  # longer than RELAY_BRIGHTPEARL_TIMEOUT_S
        ({"kind": "unavailable"}, "unavailable"),
    ],
)
async def test_a_lane_records_its_error_and_recovers(harness: Harness, fault: dict[str, Any], kind: str) -> None:
    harness.poller.policy = dataclasses.replace(harness.poller.policy, brightpearl_timeout_s=0.3)
    await harness.register(resources=("orders", "contacts"))
    await harness.poll()
    await harness.sandbox_call("POST", "/faults", {**fault, "path_contains": "order-service/order-search"})
    ids = await harness.create_orders(2)

    await harness.poll()
    status = await harness.status()
    assert status["orders:last_error_kind"] == kind
    assert "order-search" in status["orders:last_error"]
    first_error_at = status["orders:last_error_at"]
    assert status["orders:error_since"] == first_error_at
    assert not status.get("contacts:error_since")  # the other lane went on
    assert status["contacts:caught_up_at"] >= first_error_at[:19]
    assert errors_counted(harness.poller.metrics, "orders", kind) == 1
    # a transient error pauses the lane one interval at most: never the long back-off of a refused token
    plan = await Polls(harness.redis).plan("acme")
    assert plan.due_ms["orders"] <= ms(now()) + 1_000

    await asyncio.sleep(0.01)
    await harness.poll()
    status = await harness.status()
    assert status["orders:error_since"] == first_error_at  # the run of failures began at the first
    assert status["orders:last_error_at"] >= first_error_at
    assert errors_counted(harness.poller.metrics, "orders", kind) == 2
    assert await harness.emitted() == []

    await harness.sandbox_call("DELETE", "/faults")
    await harness.poll()
    status = await harness.status()
    assert status["orders:error_since"] == ""  # recovered
    assert status["orders:last_error_kind"] == kind  # the last error is still shown, with when
    assert status["orders:caught_up_at"] > first_error_at[:19]
    assert await harness.emitted() == ids  # nothing lost
    assert harness.poller.metrics.polls.labels("orders", "error")._value.get() == 2


async def test_a_refused_token_still_backs_off(harness: Harness) -> None:
    await harness.register(resources=("orders",))
    await harness.poll()
    await harness.sandbox_call("POST", "/faults", {"kind": "expire_token"})
    await harness.poll()
    status = await harness.status()
    assert status["orders:last_error_kind"] == "auth"
    assert errors_counted(harness.poller.metrics, "orders", "auth") == 1
    plan = await Polls(harness.redis).plan("acme")
    assert plan.due_ms["orders"] >= ms(now()) + 50_000  # a person must act: no use asking every second


@pytest.mark.parametrize("bad_ids", ["reject", "ignore"])  # API.md 8.1 (R-MCP) and 6.5 (the docs)
async def test_a_deleted_product_in_a_changed_order_does_not_stop_stock(harness: Harness, bad_ids: str) -> None:
    await harness.sandbox_call("PATCH", "", {"availability_bad_ids": bad_ids})
    kept, deleted, other = (await harness.sandbox_call("POST", "/products", {"count": 3, "stock": {"2": 10}}))["ids"]
    await harness.register(resources=("orders", "stock"))
    await harness.poll()
    rows = [{"product_id": p, "quantity": 1} for p in (kept, deleted, other)]
    (order_id,) = await harness.create_orders(1, rows=rows, allocate=True)
    await harness.poll()
    assert len(await harness.bodies("product.modified.on-hand-modified")) == 3

    await harness.sandbox_call("DELETE", f"/products/{deleted}")
    await harness.sandbox_call("POST", "/stock/receive", {"product_id": kept, "warehouse_id": 2, "quantity": 5})
    await harness.sandbox_call("PATCH", f"/orders/{order_id}", {"reference": "changed"})  # its products dirty
    await harness.poll()
    moved = (await harness.bodies("product.modified.on-hand-modified"))[3:]
    assert [(b["data"]["id"], b["data"]["after"]["total"]["inStock"]) for b in moved] == [(kept, 15)]
    status = await harness.status()
    assert not status.get("stock:error_since")
    dropped = harness.poller.metrics.brightpearl_dropped_ids.labels("stock")._value.get()
    if bad_ids == "reject":
        assert status["stock:dropped_ids"] == "1"
        assert status["stock:last_dropped_ids"] == str(deleted)
        assert dropped == 1
    else:  # simply left out: nothing to drop
        assert "stock:dropped_ids" not in status
        assert dropped == 0
    assert await harness.redis.scard(keyspace.stock_dirty("acme")) == 0  # the batch was settled, bad id and all

    # the lane keeps going: later changes of the other products are seen
    await harness.sandbox_call("POST", "/stock/receive", {"product_id": other, "warehouse_id": 2, "quantity": 2})
    await harness.poll()
    (later,) = (await harness.bodies("product.modified.on-hand-modified"))[4:]
    assert (later["data"]["id"], later["data"]["after"]["total"]["inStock"]) == (other, 12)


async def test_registration_survives_a_product_deleted_under_its_catalogue_read(harness: Harness) -> None:
    ids = (await harness.sandbox_call("POST", "/products", {"count": 6, "stock": {"2": 3}}))["ids"]
    account = harness.sandbox.account("acme")
    # the catalogue's search finds the product; it is deleted before availability is read
    await harness.sandbox_call(
        "POST", "/faults", {"kind": "slow", "delay_ms": 1000, "count": 1, "path_contains": "product-availability"}
    )
    registering = asyncio.create_task(harness.register(resources=("stock",)))
    await wait_for(lambda: not account.faults.active(account.monotonic_ms()), 5, "the availability request")
    await harness.sandbox_call("DELETE", f"/products/{ids[2]}")
    await registering
    figures = await harness.redis.hkeys(keyspace.stock_figures("acme"))
    assert sorted(int(i) for i in figures) == [i for i in ids if i != ids[2]]


async def test_an_untracked_product_on_an_order_does_not_stop_stock(harness: Harness) -> None:
    (tracked,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 4}}))["ids"]
    (untracked,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock_tracked": False}))["ids"]
    await harness.register(resources=("orders", "stock"))
    await harness.poll()
    rows = [{"product_id": tracked, "quantity": 3}, {"product_id": untracked, "quantity": 1}]
    await harness.create_orders(1, rows=rows, allocate=True)
    await harness.poll()
    (allocated,) = await harness.bodies("product.modified.on-hand-modified")
    assert (allocated["data"]["id"], allocated["data"]["after"]["total"]["allocated"]) == (tracked, 3)
    status = await harness.status()
    assert (status["stock:last_dropped_ids"], status.get("stock:error_since")) == (str(untracked), "")
