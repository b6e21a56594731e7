"""Change-to-arrival latency: an order made in the Brightpearl sandbox until its webhook reaches the receiver.

    .venv/bin/python bench/latency.py [--duration-s 60] [--rate-per-s 0.5] [--poll-interval-s 1]
        [--budget-share 0.5] [--fallback-share 1.0] [--warmup-s 5] [--seed 1] [--quick]
    .venv/bin/python bench/latency.py --hints [--idle-s 60] [--safety-poll-s 60]  (every resource: see
        bench/resource_latency.py)

In this process: the sandbox (``start_sandbox``, one account, its real 200-a-minute throttle) and a receiver
(``bench/timed_receiver.create_app``) recording when each ``order.created`` webhook arrived, by the order id in
its body. The relay is ``relay run`` (API and worker in one process) on an empty Redis database of its own. The
account is registered through the API (``resources: ["orders"]``, ``poll_interval_s``) with a subscription to
``order.created`` at the receiver; after ``--warmup-s``, orders are made through the sandbox's control API at
random moments (a Poisson stream of ``--rate-per-s``) for ``--duration-s``. Latency is arrival minus the moment
the control request was sent (both ``time.monotonic()`` in this process). It is split in two: the wait for the
next poll (from the change to the first ``order-search`` the sandbox answered after it) and the rest (that
search, the GET, the commit, the dispatch and the POST).

The run uses ``--budget-share`` (RELAY_BUDGET_SHARE, default 0.5 as in production). If the budget stretched the
orders' effective poll interval beyond the one asked for, it says so and runs again with ``--fallback-share``
(``0`` for none), each run on a fresh sandbox and database, and prints both rows.
"""

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import resource_latency
from bench.rig import free_port, peak_rss_mb, redis_database
from bench.timed_receiver import Arrival, create_app
from bench.world import TOKEN, command_line, markdown_table, percentile, relay_process, wait_until
from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import start_sandbox
from relay.sandbox.request_log import RequestLog

ACCOUNT = "acme"
SEARCH_PATH = "order-service/order-search"


@dataclass
class TimedRequestLog(RequestLog):
    """The sandbox's request log, also keeping when each order search was answered (``time.monotonic()``)."""

    search_times: list[float] = field(default_factory=list)

    def record(self, path: str, route: str | None) -> None:
        super().record(path, route)
        if path == SEARCH_PATH:
            self.search_times.append(time.monotonic())


@dataclass
class Run:
    budget_share: float
    made: dict[int, float]  # order id -> when the control request was sent
    arrived: dict[int, float]  # order id -> first arrival
    duplicates: int
    poll_waits_s: list[float]  # per order: change -> the first order search after it
    after_poll_s: list[float]  # per order: that search -> arrival (search, GET, commit, dispatch, POST)
    account: dict[str, Any]  # GET /v1/accounts/{code}
    poll_gaps_s: list[float]  # between polls, as the sandbox saw their searches
    by_route: dict[str, int]  # Brightpearl requests while orders were made
    throttled: int
    relay_rss_mb: float

    @property
    def latencies_s(self) -> list[float]:
        return [self.arrived[i] - t for i, t in self.made.items() if i in self.arrived]

    @property
    def orders_status(self) -> dict[str, Any]:
        return dict(self.account["status"]["resources"]["orders"])

    @property
    def effective_interval_s(self) -> float:
        return float(self.orders_status["effective_poll_interval_s"])


async def api(http: aiohttp.ClientSession, relay_url: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.request(method, relay_url + path, json=body, headers=headers) as answer:
        payload = await answer.json(content_type=None)
        if answer.status >= 300:
            raise SystemExit(f"{method} {path}: {answer.status} {payload}")
        return payload


def poll_gaps(search_times: list[float]) -> list[float]:
    """Seconds between polls: a poll makes its order searches within a few ms, polls are far apart."""
    starts = [t for i, t in enumerate(search_times) if i == 0 or t - search_times[i - 1] > 0.1]
    return [b - a for a, b in itertools.pairwise(starts)]


async def make_orders(
    http: aiohttp.ClientSession, control: str, rng: random.Random, rate_per_s: float, duration_s: float
) -> dict[int, float]:
    """Orders made one at a time at the moments of a Poisson stream; when each request was sent, by order id."""
    made: dict[int, float] = {}
    started = time.monotonic()
    next_at = started + rng.expovariate(rate_per_s)
    while next_at < started + duration_s:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        sent = time.monotonic()
        async with http.post(control, json={"count": 1}) as answer:
            (order_id,) = (await answer.json())["ids"]
        made[order_id] = sent
        next_at += rng.expovariate(rate_per_s)
    return made


async def one_run(args: argparse.Namespace, share: float) -> Run:
    log = TimedRequestLog()
    sandbox = await start_sandbox(accounts=[SandboxAccount(ACCOUNT, requests=log)])
    arrivals: list[Arrival] = []
    receiver = web.AppRunner(create_app(arrivals), access_log=None)
    await receiver.setup()
    port = free_port()
    await web.TCPSite(receiver, "127.0.0.1", port).start()
    try:
        with redis_database() as redis_url, relay_process("run", redis_url, budget_share=str(share)) as relay:
            async with aiohttp.ClientSession() as http:
                account = sandbox.account(ACCOUNT)
                registration = {
                    "code": ACCOUNT,
                    "base_url": sandbox.base_url(ACCOUNT),
                    "app_ref": account.app_ref,
                    "account_token": account.account_token,
                    "resources": ["orders"],
                    "poll_interval_s": args.poll_interval_s,
                }
                await api(http, relay.url, "POST", "/v1/accounts", registration)
                subscription = {"account": ACCOUNT, "url": f"http://127.0.0.1:{port}/hook", "events": ["order.created"]}
                await api(http, relay.url, "POST", "/v1/subscriptions", subscription)
                await asyncio.sleep(args.warmup_s)  # the first polls measure what a poll costs
                log.search_times.clear()
                log.reset()
                control = f"{sandbox.control_url}/accounts/{ACCOUNT}/orders"
                made = await make_orders(http, control, random.Random(args.seed), args.rate_per_s, args.duration_s)
                await wait_until(lambda: set(made) <= {a[3] for a in arrivals}, timeout_s=30, every_s=0.1)
                by_route = dict(log.by_route)
                view = await api(http, relay.url, "GET", f"/v1/accounts/{ACCOUNT}")
                rss = peak_rss_mb(relay.pid)
    finally:
        await receiver.cleanup()
        await sandbox.close()
    arrived: dict[int, float] = {}
    duplicates = 0
    for when, _, _, order_id in arrivals:
        if order_id in arrived:
            duplicates += 1
        else:
            arrived[order_id] = when
    searches = log.search_times
    waits, rest = [], []
    for order_id, sent in made.items():
        after = bisect_right(searches, sent)
        if after < len(searches) and order_id in arrived:
            waits.append(searches[after] - sent)
            rest.append(arrived[order_id] - searches[after])
    gaps = poll_gaps(searches)
    return Run(share, made, arrived, duplicates, waits, rest, view, gaps, by_route, log.throttled, rss)


def row(run: Run) -> list[object]:
    latencies = run.latencies_s
    status = run.orders_status

    def ms(value: float) -> str:
        return f"{value * 1000:,.0f}"

    return [
        f"{run.budget_share:g}",
        f"{len(run.arrived)}/{len(run.made)}",
        ms(percentile(latencies, 50)),
        ms(percentile(latencies, 95)),
        ms(percentile(latencies, 99)),
        ms(max(latencies, default=float("nan"))),
        f"{ms(percentile(run.poll_waits_s, 50))} / {ms(percentile(run.poll_waits_s, 99))}",
        f"{ms(percentile(run.after_poll_s, 50))} / {ms(percentile(run.after_poll_s, 99))}",
        f"{ms(percentile(run.poll_gaps_s, 50))} / {ms(max(run.poll_gaps_s, default=float('nan')))}",
        f"{status['poll_interval_s']:g} → {status['effective_poll_interval_s']:g}",
        f"{status['requests_per_poll'] or 0:.2f}",
        f"{run.account['status']['requests_last_minute']}/{run.account['status']['budget_per_minute']}",
        f"{run.relay_rss_mb:.0f}",
    ]


HEADERS = [
    "budget share",
    "arrived",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "wait for poll p50/p99 ms",
    "poll → arrival p50/p99 ms",
    "poll gap p50/max ms",
    "interval s (asked → effective)",
    "req/poll",
    "req last min/budget",
    "relay peak RSS MB",
]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=None, help="how long changes are made (60; --hints 150)")
    parser.add_argument("--rate-per-s", type=float, default=0.5, help="orders a second, on average (Poisson)")
    parser.add_argument(
        "--poll-interval-s", type=float, default=None, help="the account's poll_interval_s (1; with --hints 5)"
    )
    parser.add_argument("--budget-share", type=float, default=0.5, help="RELAY_BUDGET_SHARE of the first run")
    parser.add_argument("--fallback-share", type=float, default=1.0, help="share of the second run (0: none)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="polling before the first order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20 s of orders at 1 a second")
    parser.add_argument(
        "--hints", action="store_true", help="every resource, hints and polling alone (bench/resource_latency.py)"
    )
    parser.add_argument("--idle-s", type=float, default=60.0, help="with --hints: the idle minute measured")
    parser.add_argument("--safety-poll-s", type=float, default=60.0, help="with --hints: safety_poll_interval_s")
    args = parser.parse_args()
    if args.hints:
        args.poll_interval_s = args.poll_interval_s or 5.0
        args.duration_s = args.duration_s or 150.0
        print(f"\n{command_line('latency.py', args)}")
        await resource_latency.compare(args)
        return
    args.poll_interval_s = args.poll_interval_s or 1.0
    args.duration_s = args.duration_s or 60.0
    if args.quick:
        args.duration_s, args.rate_per_s = 20.0, 1.0
    runs = [await one_run(args, args.budget_share)]
    stretched = runs[0].effective_interval_s > args.poll_interval_s
    if stretched and args.fallback_share and args.fallback_share != args.budget_share:
        runs.append(await one_run(args, args.fallback_share))
    target_s = args.poll_interval_s + 0.25
    print(f"\n{command_line('latency.py', args)}")
    print(markdown_table(HEADERS, [row(run) for run in runs]))
    if stretched:
        first = runs[0]
        budget, cost = first.account["status"]["budget_per_minute"], first.orders_status["requests_per_poll"]
        print(
            f"With RELAY_BUDGET_SHARE={first.budget_share:g} ({budget} requests"
            f" a minute, 75 % of it for planned polls) a poll of orders costing {cost}"
            f" requests cannot run every {args.poll_interval_s:g} s: the budget stretched the interval to"
            f" {first.effective_interval_s:g} s."
            + (f" The second row uses RELAY_BUDGET_SHARE={args.fallback_share:g}." if len(runs) > 1 else "")
        )
    for run in runs:
        p99 = percentile(run.latencies_s, 99)
        verdict = "met" if p99 <= target_s else "missed"
        print(
            f"share {run.budget_share:g}: p99 {p99 * 1000:,.0f} ms vs target {target_s * 1000:,.0f} ms (asked interval"
            f" + 250 ms): {verdict}; {len(run.latencies_s)} orders, {run.duplicates} duplicate(s),"
            f" {run.throttled} sandbox throttle(s)"
        )
        polls = len(run.poll_gaps_s) + 1
        routes = ", ".join(f"{route} {count / polls:.2f}" for route, count in sorted(run.by_route.items()))
        print(f"  Brightpearl requests per poll, by route, over {polls} polls: {routes}")
    summary = {
        f"share_{run.budget_share:g}": {
            "orders": len(run.made),
            "arrived": len(run.arrived),
            "p50_ms": round(percentile(run.latencies_s, 50) * 1000),
            "p95_ms": round(percentile(run.latencies_s, 95) * 1000),
            "p99_ms": round(percentile(run.latencies_s, 99) * 1000),
            "max_ms": round(max(run.latencies_s, default=float("nan")) * 1000),
            "effective_interval_s": run.effective_interval_s,
            "requests_per_poll": run.orders_status["requests_per_poll"],
            "relay_peak_rss_mb": round(run.relay_rss_mb),
        }
        for run in runs
    }
    print(json.dumps({"target_p99_ms": round(target_s * 1000), **summary}))


if __name__ == "__main__":
    asyncio.run(main())
