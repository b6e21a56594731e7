"""Conformance: every request the relay makes, against a strict sandbox account, which refuses everything
Brightpearl is not known to take (relay.sandbox.strictness, relay.sandbox.search).

One account watches all five resources; registration takes its baselines, then each lifecycle the sandbox
supports is played and polled, and at the end the sandbox must have refused nothing. Each lifecycle also names
the events it must produce, so that a lifecycle that stopped making requests cannot pass by silence.

A new lifecycle is one more :class:`Lifecycle` in :data:`LIFECYCLES`: a name, the events it must produce, and
what it does to the sandbox (``Scene`` gives it the harness and what earlier lifecycles made).
"""

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import start_sandbox
from relay.sandbox.request_log import Refusal
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.harness import Harness, now
from tests.sandbox.conftest import FakeMonotonic
from workers import status_sweep
from workers.metrics import Metrics
from workers.poller import Poller, PollPolicy
from workers.stock import SWEEP_KEY, SweepState

ALL = ("orders", "stock", "goods-out-notes", "products", "contacts")
ON_HAND = "product.modified.on-hand-modified"


@dataclass
class Scene:
    """The harness, and the ids the lifecycles made so far (by name), for the ones after them."""

    harness: Harness
    made: dict[str, int] = field(default_factory=dict)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await self.harness.sandbox_call(method, path, body)


@dataclass(frozen=True)
class Lifecycle:
    name: str
    events: tuple[str, ...]  # each must be among the events stored after the lifecycle's polls
    play: Callable[[Scene], Awaitable[None]]
    polls: int = 1
    # answers about the data, not the request's form, that the lifecycle is meant to cause (a deleted product's
    # availability 400): the relay must cope with them, and they are no refusal of how it asks
    answers: tuple[str, ...] = ()


async def orders_created(scene: Scene) -> None:
    (scene.made["order"],) = await scene.harness.create_orders(1, status_id=1)


async def order_status_changed(scene: Scene) -> None:
    await scene.call("PUT", f"/orders/{scene.made['order']}/status", {"status_id": 4})


async def order_edited(scene: Scene) -> None:
    await scene.call("PATCH", f"/orders/{scene.made['order']}", {"reference": "PO-77"})


async def products_created(scene: Scene) -> None:
    (scene.made["product"], _) = (await scene.call("POST", "/products", {"count": 2, "stock": {"2": 5}}))["ids"]


async def product_changed(scene: Scene) -> None:
    await scene.call("PATCH", f"/products/{scene.made['product']}", {"name": "Winter coat"})


async def contacts_created(scene: Scene) -> None:
    (scene.made["contact"],) = (await scene.call("POST", "/contacts", {"count": 1}))["ids"]


async def contact_changed(scene: Scene) -> None:
    await scene.call("PATCH", f"/contacts/{scene.made['contact']}", {"last_name": "Smith"})


async def stock_received(scene: Scene) -> None:
    receipt = {"product_id": scene.made["product"], "warehouse_id": 2, "quantity": 10}
    await scene.call("POST", "/stock/receive", receipt)


async def stock_corrected(scene: Scene) -> None:
    correction = {"product_id": scene.made["product"], "warehouse_id": 2, "quantity": -3}
    await scene.call("POST", "/stock/correct", correction)


async def stock_allocated(scene: Scene) -> None:
    rows = [{"product_id": scene.made["product"], "quantity": 4}]
    (scene.made["allocated_order"],) = await scene.harness.create_orders(1, rows=rows, allocate=True)


async def goods_out_note_created(scene: Scene) -> None:
    note = await scene.call("POST", f"/orders/{scene.made['allocated_order']}/goods-out-notes")
    scene.made["note"] = note["id"]


def staged(stage: str) -> Callable[[Scene], Awaitable[None]]:
    async def play(scene: Scene) -> None:
        await scene.call("POST", f"/goods-out-notes/{scene.made['note']}/stage", {"stage": stage})

    return play


def unstaged(stage: str) -> Callable[[Scene], Awaitable[None]]:
    async def play(scene: Scene) -> None:
        await scene.call("POST", f"/goods-out-notes/{scene.made['open_note']}/unstage", {"stage": stage})

    return play


async def second_note_printed(scene: Scene) -> None:
    """A second note, printed, to be undone, edited and deleted (the first one is shipped)."""
    rows = [{"product_id": scene.made["product"], "quantity": 1}]
    (order,) = await scene.harness.create_orders(1, rows=rows, allocate=True)
    scene.made["open_note"] = (await scene.call("POST", f"/orders/{order}/goods-out-notes"))["id"]
    await scene.call("POST", f"/goods-out-notes/{scene.made['open_note']}/stage", {"stage": "printed"})


async def note_reprinted(scene: Scene) -> None:
    await scene.call("POST", f"/goods-out-notes/{scene.made['open_note']}/stage", {"stage": "printed"})


async def note_edited(scene: Scene) -> None:
    await scene.call("PATCH", f"/goods-out-notes/{scene.made['open_note']}", {"priority": True, "boxes": 2})


async def note_deleted(scene: Scene) -> None:
    await scene.call("DELETE", f"/goods-out-notes/{scene.made['open_note']}")


async def product_deleted_on_a_changed_order(scene: Scene) -> None:
    """An order holding two products changes after one of them is deleted: product-availability answers 400 for
    the pair, and the other product's figures must still be reported."""
    doomed, kept = (await scene.call("POST", "/products", {"count": 2, "stock": {"2": 5}}))["ids"]
    rows = [{"product_id": doomed, "quantity": 1}, {"product_id": kept, "quantity": 1}]
    (order,) = await scene.harness.create_orders(1, rows=rows)
    await scene.harness.poll()
    await scene.call("DELETE", f"/products/{doomed}")
    await scene.call("POST", f"/orders/{order}/allocate")


async def order_custom_field_edited(scene: Scene) -> None:
    await scene.call("PATCH", f"/orders/{scene.made['order']}", {"custom_fields": {"PCF_GIFTWRAP": True}})


async def product_custom_field_edited(scene: Scene) -> None:
    await scene.call("PATCH", f"/products/{scene.made['product']}", {"custom_fields": {"PCF_COLOUR": "red"}})


async def silent_status_change_swept(scene: Scene) -> None:
    """A status change that moves neither updatedOn nor version, and the status sweep made due to catch it."""
    await scene.call("PATCH", "", {"status_moves_updated_on": False})
    await scene.call("PUT", f"/orders/{scene.made['order']}/status", {"status_id": 3})
    await scene.harness.redis.set(
        keyspace.position("acme", status_sweep.STATE_KEY), status_sweep.StatusSweepState(due_ms=0).text()
    )


async def stock_sweep_due(scene: Scene) -> None:
    """The sweep made due now; the stock figures of one product moved behind the relay's back, for it to catch."""
    harness = scene.harness
    account = harness.sandbox.account()
    first = min(i for i, product in account.products.items() if product.stock_tracked)  # on the sweep's first page
    account.stock.stock_existing([first], {3: 7})
    await harness.redis.set(keyspace.position("acme", SWEEP_KEY), SweepState("idle", 1, due_ms=0).text())


LIFECYCLES: list[Lifecycle] = [
    Lifecycle("orders created", ("order.created",), orders_created),
    Lifecycle("an order's status changed", ("order.modified.order-status",), order_status_changed),
    Lifecycle("an order edited", ("order.modified",), order_edited),
    Lifecycle("an order's custom field edited", ("order.modified",), order_custom_field_edited),
    Lifecycle("an order's status changed silently", ("order.modified.order-status",), silent_status_change_swept),
    Lifecycle("products created", ("product.created",), products_created),
    Lifecycle("a product changed", ("product.modified",), product_changed),
    Lifecycle("a product's custom field edited", ("product.modified",), product_custom_field_edited),
    Lifecycle("contacts created", ("contact.created",), contacts_created),
    Lifecycle("a contact changed", ("contact.modified",), contact_changed),
    Lifecycle("stock received", (ON_HAND,), stock_received),
    Lifecycle("stock corrected", (ON_HAND,), stock_corrected),
    Lifecycle("stock allocated to an order", (ON_HAND,), stock_allocated),
    Lifecycle("a goods-out note created", ("goods-out-note.created",), goods_out_note_created),
    Lifecycle("a note printed", ("goods-out-note.modified.printed",), staged("printed")),
    Lifecycle("a note picked", ("goods-out-note.modified.picked",), staged("picked")),
    Lifecycle("a note packed", ("goods-out-note.modified.packed",), staged("packed")),
    Lifecycle("a note shipped", ("goods-out-note.modified.shipped",), staged("shipped")),
    # the sweep reads a page a poll (the harness's pages are 7 rows): enough polls to read the whole catalogue
    Lifecycle("the stock sweep", (ON_HAND,), stock_sweep_due, polls=4),
    Lifecycle("a second note printed", ("goods-out-note.modified.printed",), second_note_printed),
    Lifecycle("a note un-printed", ("goods-out-note.modified.un-printed",), unstaged("printed")),
    Lifecycle("a note printed again", ("goods-out-note.modified.printed",), note_reprinted),
    Lifecycle("a note edited", ("goods-out-note.modified",), note_edited),
    Lifecycle("a note deleted", ("goods-out-note.destroyed",), note_deleted),
    Lifecycle(
        "a product deleted, on an order that then changes",
        ("order.modified", ON_HAND),
        product_deleted_on_a_changed_order,
        answers=("WHSC-097",),
    ),
]


@dataclass
class Stage:
    """The harness, and the sandbox's throttle clock: a minute passes before each lifecycle and each poll, so that
    the relay is neither paced nor throttled (the harness's 7-row pages cost some 300 requests in all)."""

    harness: Harness
    throttle_clock: FakeMonotonic


@pytest.fixture
async def stage(redis_client: Redis) -> AsyncIterator[Stage]:
    throttle_clock = FakeMonotonic()
    sandbox = await start_sandbox(accounts=[SandboxAccount("acme", monotonic_ms=throttle_clock)])
    async with aiohttp.ClientSession() as http:
        store = Store(redis_client)
        policy = PollPolicy(overlap_s=60, budget_per_minute=10_000, page_size=7)
        poller = Poller(
            store,
            DeliveryQueue(redis_client),
            redis_client,
            http,
            policy,
            Metrics(),
            clock=now,
            on_deliveries=lambda: None,
        )
        yield Stage(Harness(redis_client, sandbox, http, store, poller), throttle_clock)
    await sandbox.close()


def refusals(harness: Harness) -> list[Refusal]:
    return list(harness.sandbox.account().requests.refusals)


def listed(found: list[Refusal]) -> str:
    return "the strict sandbox refused:\n" + "\n".join(f"  {refusal}" for refusal in found)


async def conforming(harness: Harness, what: str, action: Awaitable[None], answers: tuple[str, ...] = ()) -> None:
    """Run ``action`` (registration, a poll); fail listing the refusals if it fails or the sandbox refused, except
    the ``answers`` the lifecycle is meant to cause."""
    try:
        await action
    except Exception as error:
        raise AssertionError(f"{what} failed ({error}); {listed(refusals(harness))}") from error
    found = [refusal for refusal in refusals(harness) if refusal.code not in answers]
    assert not found, f"after {what}, {listed(found)}"
    harness.sandbox.account().requests.refusals.clear()


async def test_every_request_the_relay_makes_is_one_a_strict_brightpearl_takes(stage: Stage) -> None:
    harness = stage.harness
    await harness.sandbox_call("PATCH", "", {"strict": True})
    await harness.create_orders(3)  # something for every baseline to find
    # more than a page of the poller's, and more than a product-availability request may name (100, strict)
    await harness.sandbox_call("POST", "/products", {"count": 120, "stock": {"2": 2}})
    await harness.sandbox_call("POST", "/contacts", {"count": 2})
    await conforming(harness, "registration", harness.register(resources=ALL))
    scene = Scene(harness)
    allowed: tuple[str, ...] = ()  # once a product is deleted, any later read of its figures may meet the 400
    for lifecycle in LIFECYCLES:
        allowed += lifecycle.answers
        before = {json.dumps(body, sort_keys=True) for body in await harness.bodies()}
        stage.throttle_clock.advance(60_000)
        await lifecycle.play(scene)
        for _ in range(lifecycle.polls):
            stage.throttle_clock.advance(60_000)
            await conforming(harness, lifecycle.name, harness.poll(), allowed)
        after = await harness.bodies()
        produced = {body["type"] for body in after if json.dumps(body, sort_keys=True) not in before}
        missing = set(lifecycle.events) - produced
        assert not missing, f"{lifecycle.name} produced {sorted(produced)}, not {sorted(missing)}"
    requests = harness.sandbox.account().requests
    assert requests.throttled == 0
    assert requests.total > 200  # every lifecycle was read
