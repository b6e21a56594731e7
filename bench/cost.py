"""Cost: Redis memory per event and per retained delivery, by key family; worker and API memory (RSS) under load.

    .venv/bin/python bench/cost.py [--events 10000] [--subscriptions 1,10] [--load-events 20000] [--private-redis]

*Redis.* For each number K of ``--subscriptions``, on an empty database of its own: K subscriptions, then
``--events`` ``order.created`` events, each carrying a real recorded order (about 3 KB of JSON), committed
through ``DeliveryQueue.commit`` (500 a transaction, as a poll commits them) to all K: the deliveries wait
(*committed*). Then one successful attempt is recorded for every delivery through ``DeliveryQueue.record`` (500 a
batch), exactly as the dispatcher records a 204 with an empty body: the deliveries are ``succeeded`` and kept with
their attempt until retention removes them (*retained*). After each step every key of the database is counted
with ``MEMORY USAGE … SAMPLES 0`` (key, value and the dictionary entry; exact, and blind to other sessions on
the server) and grouped by family. A family's bytes are divided by the events (event record, event indexes) or
by the deliveries (delivery record, attempts list and the delivery indexes: global, account, subscription,
event, status, due). ``used_memory`` growth (INFO memory) is printed beside it; on the shared server it also
counts what other sessions write meanwhile, so ``--private-redis`` runs this part on a redis-server of its own.
The body is stored once if the event record's bytes per event are the same for every K and close to the body's
length.

*Processes.* ``relay api`` and ``relay worker`` (one each) on an empty database while ``--load-events`` events are
committed to one subscription (at a minimal receiver, ``bench/receiver.py``) and delivered, and the API is read
meanwhile (lists of deliveries and events, one delivery with its attempts, /metrics) by one client as fast as it
answers: their RSS idle (baseline, same run) and at peak (VmHWM). The deliveries the worker made are counted
by family as well: the row "via relay worker".
"""

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rig import free_port, peak_rss_mb, receiver, redis_database, rss_mb
from bench.world import (
    ENCRYPTION_KEY,
    TOKEN,
    command_line,
    markdown_table,
    order_event,
    private_redis,
    recorded_order,
    relay_process,
    subscription,
)
from subscriptions.core.models import Attempt, DeliveryRecord
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store

BATCH = 500
TARGET_DELIVERY_BYTES = 1536

# families, in the order the table shows them: (name, per "event" or "delivery", how a key is recognised)
EVENT_FAMILIES = ["event record (body inside)", "events index: global", "events index: account"]
DELIVERY_FAMILIES = [
    "delivery record",
    "attempts list (1 attempt)",
    "deliveries index: global",
    "deliveries index: account",
    "deliveries index: subscription",
    "deliveries index: event",
    "deliveries index: status",
    "due set",
]
OTHER = ["subscriptions and their health", "other"]


def family(key: str) -> str:
    """The family a key of the relay belongs to (see ``subscriptions.store.keyspace``)."""
    exact = {
        keyspace.EVENTS: "events index: global",
        keyspace.DELIVERIES: "deliveries index: global",
        keyspace.DUE: "due set",
    }
    if key in exact:
        return exact[key]
    prefixes = [
        (keyspace.account_events(""), "events index: account"),
        (keyspace.event(""), "event record (body inside)"),
        (keyspace.account_deliveries(""), "deliveries index: account"),
        (keyspace.subscription_deliveries(""), "deliveries index: subscription"),
        (keyspace.event_deliveries(""), "deliveries index: event"),
        (keyspace.status_deliveries(""), "deliveries index: status"),
        (keyspace.subscription(""), "subscriptions and their health"),
        (keyspace.SUBSCRIPTIONS, "subscriptions and their health"),
    ]
    if key.startswith(keyspace.delivery("")):
        return "attempts list (1 attempt)" if key.endswith(":attempts") else "delivery record"
    for prefix, name in prefixes:
        if key.startswith(prefix):
            return name
    return "other"


@dataclass
class Census:
    """Bytes (MEMORY USAGE) and keys by family, and ``used_memory`` when it was taken."""

    bytes: Counter[str] = field(default_factory=Counter)
    keys: Counter[str] = field(default_factory=Counter)
    used_memory: int = 0


async def census(redis: Redis) -> Census:
    """Every key of the database, by family (arq's and the bench's own marker are left out)."""
    counted = Census(used_memory=int((await redis.info("memory"))["used_memory"]))
    batch: list[str] = []

    async def flush() -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        for key, size in zip(batch, sizes, strict=True):
            counted.bytes[family(key)] += int(size or 0)
            counted.keys[family(key)] += 1
        batch.clear()

    async for key in redis.scan_iter(match=keyspace.PREFIX + "*", count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            await flush()
    await flush()
    return counted


@dataclass
class Measured:
    label: str
    events: int
    deliveries: int
    body_bytes: int
    committed: Census | None
    retained: Census
    start_memory: int


async def redis_cost(url: str, events: int, subscriptions: int) -> Measured:
    """Commit ``events`` to ``subscriptions``, record one success each, count the keys after each step."""
    redis = Redis.from_url(url, decode_responses=True)
    try:
        queue = DeliveryQueue(redis)
        now = datetime.now(UTC)
        subs = [subscription(n, f"https://hooks.example.com/brightpearl/{n}", now) for n in range(subscriptions)]
        order = recorded_order()
        start = int((await redis.info("memory"))["used_memory"])
        deliveries: list[DeliveryRecord] = []
        for first in range(0, events, BATCH):
            batch = [order_event(n, order) for n in range(first, min(first + BATCH, events))]
            deliveries += await queue.commit(batch, subs, now=now)
        committed = await census(redis)
        attempt = Attempt(at=datetime.now(UTC), status_code=204, error=None, duration_ms=12, response_excerpt="")
        for first in range(0, len(deliveries), BATCH):
            outcomes = [Outcome(d, attempt, True, 0.0) for d in deliveries[first : first + BATCH]]
            await queue.record(outcomes, attempt.at)
        retained = await census(redis)
    finally:
        await redis.aclose()
    body = len(order_event(0, order).body)
    return Measured(f"K={subscriptions}", events, len(deliveries), body, committed, retained, start)


@contextlib.contextmanager
def database(private: bool) -> Iterator[str]:
    if private:
        with private_redis() as url:
            yield url
    else:
        with redis_database() as url:
            yield url


@dataclass
class ProcessCost:
    idle_mb: dict[str, float]
    peak_mb: dict[str, float]
    end_mb: dict[str, float]
    deliveries_per_s: float
    api_reads: int
    measured: Measured


async def read_api(http: aiohttp.ClientSession, api_url: str, stop: asyncio.Event) -> int:
    """Read the API as an operator's dashboard would, as fast as it answers, until ``stop``; requests made."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    paths = ["/v1/deliveries?limit=100", "/v1/events?limit=100", "/v1/deliveries?status=succeeded&limit=1000"]
    made = 0
    while not stop.is_set():
        for path in [*paths, "/metrics"]:
            async with http.get(api_url + path, headers=headers) as answer:
                payload = await answer.read()
                made += 1
            if path.startswith("/v1/deliveries?limit") and answer.status == 200:
                items = json.loads(payload)["items"]
                if items:
                    async with http.get(f"{api_url}/v1/deliveries/{items[0]['id']}", headers=headers) as one:
                        await one.read()
                        made += 1
    return made


async def process_cost(events: int) -> ProcessCost:
    """``relay api`` and ``relay worker`` while ``events`` are delivered and the API is read."""
    with redis_database() as redis_url, receiver(free_port()) as url:
        redis = Redis.from_url(redis_url, decode_responses=True)
        queue = DeliveryQueue(redis)
        now = datetime.now(UTC)
        sub = subscription(0, url, now, max_concurrency=256)
        await Store(redis).create_subscription(sub)
        order = recorded_order()
        settings = {"encryption_key": ENCRYPTION_KEY}
        with relay_process("api", redis_url, **settings) as api, relay_process("worker", redis_url, **settings) as wk:
            await asyncio.sleep(2.0)
            idle = {"worker": rss_mb(wk.pid), "api": rss_mb(api.pid)}
            stop = asyncio.Event()
            async with aiohttp.ClientSession() as http:
                reader = asyncio.create_task(read_api(http, api.url, stop))
                started = time.monotonic()
                for first in range(0, events, BATCH):
                    batch = [order_event(n, order) for n in range(first, min(first + BATCH, events))]
                    await queue.commit(batch, [sub], now=datetime.now(UTC))
                for _ in range(6000):
                    if await redis.zcard(keyspace.status_deliveries("succeeded")) >= events:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise SystemExit(f"the worker did not deliver {events} events within 10 minutes")
                rate = events / (time.monotonic() - started)
                stop.set()
                reads = await reader
            peak = {"worker": peak_rss_mb(wk.pid), "api": peak_rss_mb(api.pid)}
            end = {"worker": rss_mb(wk.pid), "api": rss_mb(api.pid)}
        retained = await census(redis)
        await redis.aclose()
    body = len(order_event(0, order).body)
    measured = Measured("K=1 via relay worker", events, events, body, None, retained, 0)
    return ProcessCost(idle, peak, end, rate, reads, measured)


def per_unit(census: Census | None, name: str, count: int) -> str:
    if census is None:
        return ""
    return f"{census.bytes[name] / count:,.0f}"


def print_redis(measured: list[Measured]) -> dict[str, float]:
    """The tables by family; answers the retained bytes per delivery of each K."""
    headers = ["family", "per"]
    for m in measured:
        headers += [f"{m.label} committed", f"{m.label} retained"] if m.committed else [f"{m.label} retained"]
    rows: list[list[object]] = []
    for name in EVENT_FAMILIES + DELIVERY_FAMILIES:
        per_event = name in EVENT_FAMILIES
        row: list[object] = [name, "event" if per_event else "delivery"]
        for m in measured:
            count = m.events if per_event else m.deliveries
            if m.committed:
                row.append(per_unit(m.committed, name, count))
            row.append(per_unit(m.retained, name, count))
        rows.append(row)
    totals: dict[str, float] = {}
    for label, names, unit in (("event", EVENT_FAMILIES, "events"), ("delivery", DELIVERY_FAMILIES, "deliveries")):
        row = [f"**total per {label}**", label]
        for m in measured:
            count = m.events if unit == "events" else m.deliveries
            for counted in [m.committed, m.retained] if m.committed else [m.retained]:
                assert counted is not None
                value = sum(counted.bytes[n] for n in names) / count
                row.append(f"{value:,.0f}")
                if counted is m.retained:
                    totals[f"{m.label} {label}"] = value
        rows.append(row)
    row = ["used_memory growth (INFO), all keys", "event"]
    for m in measured:
        for counted in [m.committed, m.retained] if m.committed else [m.retained]:
            assert counted is not None
            row.append(f"{(counted.used_memory - m.start_memory) / m.events:,.0f}" if m.start_memory else "")
    rows.append(row)
    print(markdown_table(headers, rows))
    return totals


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--subscriptions", type=lambda t: [int(k) for k in t.split(",")], default=[1, 10], help="K, comma-separated"
    )
    parser.add_argument("--load-events", type=int, default=20_000, help="events delivered while RSS is watched")
    parser.add_argument("--private-redis", action="store_true", help="the Redis part on a redis-server of its own")
    args = parser.parse_args()
    measured = []
    for count in args.subscriptions:
        with database(args.private_redis) as url:
            measured.append(await redis_cost(url, args.events, count))
    processes = await process_cost(args.load_events)
    measured.append(processes.measured)

    print(f"\n{command_line('cost.py', args)}")
    body = measured[0].body_bytes
    print(f"Redis bytes (MEMORY USAGE) per event or per delivery, by key family; event body {body:,} bytes of JSON")
    totals = print_redis(measured)
    event_record = {m.label: m.retained.bytes["event record (body inside)"] / m.events for m in measured}
    print(
        "body stored once: event record bytes per event "
        + ", ".join(f"{label} {value:,.0f}" for label, value in event_record.items())
        + f" against a body of {body:,} bytes"
        + f" ({max(event_record.values()) / body:.2f}x the body at most, whatever K)"
    )
    print(
        "retained delivery vs target 1.5 KB (1,536 B): "
        + ", ".join(
            f"{m.label} {totals[f'{m.label} delivery']:,.0f} B"
            f" ({'met' if totals[f'{m.label} delivery'] <= TARGET_DELIVERY_BYTES else 'missed'})"
            for m in measured
        )
    )
    print(f"\nprocesses while {args.load_events:,} events were delivered ({processes.deliveries_per_s:,.0f}/s)")
    print(f"and the API answered {processes.api_reads:,} reads")
    rss_rows = [
        [name, f"{processes.idle_mb[name]:.0f}", f"{processes.peak_mb[name]:.0f}", f"{processes.end_mb[name]:.0f}"]
        for name in ("worker", "api")
    ]
    print(markdown_table(["process", "idle RSS MB (baseline)", "peak RSS MB (VmHWM)", "RSS MB at the end"], rss_rows))
    verdict = "met" if processes.peak_mb["worker"] < 150 else "missed"
    print(f"worker peak RSS {processes.peak_mb['worker']:.0f} MB vs target < 150 MB: {verdict}")
    summary = {
        "event_body_bytes": body,
        **{f"{k.replace(' ', '_')}_bytes": round(v) for k, v in totals.items()},
        "worker_peak_rss_mb": round(processes.peak_mb["worker"]),
        "api_peak_rss_mb": round(processes.peak_mb["api"]),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
