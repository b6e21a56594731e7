"""Delivery throughput: bare aiohttp POSTs against the relay delivering the same number of webhooks, in one run.

    .venv/bin/python bench/throughput.py [--events 20000] [--workers 1] [--repeats 3]

Both send a 1 KB JSON body to the same minimal receiver (``bench/receiver.py``, a process of its own).
*Baseline*: this process POSTs with one aiohttp session, 64 requests at a time.
*Relay*: ``relay worker`` processes deliver the events this process commits through the queue in batches of
500 (as polls would), each event fanned out to one subscription (512 attempts at a time, the default), signed,
POSTed and its attempt recorded in Redis; the clock runs from the first commit until Redis shows every delivery
succeeded. The rate after the last commit (the fan-out done, the worker delivering alone) is shown beside it.
The two take turns, ``--repeats`` times each (fresh workers and a fresh Redis database for every relay run), and
the medians are compared: one run of either varies by 10 % on 2 shared cores.
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile import sampling, summary
from bench.rig import cpu_s, free_port, peak_rss_mb, receiver_process, redis_database, redis_pid, worker
from relay.connections import connect
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store

CONCURRENCY = 64  # the baseline's requests at a time
RELAY_IN_FLIGHT = 512  # the relay's attempts at a time, its default RELAY_MAX_IN_FLIGHT
COMMIT_BATCH = 500


def body_of(n: int) -> str:
    data = {"accountCode": "acme", "resourceType": "order", "id": n, "lifecycleEvent": "created"}
    data["resource"] = {"id": n, "reference": "x" * 800}
    return event_body("order.created", "2026-11-26T10:00:00Z", data)


async def baseline(url: str, count: int) -> tuple[float, float]:
    """Requests a second of bare aiohttp POSTs, and the CPU each cost this process (µs)."""
    payload = body_of(0).encode()
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = count

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    assert response.status == 204

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started), 1e6 * (time.process_time() - cpu) / count


async def relay(
    redis_url: str, url: str, receiver_pid: int, count: int, workers: int, profile: Path | None = None
) -> tuple[float, float, list[float]]:
    """Deliveries a second through ``workers`` worker processes, from the first commit and after the last one
    (delivering alone, the fan-out done), and the workers' peak RSS in MB."""
    connections = await connect(redis_url)  # the relay's own, as its poller commits through
    redis = connections.redis
    now = datetime.now(UTC)
    sub = SubscriptionRecord(
        id="sub_bench",
        account="acme",
        url=url,
        events=["*"],
        secret=new_secret(),
        max_concurrency=1000,  # the most a subscription may set: the worker's own limit is what binds
        created_at=now,
        updated_at=now,
    )
    store, queue = Store(redis), DeliveryQueue(redis)
    await store.create_subscription(sub)
    # one account here: its cap (a quarter of the worker's slots by default) is raised so the worker's own binds
    limits = {"max_in_flight": str(RELAY_IN_FLIGHT), "account_max_in_flight": str(RELAY_IN_FLIGHT * workers)}
    pool = [worker(redis_url, **limits) for _ in range(workers)]
    children = [await p.__aenter__() for p in pool]
    profiling = sampling(children[0].pid, profile) if profile else contextlib.nullcontext()
    try:
        await asyncio.sleep(1.0)  # the workers are up and idle
        profiling.__enter__()
        others = {"receiver": receiver_pid, "redis": redis_pid(redis_url)}
        rate, after_rate = await timed_delivery(redis, queue, sub, count, [child.pid for child in children], others)
        rss = [peak_rss_mb(child.pid) for child in children]
        profiling.__exit__(None, None, None)
    finally:
        for p in pool:
            await p.__aexit__(None, None, None)
        await connections.close()
    return rate, after_rate, rss


async def timed_delivery(
    redis: Redis,
    queue: DeliveryQueue,
    sub: SubscriptionRecord,
    count: int,
    worker_pids: list[int],
    others: dict[str, int],
) -> tuple[float, float]:
    """Commit ``count`` events for ``sub`` and wait until every delivery succeeded: deliveries a second from the
    first commit, and after the last one. Prints where the CPU went (the workers', and ``others``' by name)."""
    cpu_before = [cpu_s(pid) for pid in worker_pids]
    others_before = {name: cpu_s(pid) for name, pid in others.items()}
    batches = [  # as a poll detects them, before the clock starts
        [
            NewEvent(f"evt_{n}", "order.created", "acme", n, "2026-11-26T10:00:00Z", body_of(n))
            for n in range(start, min(count, start + COMMIT_BATCH))
        ]
        for start in range(0, count, COMMIT_BATCH)
    ]
    started, committing = time.perf_counter(), time.process_time()
    for events in batches:
        await queue.commit(events, [sub], now=datetime.now(UTC))
    committed_s, commit_cpu_s = time.perf_counter() - started, time.process_time() - committing
    by_commit = await redis.zcard(keyspace.status_deliveries("succeeded"))
    cpu_at_commit = [cpu_s(pid) for pid in worker_pids]
    deadline = time.monotonic() + 600
    while await redis.zcard(keyspace.status_deliveries("succeeded")) < count:
        if time.monotonic() > deadline:
            raise SystemExit("the relay did not deliver everything within 10 minutes")
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    after_rate = (count - by_commit) / (elapsed - committed_s)  # fan-out done: delivering alone
    busy = [(cpu_s(pid) - before) / elapsed for pid, before in zip(worker_pids, cpu_before, strict=True)]
    after_cpu = sum(cpu_s(pid) - at for pid, at in zip(worker_pids, cpu_at_commit, strict=True))
    also = ", ".join(f"{n} {100 * (cpu_s(others[n]) - b) / elapsed:.0f} %" for n, b in others_before.items())
    print(
        f"committed in {committed_s:.1f} s ({1e6 * commit_cpu_s / count:.0f} µs of CPU an event); "
        f"CPU while delivering: worker {', '.join(f'{100 * b:.0f} %' for b in busy)}, {also}; "
        f"after the last commit, {1e6 * after_cpu / (count - by_commit):.0f} µs of worker CPU a delivery"
    )
    return rate, after_rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, taking turns; medians compared")
    parser.add_argument("--profile", type=Path, help="sample the (first) worker with py-spy into this file")
    args = parser.parse_args()
    runs: list[tuple[float, float, float, list[float]]] = []  # baseline, relay, relay after the last commit, RSS
    with receiver_process(free_port()) as (url, receiver_pid):
        await baseline(url, 2_000)  # warm up the receiver
        for n in range(args.repeats):
            bare, bare_cpu_us = await baseline(url, args.events // 2)
            print(f"bare aiohttp: {bare:,.0f} POSTs/s, {bare_cpu_us:.0f} µs of client CPU a request")
            with redis_database() as redis_url:
                profile = args.profile if n == 0 else None
                rate, after, rss = await relay(redis_url, url, receiver_pid, args.events, args.workers, profile)
            runs.append((bare, rate, after, rss))
        async with aiohttp.ClientSession() as session, session.get(url.replace("/hook", "/count")) as answer:
            received = (await answer.json())["received"]
    expected = 2_000 + args.repeats * (args.events // 2 + args.events)
    bare, rate, after = (statistics.median(run[i] for run in runs) for i in range(3))
    command = f"bench/throughput.py --events {args.events} --workers {args.workers} --repeats {args.repeats}"
    print(f"\n$ .venv/bin/python {command}")
    columns = [", ".join(f"{run[i]:,.0f}" for run in runs) for i in range(3)]
    width = max(len("each run"), *(len(c) for c in columns))
    print(f"| {'run':<36} | {'per second (median)':>19} | {'ratio':>6} | {'each run':<{width}} |")
    print(f"|{'-' * 38}|{'-' * 21}|{'-' * 8}|{'-' * (width + 2)}|")
    names = (
        "bare aiohttp POST (baseline)",
        f"relay, {args.workers} worker process(es)",
        "  of which after the last commit",
    )
    for name, value, each in zip(names, (bare, rate, after), columns, strict=True):
        print(f"| {name:<36} | {value:>19,.0f} | {value / bare:>6.2f} | {each:<{width}} |")
    ratios = ", ".join(f"{run[1] / run[0]:.2f}" for run in runs)
    rss = ", ".join(f"{max(r):.0f} MB" for *_, r in runs)
    print(f"ratio of each run: {ratios}; worker peak RSS: {rss}; receiver got {received:,} of {expected:,}")
    figures = {"baseline_per_s": round(bare), "relay_per_s": round(rate), "ratio": round(rate / bare, 3)}
    print(json.dumps({**figures, "after_commit_per_s": round(after), "after_commit_ratio": round(after / bare, 3)}))
    if args.profile:
        print(summary(args.profile))


if __name__ == "__main__":
    asyncio.run(main())
