"""Property: whatever happens in Brightpearl, between whatever polls, crashes and throttling, the events stored are
exactly the changes made: none missing, none twice under different ids, each chain of changes unbroken.

Hypothesis draws random sequences of sandbox changes (orders, many sharing one createdOn second; status and
other order changes; goods received; allocations; goods-out notes and their stages; products; contacts)
interleaved with polls, polls that die part-way through committing, and polls under throttling. After a few
settling polls the events are checked against Brightpearl's final state, read through the client.
"""

import itertools
import json
from collections import defaultdict
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import start_sandbox
from relay.sandbox.goods_out import Stage
from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.core.errors import RelayError
from subscriptions.core.models import AccountRecord, SubscriptionRecord
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.conftest import empty_database
from tests.harness import now
from workers.changes import IGNORED_FIELDS
from workers.detectors import take_baselines
from workers.metrics import Metrics
from workers.poller import Poller, PollPolicy, client_for
from workers.records import WITH_CUSTOM_FIELDS

pytestmark = pytest.mark.timeout(600)

STAGES = ("printed", "picked", "packed", "shipped")
NOTES = "warehouse-service/order/*/goods-note/goods-out/"
RESOURCES = ["orders", "stock", "goods-out-notes", "products", "contacts"]

actions = st.lists(
    st.one_of(
        st.tuples(st.just("orders"), st.integers(1, 4), st.booleans()),
        st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from([1, 2, 4, 5])),
        st.tuples(st.just("patch_order"), st.integers(0, 50), st.integers(0, 9)),
        st.tuples(st.just("receive"), st.integers(0, 3), st.integers(1, 9)),
        st.tuples(st.just("note"), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("stage"), st.integers(0, 50), st.integers(0, 3)),
        st.tuples(st.just("product"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("contact"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("poll"), st.just(0), st.just(0)),
        st.tuples(st.just("crash"), st.integers(1, 3), st.just(0)),
        st.tuples(st.just("throttle"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


class World:
    def __init__(self, account: SandboxAccount, poller: Poller, redis: Redis) -> None:
        self.account = account
        self.poller = poller
        self.redis = redis
        self.products = [p.id for p in account.create_products(4, stock={2: 20})]  # before registration
        self.orders: list[int] = []
        self.notes: list[int] = []
        self.contacts: list[int] = []
        self.created_products: list[int] = []

    async def poll(self) -> None:
        await self.poller.poll_now("acme")

    async def crash_after(self, commits: int) -> None:
        """A poll whose worker dies after ``commits`` commits: the rest is never written."""
        real = self.poller.queue.commit
        done = 0

        async def dying(*args: Any, **kwargs: Any) -> Any:
            nonlocal done
            if done >= commits:
                raise ConnectionError("the worker died here")
            done += 1
            return await real(*args, **kwargs)

        self.poller.queue.commit = dying  # type: ignore[method-assign]
        try:
            await self.poll()
        except ConnectionError:
            pass
        finally:
            self.poller.queue.commit = real  # type: ignore[method-assign]

    async def act(self, kind: str, a: int, b: Any) -> None:  # noqa: PLR0912 - one branch per action
        account = self.account
        try:
            if kind == "orders":
                rows = [(self.products[a % len(self.products)], 1)] if b else []
                self.orders += [o.id for o in account.create_orders(a, rows=rows, allocate=b)]
            elif kind == "status" and self.orders:
                account.set_status(self.orders[a % len(self.orders)], b)
            elif kind == "patch_order" and self.orders:
                account.change_order(self.orders[a % len(self.orders)], reference=f"ref-{b}")
            elif kind == "receive":
                account.receive_stock(self.products[a % len(self.products)], 2, b)
            elif kind == "note" and self.orders:
                self.notes.append(account.create_goods_out_note(self.orders[a % len(self.orders)]).id)
            elif kind == "stage" and self.notes:
                account.set_note_stage(self.notes[a % len(self.notes)], Stage(STAGES[b]))
            elif kind == "product":
                if b or not self.created_products:
                    self.created_products += [p.id for p in account.create_products(1)]
                else:
                    account.change_product(self.created_products[a % len(self.created_products)], name=f"n{a}")
            elif kind == "contact":
                if b or not self.contacts:
                    self.contacts += [c.id for c in account.create_contacts(1)]
                else:
                    account.change_contact(self.contacts[a % len(self.contacts)], last_name=f"l{a}")
            elif kind == "poll":
                await self.poll()
            elif kind == "crash":
                await self.crash_after(a)
            elif kind == "throttle":
                account.faults.add("throttle", now_ms=account.monotonic_ms(), for_ms=200)
                await self.poll()
        except RelayError:  # the sandbox refused the change (a note already shipped, ...): nothing happened
            return


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=actions)
async def test_events_are_exactly_the_changes_made(redis_url: str, plan: list[tuple[str, int, Any]]) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    await empty_database(redis)  # this database is the test's own; each example starts empty
    account = SandboxAccount("acme", throttle=RollingWindowThrottle(limit=10**6))  # throttling comes from faults
    sandbox = await start_sandbox(accounts=[account])
    try:
        async with aiohttp.ClientSession() as http:
            store = Store(redis)
            poller = Poller(
                store,
                DeliveryQueue(redis),
                redis,
                http,
                PollPolicy(budget_per_minute=10_000, page_size=3),
                Metrics(),
                clock=now,
                on_deliveries=lambda: None,
            )
            world = World(account, poller, redis)
            record = AccountRecord(
                code="acme",
                base_url=sandbox.base_url("acme"),
                app_ref=account.app_ref,
                auth="account_token",
                token=account.account_token,
                poll_interval_s=1,
                resources=list(RESOURCES),
                created_at=now(),
            )
            client = client_for(http, record, None)
            baseline = await take_baselines(client, RESOURCES, sweep_interval_s=10**6, now_ms=0)
            await store.create_account(record, baseline.positions, 0, baseline.stock_figures)
            await store.create_subscription(
                SubscriptionRecord(
                    id="sub_all",
                    account="acme",
                    url="https://example.com/h",
                    events=["*"],
                    secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    created_at=now(),
                    updated_at=now(),
                )
            )
            for kind, a, b in plan:
                await world.act(kind, a, b)
            account.faults.clear()
            for _ in range(3):
                await world.poll()
            events = [json.loads(e.body) for e in reversed((await store.list_events(limit=1000, cursor=None)).items)]
            await check(events, world, client)
    finally:
        await sandbox.close()
        await empty_database(redis)
        await redis.aclose()


async def check(events: list[dict[str, Any]], world: World, client: Any) -> None:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_type[event["type"]].append(event["data"])
    # every record created after registration: exactly one created event
    for event_type, ids in [
        ("order.created", world.orders),
        ("product.created", world.created_products),
        ("contact.created", world.contacts),
        ("goods-out-note.created", world.notes),
    ]:
        found = sorted(d["id"] for d in by_type[event_type])
        assert found == sorted(ids), f"{event_type}: got {found}, made {sorted(ids)}"
    # a change is never reported twice under two ids: (type, id, state after) is unique
    seen = set()
    for event in events:
        data = event["data"]
        resource = data.get("resource", {})
        state = json.dumps(data.get("after", resource.get("version", resource.get("updatedOn"))), sort_keys=True)
        key = (event["type"], data["id"], state)
        assert key not in seen, f"reported twice: {key}"
        seen.add(key)
    # orders: the status chain is unbroken and ends where Brightpearl's order is
    read = {"includeOptional": WITH_CUSTOM_FIELDS}  # as the relay reads them
    found = await client.get_many("order-service/order/", world.orders, params=read) if world.orders else []
    orders = {o["id"]: o for o in found}
    for order_id, order in orders.items():
        story = sorted(
            (
                d
                for t in ("order.created", "order.modified.order-status", "order.modified")
                for d in by_type[t]
                if d["id"] == order_id
            ),
            key=lambda d: d["resource"]["version"],
        )
        assert without_stamps(story[-1]["resource"]) == without_stamps(order), f"order {order_id} missed a change"
        status = story[0]["resource"]["orderStatus"]
        for data in story[1:]:
            change = (data.get("changes") or {}).get("orderStatus")
            if change:
                assert change["before"] == status, f"order {order_id}: status chain broken"
                status = change["after"]
        assert status == order["orderStatus"], (
            f"order {order_id}: ends {status}, Brightpearl says {order['orderStatus']}"
        )
    # goods-out notes: each stage once, up to where the note is
    notes = (
        await client.get_keyed("warehouse-service/order/*/goods-note/goods-out/", world.notes) if world.notes else {}
    )
    for note_id, note in notes.items():
        level = max([i + 1 for i, s in enumerate(STAGES) if note["status"].get(s)], default=0)
        reached = sorted(
            t.rsplit(".", 1)[1]
            for t in by_type
            for d in by_type[t]
            if t.startswith("goods-out-note.modified.") and d["id"] == note_id
        )
        assert reached == sorted(STAGES[:level]), f"note {note_id}: stages {reached}, level {level}"
    # stock: each product's figures form an unbroken chain ending at Brightpearl's figures
    products = world.products + world.created_products
    current = await client.get_keyed("warehouse-service/product-availability/", products)
    for product_id in products:
        chain = [d for d in by_type["product.modified.on-hand-modified"] if d["id"] == product_id]
        figures = {"total": current[product_id]["total"], "warehouses": current[product_id]["warehouses"]}
        if chain:
            for earlier, later in itertools.pairwise(chain):
                assert later["before"] == earlier["after"], f"product {product_id}: stock chain broken"
            assert chain[-1]["after"] == figures, f"product {product_id}: stock ends elsewhere"
    # products and contacts: the last event carries the record as it is now
    for event_prefix, path, ids, id_key in [
        ("product", "product-service/product/", world.created_products, "id"),
        ("contact", "contact-service/contact/", world.contacts, "contactId"),
    ]:
        asked = read if event_prefix == "product" else None
        now_records = {r[id_key]: r for r in await client.get_many(path, ids, params=asked)} if ids else {}
        for record_id, record in now_records.items():
            story = [
                d
                for t in (f"{event_prefix}.created", f"{event_prefix}.modified")
                for d in by_type[t]
                if d["id"] == record_id
            ]
            last = max(story, key=lambda d: (d["resource"].get("version", 0), d["resource"].get("updatedOn", "")))
            # a change of version or updatedOn alone is no change, and is not reported
            assert without_stamps(last["resource"]) == without_stamps(record), (
                f"{event_prefix} {record_id}: the last event is not its current state"
            )


def without_stamps(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in IGNORED_FIELDS}
