"""Fan-out: one event committed to 1,000 subscriptions, until the last webhook has arrived.

    .venv/bin/python bench/fanout.py [--subscriptions 1000] [--repeats 5] [--receivers 4] [--max-in-flight 256]

``--subscriptions`` subscriptions of one account (``Store.create_subscription`` into an empty Redis database of
the benchmark's own), their URLs spread over ``--receivers`` ports of one timed receiver process
(``bench/timed_receiver.py``: it records when each request arrived); one ``relay worker`` process
(``bench.rig.worker``, ``--max-in-flight`` attempts at a time). Each repetition commits ONE ``order.created`` event
carrying a real recorded order (about 3 KB) through ``DeliveryQueue.commit`` to every subscription, as a poll commits
it, and measures from the start of the commit: the commit itself, the first and the last arrival at the receiver
(``time.monotonic()``, one clock for both processes on Linux), and when Redis showed every delivery
``succeeded`` (checked every 5 ms). The worker idles between repetitions: it finds the deliveries by polling the
due set (every 0.1 s when idle), not by being woken, as when another process commits.

*Baseline*, measured first in the same run: this process POSTs the same body to the same 1,000 URLs with one
aiohttp session, ``--max-in-flight`` at a time, unsigned and unrecorded: the floor the receiver and the machine
set.
"""

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile import sampling, summary
from bench.rig import peak_rss_mb, redis_database, worker
from bench.world import (
    ENCRYPTION_KEY,
    TimedReceivers,
    command_line,
    markdown_table,
    order_event,
    recorded_order,
    subscription,
    wait_until,
)
from subscriptions.core.models import SubscriptionRecord
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store

TARGET_S = 1.0


async def baseline(urls: list[str], body: bytes, concurrency: int) -> float:
    """Seconds for one aiohttp session to POST ``body`` once to every URL, ``concurrency`` at a time."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = list(urls)

        async def loop() -> None:
            while queue:
                async with session.post(queue.pop(), data=body) as answer:
                    await answer.read()

        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return time.monotonic() - started


@dataclass
class Repetition:
    commit_s: float
    first_s: float  # first arrival, from the start of the commit
    last_s: float  # last arrival
    succeeded_s: float  # Redis showed every delivery succeeded
    arrived: int  # distinct URLs reached
    duplicates: int


async def one_event(
    queue: DeliveryQueue,
    redis: Redis,
    receivers: TimedReceivers,
    http: aiohttp.ClientSession,
    n: int,
    subs: list[SubscriptionRecord],
) -> Repetition:
    """Commit event ``n`` to every subscription and time it until every delivery arrived and succeeded."""
    await receivers.forget(http)
    event = order_event(n, recorded_order())
    already = await redis.zcard(keyspace.status_deliveries("succeeded"))
    started = time.monotonic()
    created = await queue.commit([event], subs, now=datetime.now(UTC))
    committed = time.monotonic()
    assert len(created) == len(subs)

    async def all_succeeded() -> bool:
        return bool(await redis.zcard(keyspace.status_deliveries("succeeded")) >= already + len(subs))

    if not await wait_until(all_succeeded, timeout_s=60, every_s=0.005):
        raise SystemExit(f"event {n}: not every delivery succeeded within 60 s")
    done = time.monotonic()
    mine = [a for a in await receivers.arrivals(http) if a[2] == event.id]  # all answered: all recorded
    times = [a[0] for a in mine]
    paths = {a[1] for a in mine}
    spread = (min(times) - started, max(times) - started)
    return Repetition(committed - started, *spread, done - started, len(paths), len(mine) - len(paths))


async def measure(args: argparse.Namespace) -> tuple[float, list[Repetition], float]:
    """The baseline's seconds, each repetition, and the worker's peak RSS in MB."""
    rng = random.Random(args.seed)
    with TimedReceivers(args.receivers) as receivers, redis_database() as redis_url:
        bases = receivers.urls("")
        urls = [f"{bases[n % len(bases)]}/sub/{n}" for n in range(args.subscriptions)]
        async with aiohttp.ClientSession() as http:
            body = order_event(0, recorded_order()).body.encode()
            await baseline(urls, body, args.max_in_flight)  # warm the receiver up
            bare_s = min([await baseline(urls, body, args.max_in_flight) for _ in range(3)])
            redis = Redis.from_url(redis_url, decode_responses=True)
            store, queue = Store(redis), DeliveryQueue(redis)
            now = datetime.now(UTC)
            subs = [subscription(n, url, now) for n, url in enumerate(urls)]
            for sub in subs:
                await store.create_subscription(sub)
            repetitions = []
            try:
                settings = {"max_in_flight": str(args.max_in_flight), "encryption_key": ENCRYPTION_KEY}
                if args.account_max_in_flight:
                    settings["account_max_in_flight"] = str(args.account_max_in_flight)
                async with worker(redis_url, **settings) as child:
                    await asyncio.sleep(1.0)  # the worker is up and idle
                    profiling = sampling(child.pid, args.profile) if args.profile else contextlib.nullcontext()
                    with profiling:
                        for n in range(1, args.repeats + 1):
                            await asyncio.sleep(rng.uniform(0.3, 0.8))  # any phase of the worker's idle polling
                            repetitions.append(await one_event(queue, redis, receivers, http, n, subs))
                    rss = peak_rss_mb(child.pid)
            finally:
                await redis.aclose()
    return bare_s, repetitions, rss


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--receivers", type=int, default=4, help="receiver ports the URLs are spread over")
    parser.add_argument("--max-in-flight", type=int, default=256, help="RELAY_MAX_IN_FLIGHT of the worker")
    parser.add_argument(
        "--account-max-in-flight",
        type=int,
        help="RELAY_ACCOUNT_MAX_IN_FLIGHT of the worker (default the relay's: a quarter of --max-in-flight); every "
        "subscription here is one account's",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="sample the worker with py-spy into this file while it delivers")
    args = parser.parse_args()
    count = args.subscriptions
    bare_s, reps, rss = await measure(args)

    def ms(value: float) -> str:
        return f"{value * 1000:.0f}"

    rows: list[list[object]] = [
        [i, ms(r.commit_s), ms(r.first_s), ms(r.last_s), ms(r.succeeded_s), f"{r.arrived}/{count}"]
        for i, r in enumerate(reps, 1)
    ]
    median = {name: statistics.median(getattr(r, name) for r in reps) for name in ("commit_s", "first_s", "last_s")}
    median["succeeded_s"] = statistics.median(r.succeeded_s for r in reps)
    rows.append(["median", *(ms(median[n]) for n in ("commit_s", "first_s", "last_s", "succeeded_s")), ""])
    headers = ["run", "commit ms", "first arrival ms", "last arrival ms", "all succeeded in Redis ms", "arrived"]
    print(f"\n{command_line('fanout.py', args)}")
    print(markdown_table(headers, rows))
    relay_rate = count / (median["last_s"] - median["first_s"])
    print(
        f"baseline: bare aiohttp POSTs to the same {count} URLs, {args.max_in_flight} at a time: {ms(bare_s)} ms"
        f" ({count / bare_s:,.0f}/s); the relay, first to last arrival: {relay_rate:,.0f}/s"
        f" (ratio {relay_rate / (count / bare_s):.2f})"
    )
    worst = max(r.last_s for r in reps)
    verdict = "met" if worst <= TARGET_S else ("met by the median" if median["last_s"] <= TARGET_S else "missed")
    print(
        f"target: last arrival within {TARGET_S:g} s of the commit: {verdict} (median {ms(median['last_s'])} ms,"
        f" worst {ms(worst)} ms); duplicates {sum(r.duplicates for r in reps)}; worker peak RSS {rss:.0f} MB"
    )
    print(
        json.dumps(
            {
                "subscriptions": count,
                "median_commit_ms": round(median["commit_s"] * 1000),
                "median_first_arrival_ms": round(median["first_s"] * 1000),
                "median_last_arrival_ms": round(median["last_s"] * 1000),
                "worst_last_arrival_ms": round(worst * 1000),
                "median_all_succeeded_ms": round(median["succeeded_s"] * 1000),
                "baseline_ms": round(bare_s * 1000),
                "worker_peak_rss_mb": round(rss),
            }
        )
    )
    if args.profile:
        print(summary(args.profile))


if __name__ == "__main__":
    asyncio.run(main())
