"""Brightpearl requests per poll cycle with 10 stock changes a cycle, for catalogues of 1,000 to 100,000 products,
beside what reading the whole catalogue's availability would cost.

    .venv/bin/python bench/poll_cost.py [--cycles 5] [--sizes 1000,10000,100000]

Each size gets a fresh sandbox account and the embedded store. The account is registered with orders and stock
watched; the stock baseline is completed first (with the sandbox's throttle lifted, so the benchmark does not
wait minutes for it), then every cycle makes 10 stock changes (5 goods received, 5 sales orders allocating
stock) and runs one poll of the account. The table counts the requests the sandbox served during the cycles,
by route: what the relay spends to find and report those changes. A full scan is the product search and the
availability reads one sweep of the catalogue costs (catalogue / 500 + catalogue / 100: availability is read
100 ids a request).

Then one idle cycle of all five resources: an account with an order on a product, a contact and a goods-out-free
catalogue, one change settled, Brightpearl's clock moved 3 s between polls; what one poll of everything costs
when nothing changes (its searches alone), and the effective intervals at the defaults (``poll_interval_s`` 5,
``RELAY_BUDGET_SHARE`` 0.5) with any warnings the registration answer would give.
"""

import argparse
import asyncio
import math
import random
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.connections import connect
from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import SandboxServer, start_sandbox
from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.core.models import RESOURCES, AccountRecord, Resource
from subscriptions.core.times import ms
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.budget import requests_per_minute
from workers.context import PollContext
from workers.detectors import take_baselines
from workers.metrics import Metrics
from workers.plan import effective_intervals, interval_warnings
from workers.poller import Poller, PollPolicy, client_for
from workers.stock import AVAILABILITY_IDS, Figures, Sweep

CHANGES_PER_CYCLE = 10
ACCOUNT = "acme"


def now() -> datetime:
    return datetime.now(UTC)


async def measure(size: int, cycles: int, rng: random.Random) -> tuple[float, Counter[str], int, int]:
    account = SandboxAccount(ACCOUNT, throttle=RollingWindowThrottle(limit=10**9))
    sandbox = await start_sandbox(accounts=[account])
    connections = await connect(None)
    try:
        products = account.create_products(size, stock={2: 100})
        product_ids = [p.id for p in products]
        async with aiohttp.ClientSession() as http:
            store = Store(connections.redis)
            policy = PollPolicy(budget_per_minute=10**9)
            poller = Poller(
                store,
                DeliveryQueue(connections.redis),
                connections.redis,
                http,
                policy,
                Metrics(),
                clock=now,
                on_deliveries=lambda: None,
            )
            await register(sandbox, store, poller, connections.redis, http)
            account.requests.reset()
            for _ in range(cycles):
                change_stock(account, product_ids, rng)
                await poller.poll_now(ACCOUNT)
            served = account.requests.describe()
            events = await store.list_events(
                limit=1000, cursor=None, account=ACCOUNT, type_="product.modified.on-hand-modified"
            )
            stock_events = len(events.items)
    finally:
        await sandbox.close()
        await connections.close()
    by_route = Counter(served["by_route"])
    full_scan = math.ceil(size / 500) + math.ceil(size / AVAILABILITY_IDS)
    return served["total"] / cycles, by_route, full_scan, stock_events


async def measure_idle(cycles: int) -> Counter[str]:
    """The requests, by route, of ``cycles`` idle polls of all five resources, once a change has settled."""
    account = SandboxAccount(ACCOUNT, throttle=RollingWindowThrottle(limit=10**9))
    at = [datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)]
    account.clock = lambda: at[0]
    sandbox = await start_sandbox(accounts=[account])
    connections = await connect(None)
    try:
        async with aiohttp.ClientSession() as http:
            store = Store(connections.redis)
            poller = Poller(
                store,
                DeliveryQueue(connections.redis),
                connections.redis,
                http,
                PollPolicy(budget_per_minute=10**9),
                Metrics(),
                clock=now,
                on_deliveries=lambda: None,
            )
            (product,) = account.create_products(1, stock={2: 100})
            account.create_contacts(1)
            await register(sandbox, store, poller, connections.redis, http, resources=list(RESOURCES))
            (order,) = account.create_orders(1, rows=[(product.id, 1)])
            at[0] += timedelta(seconds=1)
            account.set_status(order.id, 4)
            for _ in range(3):  # the change is read, then read once more after its second is over
                at[0] += timedelta(seconds=3)
                await poller.poll_now(ACCOUNT)
            account.requests.reset()
            for _ in range(cycles):
                at[0] += timedelta(seconds=3)
                await poller.poll_now(ACCOUNT)
            served = account.requests.describe()
    finally:
        await sandbox.close()
        await connections.close()
    return Counter(served["by_route"])


async def register(
    sandbox: SandboxServer,
    store: Store,
    poller: Poller,
    redis: Redis,
    http: aiohttp.ClientSession,
    resources: list[Resource] | None = None,
) -> None:
    """Register the sandbox account with orders and stock watched, and complete the stock baseline: the
    catalogue's first figures, swept at once rather than over the sweep interval."""
    account = sandbox.account(ACCOUNT)
    record = AccountRecord(
        code=ACCOUNT,
        base_url=sandbox.base_url(ACCOUNT),
        app_ref=account.app_ref,
        auth="account_token",
        token=account.account_token,
        poll_interval_s=5,
        resources=resources or ["orders", "stock"],
        created_at=now(),
    )
    client = client_for(http, record, None)
    baseline = await take_baselines(client, record.resources, sweep_interval_s=10**7, now_ms=ms(now()))
    await store.create_account(record, baseline.positions, 0, baseline.stock_figures)
    ctx = PollContext(
        client,
        record,
        redis,
        store,
        poller.queue,
        None,
        60_000,
        now,
        Metrics(),
        lambda: None,
        poller.budgets.of(ACCOUNT),
        client,
    )
    sweep = Sweep(ctx, Figures(redis, ACCOUNT))
    while (await sweep.state()).mode == "baseline":  # finish the catalogue's first figures
        await sweep.step(10**7, pages=50)


def change_stock(account: SandboxAccount, product_ids: list[int], rng: random.Random) -> None:
    """One cycle's stock changes: goods received for 5 products, a sales order allocating 5 others."""
    chosen = rng.sample(product_ids, CHANGES_PER_CYCLE)
    for product_id in chosen[:5]:
        account.receive_stock(product_id, 2, rng.randint(1, 9))
    for product_id in chosen[5:]:
        account.create_orders(1, rows=[(product_id, rng.randint(1, 3))], allocate=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--idle-cycles", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{CHANGES_PER_CYCLE} stock changes a cycle (5 goods received, 5 allocations), {args.cycles} cycles each\n")
    print(f"{'catalogue':>10}  {'requests/cycle':>14}  {'full scan':>9}  {'ratio':>7}  {'stock events':>12}  by route")
    for size in (int(s) for s in args.sizes.split(",")):
        per_cycle, by_route, full_scan, events = await measure(size, args.cycles, rng)
        routes = ", ".join(f"{route} {count / args.cycles:g}" for route, count in sorted(by_route.items()))
        print(
            f"{size:>10,}  {per_cycle:>14.1f}  {full_scan:>9,}  {full_scan / per_cycle:>6.0f}x  {events:>12}  {routes}"
        )
    idle = await measure_idle(args.idle_cycles)
    per_idle_cycle = sum(idle.values()) / args.idle_cycles
    print(f"\none idle cycle of all five resources ({args.idle_cycles} cycles): {per_idle_cycle:g} requests")
    for route, count in sorted(idle.items()):
        print(f"  {route:<48} {count / args.idle_cycles:g}")
    asked: dict[str, float] = dict.fromkeys(RESOURCES, 5.0)
    per_minute = requests_per_minute(0.5)
    effective = effective_intervals(asked, per_minute)
    print(f"\neffective intervals at the defaults (poll_interval_s 5, {per_minute} requests a minute):")
    for resource, interval in effective.items():
        print(f"  {resource:<16} {interval:g} s")
    for warning in interval_warnings(asked, effective, per_minute):
        print(f"  warning: {warning}")


if __name__ == "__main__":
    asyncio.run(main())
