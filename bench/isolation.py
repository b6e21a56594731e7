"""Delivery isolation: healthy subscribers' delivery latency, alone and beside a subscriber that hangs and one that
fails every request.

    .venv/bin/python bench/isolation.py [--healthy 20] [--events 1000] [--rate 100] [--timeout-s 5]
        [--max-in-flight 256] [--per-subscription 32] [--faulty hanging,failing] [--backlog 10000]

Scenarios, one after the other in one run, each on an emptied Redis database with a fresh dispatcher:

- A: ``--healthy`` subscribers that answer 204 at once;
- B: the same, plus one subscriber that never answers (each attempt ends at the delivery timeout) and one that
  answers 500 to everything (``--faulty`` chooses which of the two join);
- C: B, with ``--backlog`` deliveries already waiting for the hanging subscriber when the stream starts, as
  after it has hung for a few minutes (``--backlog 0`` leaves C out);
- D: A beside a hostile tenant: another account with ``--attackers`` subscriptions, each to its own receiver that
  hangs (one origin each), each with a 300 s timeout and a concurrency cap of 1,000, and ``--attack`` deliveries
  for them committed in the first 2 s (as the issue's 560 test pings in 2 s); the account cap
  (``--per-account``, ``RELAY_ACCOUNT_MAX_IN_FLIGHT``) is what keeps the healthy account's slots free;
- E: D without the account cap (``--per-account`` as large as ``--max-in-flight``), to show what it prevents
  (``--attack 0`` leaves D and E out).

Events of about 3.8 KB (an order's size) are committed at a steady ``--rate`` through ``DeliveryQueue.commit``, each
fanned out to every subscription, and the real :class:`Dispatcher` sends them (the committing process wakes it,
as the poller does). Latency is, for healthy subscribers only, first arrival at the receiver minus the moment the
commit began; events of the first ``--warmup-s`` are sent but not counted (connections being opened). ``commit
lag`` is how far the committing loop fell behind its schedule: large means the process ran out of CPU, and the
latencies then understate. ``claims/attempt`` is deliveries claimed from the due set per attempt made: above 1,
claims handed back because a subscriber was at its limit.

The receivers run in a child process (``bench/isolation_receivers.py``), one loopback port each, so they
take no CPU from the dispatcher's event loop; both processes read ``time.monotonic()``, one system-wide clock on
Linux. Redis is the real server (127.0.0.1:6379), not the embedded fakeredis: fakeredis would run every claim
and Lua call inside the dispatcher's own event loop and charge its CPU to the latency measured, and it would
not show the Redis round trips a real deployment pays. The benchmark takes an empty database (1-15) the way
the tests do, claims it with a marker key, and empties only that one afterwards.
"""

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.isolation_receivers import CONTROL, FAILING, HANGING, receivers
from bench.rig import claimed_database, clear_keeping_claim
from bench.world import percentile
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import DeliveryRecord, SubscriptionRecord
from subscriptions.core.retry import DEFAULT_RETRY_SCHEDULE_S
from subscriptions.core.signing import new_secret
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.dispatcher import DeliveryPolicy, Dispatcher
from workers.metrics import Metrics
from workers.sender import delivery_session


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- the scenarios -------------------------------------------------------------------------------------------


@dataclass
class Figures:
    latencies_ms: list[float]
    expected: int
    duplicates: int
    late_commits_ms: float  # how far behind its schedule the committing loop fell at worst
    hanging_requests: int
    hanging_max_open: int
    failing_requests: int
    claimed: int  # deliveries the dispatcher claimed from the due set
    attempts: int  # attempts it made


def order_body(n: int) -> str:
    """An ``order.created`` webhook about the size of a real one (an order's JSON is about 3.7 KB)."""
    rows = {
        str(100 + i): {
            "productId": 1000 + i,
            "productName": f"Stainless widget, size {i}, finished in brushed steel",
            "productSku": f"WID-{i:04d}",
            "quantity": {"magnitude": str(i + 1)},
            "itemCost": {"currencyCode": "GBP", "value": "12.50"},
            "rowValue": {"taxCode": "T20", "rowNet": {"value": "12.50"}, "rowTax": {"value": "2.50"}},
            "nominalCode": "4000",
        }
        for i in range(12)
    }
    order = {"id": n, "orderTypeCode": "SO", "reference": f"PO-{n}", "orderStatus": {"orderStatusId": 1}}
    data = {"accountCode": "acme", "resourceType": "order", "id": n, "lifecycleEvent": "created"}
    return event_body("order.created", "2026-11-26T10:00:00Z", {**data, "resource": {**order, "orderRows": rows}})


async def subscribe(store: Store, name: str, port: int, account: str = "acme", **options: Any) -> SubscriptionRecord:
    sub = SubscriptionRecord(
        id=f"sub_{name}",
        account=account,
        url=f"http://127.0.0.1:{port}/{name}",
        events=["*"],
        secret=new_secret(),
        created_at=utc_now(),
        updated_at=utc_now(),
        **options,
    )
    await store.create_subscription(sub)
    return sub


async def control(http: aiohttp.ClientSession, port: int, method: str, **query: str) -> Any:
    async with http.request(method, f"http://127.0.0.1:{port}/{CONTROL}", params=query) as response:
        response.raise_for_status()
        return await response.json() if response.status == 200 else None


def count_claims(queue: DeliveryQueue) -> list[int]:
    """Count the deliveries claimed from ``queue``'s due set: a claim given back because its subscriber was at
    its cap costs Redis reads and writes without sending anything."""
    claimed = [0]
    claim = queue.claim

    async def counting(**kwargs: Any) -> list[tuple[str, DeliveryRecord | None]]:
        found = await claim(**kwargs)
        claimed[0] += len(found)
        return found

    queue.claim = counting  # type: ignore[method-assign]
    return claimed


@dataclass(frozen=True)
class Scenario:
    label: str
    faulty: tuple[str, ...]  # who joins the healthy subscribers: HANGING, FAILING
    backlog: int  # deliveries already waiting for the hanging subscriber when the stream starts
    attack: int = 0  # deliveries for another account's hanging subscribers, committed in the first 2 s
    per_account: int | None = None  # the account cap; None: --per-account


async def run_scenario(redis: Redis, ports: dict[str, int], scenario: Scenario, args: argparse.Namespace) -> Figures:
    await clear_keeping_claim(redis)
    store, queue = Store(redis), DeliveryQueue(redis)
    subs, attackers = await arrange(store, queue, ports, scenario, args)
    policy = DeliveryPolicy(
        retry_schedule_s=DEFAULT_RETRY_SCHEDULE_S,
        timeout_s=args.timeout_s,
        max_in_flight=args.max_in_flight,
        per_subscription=args.per_subscription,
        per_account=scenario.per_account or args.per_account,
        allow_private_targets=True,
    )
    async with aiohttp.ClientSession() as http:
        await control(http, ports[CONTROL], "DELETE")
        session = delivery_session(allow_private=True)
        metrics = Metrics()
        dispatcher = Dispatcher(store, queue, session, policy, metrics, clock=utc_now)
        claimed = count_claims(queue)
        running = asyncio.create_task(dispatcher.run())
        stream = Stream(queue, dispatcher)
        try:
            if attackers:  # the hostile tenant goes first: its burst is under way when the stream starts
                await stream.attack(attackers, scenario.attack)
            await stream.run(subs, args.events, args.rate)
            deadline = time.monotonic() + args.settle_s
            while time.monotonic() < deadline:
                if (await control(http, ports[CONTROL], "GET", count="1"))["arrivals"] >= args.healthy * args.events:
                    break
                await asyncio.sleep(0.1)
        finally:
            await dispatcher.stop(drain_s=0)  # the hanging attempts are cut off, not waited for
            await running
            await session.close()
        seen = await control(http, ports[CONTROL], "GET")
    return figures_of(seen, stream, metrics, claimed[0], args)


async def arrange(
    store: Store, queue: DeliveryQueue, ports: dict[str, int], scenario: Scenario, args: argparse.Namespace
) -> tuple[list[SubscriptionRecord], list[SubscriptionRecord]]:
    """The scenario's subscriptions (the healthy and faulty ones, and the hostile account's), with the backlog
    already waiting for the hanging one."""
    names = [f"healthy-{i}" for i in range(args.healthy)] + list(scenario.faulty)
    subs = [await subscribe(store, name, ports[name]) for name in names]
    hanging = [sub for sub in subs if sub.id == f"sub_{HANGING}"]
    attackers = [
        await subscribe(store, f"{HANGING}-{i}", ports[f"{HANGING}-{i}"], "evil", timeout_s=300, max_concurrency=1000)
        for i in range(args.attackers if scenario.attack else 0)
    ]
    for first in range(0, scenario.backlog if hanging else 0, 500):  # as if it had been hanging a while already
        old = [
            NewEvent(f"old_{n:07d}", "order.created", "acme", n, "2026-11-26T09:00:00Z", order_body(n))
            for n in range(first, min(first + 500, scenario.backlog))
        ]
        await queue.commit(old, hanging, now=utc_now())
    return subs, attackers


class Stream:
    """Commits events and wakes the dispatcher after each commit, as the poller does; remembers when each event's
    commit began and how far the loop fell behind its schedule."""

    def __init__(self, queue: DeliveryQueue, dispatcher: Dispatcher) -> None:
        self.queue = queue
        self.dispatcher = dispatcher
        self.committed_at: dict[str, float] = {}  # event id -> time.monotonic() as its commit began
        self.late_s = 0.0

    async def attack(self, attackers: list[SubscriptionRecord], count: int) -> None:
        """``count`` pings for the hostile account's subscriptions, 28 a commit, spread over 2 s."""
        for n in range(0, count, 28):
            burst = [
                NewEvent(f"ping_{i:05d}", "ping", "evil", None, "2026-11-26T10:00:00Z", order_body(i))
                for i in range(n, min(n + 28, count))
            ]
            await self.queue.commit(burst, attackers, now=utc_now())
            self.dispatcher.wake()
            await asyncio.sleep(2 / math.ceil(count / 28))

    async def run(self, subs: list[SubscriptionRecord], events: int, rate: float) -> None:
        """``events`` events at ``rate`` a second, one a commit, each to every one of ``subs``."""
        start = time.monotonic()
        for n in range(events):
            scheduled = start + n / rate
            delay_s = scheduled - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            self.late_s = max(self.late_s, time.monotonic() - scheduled)
            event_id = f"evt_{n:06d}"
            event = NewEvent(event_id, "order.created", "acme", n, "2026-11-26T10:00:00Z", order_body(n))
            self.committed_at[event_id] = time.monotonic()
            await self.queue.commit([event], subs, now=utc_now())
            self.dispatcher.wake()  # as the poller does after committing


def figures_of(
    seen: dict[str, Any], stream: Stream, metrics: Metrics, claimed: int, args: argparse.Namespace
) -> Figures:
    """The scenario's figures from what the receivers saw (``seen``), the stream and the dispatcher's metrics."""
    counted_from = math.ceil(args.warmup_s * args.rate)
    latencies_ms = [
        (arrived - stream.committed_at[event_id]) * 1000
        for key, arrived in seen["arrivals"].items()
        for event_id in [key.split(" ", 1)[1]]
        if event_id.startswith("evt_") and int(event_id.removeprefix("evt_")) >= counted_from
    ]
    attempts = sum(
        metrics.registry.get_sample_value("relay_delivery_attempts_total", {"outcome": outcome}) or 0
        for outcome in ("success", "failure")
    )
    return Figures(
        latencies_ms,
        args.healthy * (args.events - counted_from),
        seen["duplicates"],
        stream.late_s * 1000,
        seen["hanging_requests"],
        seen["hanging_max_open"],
        seen["failing_requests"],
        claimed,
        int(attempts),
    )


def row(label: str, figures: Figures) -> str:
    lat = figures.latencies_ms
    arrived = f"{len(lat):,}/{figures.expected:,}"
    cells = "".join(f"{percentile(lat, p):>9.1f}" for p in (50, 95, 99, 100))
    per_attempt = figures.claimed / max(figures.attempts, 1)
    return f"{label:<38}{arrived:>15}{cells}{figures.late_commits_ms:>15.1f}{per_attempt:>16.1f}"


def arguments() -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=int, default=20, help="healthy subscribers")
    parser.add_argument("--events", type=int, default=1000, help="events committed in each scenario")
    parser.add_argument("--rate", type=float, default=100.0, help="events committed a second")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="the delivery timeout")
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--per-subscription", type=int, default=32)
    parser.add_argument("--per-account", type=int, default=None, help="the account cap (default max-in-flight / 4)")
    parser.add_argument("--attackers", type=int, default=8, help="D, E: the hostile account's hanging subscribers")
    parser.add_argument("--attack", type=int, default=560, help="D, E: deliveries for them, in the first 2 s")
    parser.add_argument("--faulty", default=f"{HANGING},{FAILING}", help="who joins in B and C")
    parser.add_argument("--backlog", type=int, default=10_000, help="C: deliveries already waiting for the hanging one")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="events of the first seconds are not counted")
    parser.add_argument("--settle-s", type=float, default=15.0, help="the longest wait for the last arrivals")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    return parser, parser.parse_args()


def scenarios_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Scenario]:
    """The scenarios the options ask for, A first (the baseline); sets ``args.per_account`` to its default."""
    faulty = tuple(name for name in args.faulty.split(",") if name)
    if set(faulty) - {HANGING, FAILING}:
        parser.error(f"--faulty: choose among {HANGING},{FAILING}")
    joined = " + ".join(faulty) or "nobody"
    scenarios = [Scenario("A  healthy only", (), 0), Scenario(f"B  + {joined}", faulty, 0)]
    if args.backlog and HANGING in faulty:
        scenarios.append(Scenario(f"C  B, {args.backlog:,} waiting for hanging", faulty, args.backlog))
    args.per_account = args.per_account or max(1, args.max_in_flight // 4)
    if args.attack:
        hostile = f"{args.attackers} hanging of another account"
        scenarios.append(Scenario(f"D  A + {hostile}", (), 0, args.attack))
        scenarios.append(Scenario("E  D, no account cap", (), 0, args.attack, per_account=args.max_in_flight))
    return scenarios


async def main() -> None:
    parser, args = arguments()
    scenarios = scenarios_of(parser, args)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"{args.healthy} healthy subscribers, {args.events:,} events at {args.rate:g}/s, each to every subscription "
        f"({args.healthy * args.rate:,.0f} healthy deliveries/s); timeout {args.timeout_s:g} s, "
        f"max_in_flight {args.max_in_flight}, per_subscription {args.per_subscription}, "
        f"per_account {args.per_account or max(1, args.max_in_flight // 4)}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start"
    )
    hostile = [f"{HANGING}-{i}" for i in range(args.attackers)]
    names = [f"healthy-{i}" for i in range(args.healthy)] + [HANGING, FAILING, *hostile, CONTROL]
    async with claimed_database(args.redis_url) as redis, receivers(len(names)) as listening:
        ports = dict(zip(names, listening, strict=True))
        results = [(scenario, await run_scenario(redis, ports, scenario, args)) for scenario in scenarios]
    print_results(results, args)


def print_results(results: list[tuple[Scenario, Figures]], args: argparse.Namespace) -> None:
    """The table of the scenarios' latencies, each against A's, and what each faulty subscriber went through."""
    heading = "".join(f"{h:>9}" for h in ("p50 ms", "p95 ms", "p99 ms", "max ms"))
    print(f"\n{'healthy subscribers':<38}{'arrived':>15}{heading}{'commit lag ms':>15}{'claims/attempt':>16}")
    for scenario, figures in results:
        print(row(scenario.label, figures))
    baseline = percentile(results[0][1].latencies_ms, 99)
    print(
        "\np99 against A: "
        + ", ".join(f"{s.label[0]} {percentile(f.latencies_ms, 99) / baseline:.2f}x" for s, f in results[1:])
    )
    for scenario, figures in results[1:]:
        print(f"{scenario.label[0]}: {'; '.join(faulty_story(scenario, figures, args))}")
    duplicates = ", ".join(f"{s.label[0]} {f.duplicates}" for s, f in results if f.duplicates)
    if duplicates:
        print(f"duplicates (at-least-once): {duplicates}")


def faulty_story(scenario: Scenario, figures: Figures, args: argparse.Namespace) -> list[str]:
    """What the scenario's hanging, failing and hostile subscribers got."""
    said = []
    if HANGING in scenario.faulty:
        said.append(
            f"the hanging subscriber got {figures.hanging_requests} requests, at most {figures.hanging_max_open} "
            f"open at once (cap {args.per_subscription})"
        )
    if FAILING in scenario.faulty:
        said.append(f"the failing one answered {figures.failing_requests} with 500")
    if scenario.attack:
        cap = scenario.per_account or args.per_account
        said.append(
            f"the other account's hanging receivers got {figures.hanging_requests} requests, at most "
            f"{figures.hanging_max_open} open at once (account cap {cap}); the healthy account's p99 "
            f"{percentile(figures.latencies_ms, 99):,.0f} ms, {len(figures.latencies_ms):,} of "
            f"{figures.expected:,} arrived"
        )
    return said


if __name__ == "__main__":
    asyncio.run(main())
