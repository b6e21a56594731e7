"""Change-to-arrival for every resource, with Brightpearl's webhooks as hints and with polling alone, in one run.

    .venv/bin/python bench/latency.py --hints [--duration-s 150] [--rate-per-s 0.5] [--idle-s 60]
        [--safety-poll-s 60] [--poll-interval-s 5] [--budget-share 0.5] [--seed 1]

Two runs, each on a fresh sandbox (in this process, one account, its real throttle) and a fresh Redis database,
with ``relay run`` as a child process and a receiver (``bench/timed_receiver.create_app``) in this process:

- **hints**: the relay's ``RELAY_PUBLIC_URL`` is its own loopback URL, so the account is registered with
  ``hints`` on and ``safety_poll_interval_s`` ``--safety-poll-s``; the sandbox fires its thin webhooks there.
- **polling**: no public URL, so no hints; every resource at ``--poll-interval-s`` (the default interval, 5 s).

Each run registers the account (every resource) with one subscription per kind of change, each at its own path
of the receiver; waits until the account has polled (and, with hints, subscribed); counts the Brightpearl requests
of ``--idle-s`` without any change (requests a minute on an idle account); then makes changes at random moments
(a Poisson stream of ``--rate-per-s``) through the sandbox's control API, one kind after the other: an order
created, an order's status changed, stock received, a goods-out note's stage reached, a product edited. Once they
have arrived, a burst: 50 orders 0.2 s apart (an import, a flash sale), then one stock change. Latency is the
webhook's arrival minus the moment the change was sent (both ``time.monotonic()`` in this process).
"""

import argparse
import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bench.rig import free_port, redis_database
from bench.timed_receiver import Arrival, create_app
from bench.world import TOKEN, markdown_table, percentile, relay_process, wait_until
from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import SandboxServer, start_sandbox
from relay.sandbox.request_log import RequestLog

ACCOUNT = "acme"
WAREHOUSE = 2
POOL = 200  # records of each kind made before registration, each changed at most once


@dataclass(frozen=True)
class Kind:
    """One kind of change: its name, the event its webhook carries, and how many records to prepare for it."""

    name: str
    resource: str  # the account's resource it belongs to
    event: str


KINDS = (
    Kind("order created", "orders", "order.created"),
    Kind("order status", "orders", "order.modified.order-status"),
    Kind("stock", "stock", "product.modified.on-hand-modified"),
    Kind("goods-out stage", "goods-out-notes", "goods-out-note.modified.printed"),
    Kind("product edit", "products", "product.modified"),
)
NAMES = [*(kind.name for kind in KINDS), "order burst", "stock after burst"]
BURST = 50  # orders made BURST_GAP_S apart once the mixed changes have arrived, then one stock change
BURST_GAP_S = 0.2


@dataclass
class Run:
    mode: str
    made: dict[tuple[str, int], float]  # (kind, resource id) -> when the change was sent
    arrived: dict[tuple[str, int], float]  # (kind, resource id) -> first arrival
    duplicates: int
    idle_requests_per_min: float
    busy_requests_per_min: float
    account: dict[str, Any]

    def latencies_s(self, kind: str) -> list[float]:
        return [self.arrived[key] - sent for key, sent in self.made.items() if key[0] == kind and key in self.arrived]


async def api(http: aiohttp.ClientSession, relay_url: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.request(method, relay_url + path, json=body, headers=headers) as answer:
        payload = await answer.json(content_type=None)
        if answer.status >= 300:
            raise SystemExit(f"{method} {path}: {answer.status} {payload}")
        return payload


async def control(http: aiohttp.ClientSession, sandbox: SandboxServer, method: str, path: str, body: Any) -> Any:
    url = f"{sandbox.control_url}/accounts/{ACCOUNT}{path}"
    async with http.request(method, url, json=body) as answer:
        payload = await answer.json(content_type=None)
        if answer.status >= 300:
            raise SystemExit(f"sandbox {method} {path}: {answer.status} {payload}")
        return payload


@dataclass
class Pools:
    """The records each kind of change uses, one change each."""

    orders: list[int]  # orders whose status changes
    stock_products: list[int]
    notes: list[int]
    edited_products: list[int]


async def prepare(http: aiohttp.ClientSession, sandbox: SandboxServer) -> Pools:
    """Products with stock, orders and goods-out notes made before the account is registered (its baseline). The
    orders whose status changes are made after (:func:`seen_orders`): a status change shows as one only against an
    order the relay has seen (a change to an order it never saw is ``order.modified`` with ``changes`` null)."""
    stock = await control(http, sandbox, "POST", "/products", {"count": POOL, "stock": {str(WAREHOUSE): 1000}})
    edited = await control(http, sandbox, "POST", "/products", {"count": POOL, "stock_tracked": False})
    rows = [{"product_id": stock["ids"][0], "quantity": 1}]
    orders = await control(http, sandbox, "POST", "/orders", {"count": POOL, "rows": rows})
    notes = [
        (await control(http, sandbox, "POST", f"/orders/{order_id}/goods-out-notes", {}))["id"]
        for order_id in orders["ids"]
    ]
    return Pools([], stock["ids"][1:], notes, edited["ids"])


async def seen_orders(http: aiohttp.ClientSession, sandbox: SandboxServer, pools: Pools) -> None:
    """Orders made once the account is registered, so that the relay has seen each before its status changes."""
    pools.orders = list((await control(http, sandbox, "POST", "/orders", {"count": POOL}))["ids"])


async def change(http: aiohttp.ClientSession, sandbox: SandboxServer, kind: Kind, pools: Pools) -> int:
    """Make one change of ``kind``; the id of the resource its webhook names."""
    if kind.name == "order created":
        (order_id,) = (await control(http, sandbox, "POST", "/orders", {"count": 1}))["ids"]
        return int(order_id)
    if kind.name == "order status":
        order_id = pools.orders.pop()
        await control(http, sandbox, "PUT", f"/orders/{order_id}/status", {"status_id": 4})
        return order_id
    if kind.name == "stock":
        product_id = pools.stock_products.pop()
        body = {"product_id": product_id, "warehouse_id": WAREHOUSE, "quantity": 5}
        await control(http, sandbox, "POST", "/stock/receive", body)
        return product_id
    if kind.name == "goods-out stage":
        note_id = pools.notes.pop()
        await control(http, sandbox, "POST", f"/goods-out-notes/{note_id}/stage", {"stage": "printed"})
        return int(note_id)
    product_id = pools.edited_products.pop()
    await control(http, sandbox, "PATCH", f"/products/{product_id}", {"name": f"Edited {product_id}"})
    return product_id


async def make_changes(
    http: aiohttp.ClientSession, sandbox: SandboxServer, pools: Pools, args: argparse.Namespace
) -> dict[tuple[str, int], float]:
    """Changes at the moments of a Poisson stream, the kinds in turn; when each was sent."""
    made: dict[tuple[str, int], float] = {}
    rng, rate, duration_s = random.Random(args.seed), args.rate_per_s, args.duration_s
    kinds = itertools.cycle(KINDS)
    started = time.monotonic()
    next_at = started + rng.expovariate(rate)
    while next_at < started + duration_s:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        kind = next(kinds)
        sent = time.monotonic()
        made[(kind.name, await change(http, sandbox, kind, pools))] = sent
        next_at += rng.expovariate(rate)
    return made


async def make_burst(http: aiohttp.ClientSession, sandbox: SandboxServer, pools: Pools) -> dict[tuple[str, int], float]:
    """:data:`BURST` orders, :data:`BURST_GAP_S` apart (an import, a sale), then one stock change: "order burst"
    and "stock after burst" in the tables."""
    made: dict[tuple[str, int], float] = {}
    for _ in range(BURST):
        sent = time.monotonic()
        (order_id,) = (await control(http, sandbox, "POST", "/orders", {"count": 1}))["ids"]
        made[("order burst", int(order_id))] = sent
        await asyncio.sleep(max(0.0, sent + BURST_GAP_S - time.monotonic()))
    sent = time.monotonic()
    made[("stock after burst", await change(http, sandbox, KINDS[2], pools))] = sent
    return made


def arrivals_by_change(arrivals: Sequence[Arrival]) -> tuple[dict[tuple[str, int], float], int]:
    """The first arrival of each (kind, resource id), and how many arrived again (a second delivery of one event)."""
    names = {f"/k/{index}": kind.name for index, kind in enumerate(KINDS)}
    aliases = {"order created": "order burst", "stock": "stock after burst"}  # the same events, in the burst
    first: dict[tuple[str, int], float] = {}
    ids: Counter[str] = Counter()
    for when, path, webhook_id, resource_id in arrivals:
        ids[webhook_id] += 1
        name = names.get(path, path)
        first.setdefault((name, int(resource_id)), when)
        if name in aliases:
            first.setdefault((aliases[name], int(resource_id)), when)
    return first, sum(count - 1 for count in ids.values())


def requests_per_min(log: RequestLog, since: int, seconds: float) -> float:
    return (log.total - since) * 60 / seconds


async def one_run(args: argparse.Namespace, mode: str) -> Run:
    log = RequestLog()
    sandbox = await start_sandbox(accounts=[SandboxAccount(ACCOUNT, requests=log)])
    arrivals: list[Arrival] = []
    receiver = web.AppRunner(create_app(arrivals), access_log=None)
    await receiver.setup()
    receiver_port = free_port()
    await web.TCPSite(receiver, "127.0.0.1", receiver_port).start()
    relay_port = free_port()
    settings = {"budget_share": str(args.budget_share)}
    if mode == "hints":
        settings["public_url"] = f"http://127.0.0.1:{relay_port}"
    try:
        with redis_database() as redis_url, relay_process("run", redis_url, port=relay_port, **settings) as relay:
            async with aiohttp.ClientSession() as http:
                pools = await prepare(http, sandbox)
                account = sandbox.account(ACCOUNT)
                registration: dict[str, Any] = {
                    "code": ACCOUNT,
                    "base_url": sandbox.base_url(ACCOUNT),
                    "app_ref": account.app_ref,
                    "account_token": account.account_token,
                    "poll_interval_s": args.poll_interval_s,
                }
                if mode == "hints":
                    registration["safety_poll_interval_s"] = args.safety_poll_s
                await api(http, relay.url, "POST", "/v1/accounts", registration)
                for index, kind in enumerate(KINDS):
                    url = f"http://127.0.0.1:{receiver_port}/k/{index}"
                    subscription = {"account": ACCOUNT, "url": url, "events": [kind.event]}
                    await api(http, relay.url, "POST", "/v1/subscriptions", subscription)
                await seen_orders(http, sandbox, pools)
                await asyncio.sleep(args.warmup_s)
                since = log.total
                await asyncio.sleep(args.idle_s)
                idle = requests_per_min(log, since, args.idle_s)
                since, started = log.total, time.monotonic()
                made = await make_changes(http, sandbox, pools, args)
                busy = requests_per_min(log, since, time.monotonic() - started)
                await wait_until(lambda: set(made) <= set(arrivals_by_change(arrivals)[0]), timeout_s=120, every_s=0.2)
                burst = await make_burst(http, sandbox, pools)
                await wait_until(lambda: set(burst) <= set(arrivals_by_change(arrivals)[0]), timeout_s=120, every_s=0.2)
                view = await api(http, relay.url, "GET", f"/v1/accounts/{ACCOUNT}")
    finally:
        await receiver.cleanup()
        await sandbox.close()
    arrived, duplicates = arrivals_by_change(arrivals)
    return Run(mode, made | burst, arrived, duplicates, idle, busy, view)


def rows(runs: Sequence[Run]) -> list[list[object]]:
    def ms(value: float) -> str:
        return f"{value * 1000:,.0f}"

    table: list[list[object]] = []
    for run in runs:
        for name in NAMES:
            latencies = run.latencies_s(name)
            sent = sum(1 for key in run.made if key[0] == name)
            table.append(
                [
                    run.mode,
                    name,
                    f"{len(latencies)}/{sent}",
                    ms(percentile(latencies, 50)),
                    ms(percentile(latencies, 95)),
                    ms(percentile(latencies, 99)),
                    ms(max(latencies, default=float("nan"))),
                ]
            )
    return table


def rounded_ms(values: list[float], p: float) -> int | None:
    return round(percentile(values, p) * 1000) if values else None


def summary(run: Run) -> dict[str, Any]:
    return {
        "idle_requests_per_min": round(run.idle_requests_per_min, 1),
        "busy_requests_per_min": round(run.busy_requests_per_min, 1),
        "duplicates": run.duplicates,
        **{
            name: {
                "p50_ms": rounded_ms(run.latencies_s(name), 50),
                "p95_ms": rounded_ms(run.latencies_s(name), 95),
                "p99_ms": rounded_ms(run.latencies_s(name), 99),
                "arrived": len(run.latencies_s(name)),
            }
            for name in NAMES
        },
    }


async def compare(args: argparse.Namespace, print_line: Callable[[str], None] = print) -> None:
    """Both runs, then the tables and one JSON line."""
    runs = [await one_run(args, "hints"), await one_run(args, "polling")]
    headers = ["mode", "change", "arrived", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    print_line(markdown_table(headers, rows(runs)))
    costs = [
        [run.mode, f"{run.idle_requests_per_min:.1f}", f"{run.busy_requests_per_min:.1f}", run.duplicates]
        for run in runs
    ]
    print_line(markdown_table(["mode", "idle requests/min", "requests/min with changes", "duplicates"], costs))
    hints = runs[0].account["status"].get("hints")
    print_line(f"hints as the account shows them: {json.dumps(hints)}")
    for run in runs:
        intervals = {
            resource: f"{lane['poll_interval_s']:g} → {lane['effective_poll_interval_s']:g}"
            for resource, lane in run.account["status"]["resources"].items()
        }
        print_line(f"{run.mode}: poll intervals, asked → effective (s): {intervals}")
    print_line(json.dumps({run.mode: summary(run) for run in runs}))
