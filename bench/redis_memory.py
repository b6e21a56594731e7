"""Redis memory and AOF bytes per event and per delivery: the figures docs/operations.md sizes Redis with.

    .venv/bin/python bench/redis_memory.py [--events 10000] [--subscriptions 1,4]

Starts a private ``redis-server`` (Debian's, on a free loopback port, AOF on with ``appendfsync everysec``, in
a temporary directory), so that ``INFO memory`` counts nothing but what this script writes. For each number of
subscriptions, on an emptied server:

1. commits ``--events`` ``order.created`` events through ``DeliveryQueue.commit`` (500 a transaction, as a poll
   commits them), each carrying a real recorded Brightpearl order (``tests/fixtures/recorded/order_get_one``)
   as its ``resource``, fanned out to every subscription: the deliveries wait (``pending``);
2. records one successful attempt for every delivery through ``DeliveryQueue.record`` (500 a transaction), as the
   dispatcher does: the deliveries are ``succeeded`` and keep their attempt until retention removes them.

Then once more with one subscription and an almost empty ``resource``: the difference from the first run is
what the body costs. After each step it prints ``used_memory`` growth per event, ``MEMORY USAGE`` of one
event's and one delivery's keys, and the AOF's size on disk; at the end, the AOF's size after
``BGREWRITEAOF``. The cost of one more subscription is the difference between two rows. Nothing here touches
the Redis on 6379.
"""

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from subscriptions.core.envelope import NewEvent, resource_event
from subscriptions.core.models import Attempt, DeliveryRecord, SubscriptionRecord
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue, Outcome

ROOT = Path(__file__).resolve().parent.parent
RECORDED_ORDER = ROOT / "tests" / "fixtures" / "recorded" / "order_get_one.yml.0.txt"
BATCH = 500
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[tuple[str, Path]]:
    """A redis-server of this script's own, AOF on; yields its URL and its data directory."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="relay-redis-memory-") as directory:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
        args += ["--auto-aof-rewrite-percentage", "0"]  # no rewrite mid-measurement: the AOF shows every write
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603 - our own arguments
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0", Path(directory)
        finally:
            server.terminate()
            server.wait(10)


def recorded_order() -> dict[str, object]:
    """The order of a real Brightpearl answer, as an event's ``resource`` carries it."""
    text = RECORDED_ORDER.read_text()
    body = text[text.index("\n{") :]
    order: dict[str, object] = json.loads(body)["response"][0]
    return order


def order_event(n: int, order: dict[str, object]) -> NewEvent:
    return resource_event("acme", "order.created", n, {**order, "id": n}, NOW)


def subscription(n: int) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=f"sub_{n:026d}",
        account="acme",
        url=f"https://hooks.example.com/brightpearl/{n}",
        events=["*"],
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # noqa: S106 - a made-up secret
        created_at=NOW,
        updated_at=NOW,
    )


async def used_memory(redis: "Redis") -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


def aof_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and "appendonly" in str(f))


async def settle(redis: "Redis", rewrite: bool = False) -> None:
    """Wait until the AOF holds every write (``appendfsync everysec``), after a rewrite if ``rewrite``."""
    if rewrite:
        await redis.bgrewriteaof()
    await asyncio.sleep(1.2)
    while True:
        info = await redis.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"] or info["aof_pending_bio_fsync"]):
            return
        await asyncio.sleep(0.1)


async def key_bytes(redis: "Redis", names: list[str]) -> int:
    return sum([int(await redis.memory_usage(name, samples=0) or 0) for name in names])


async def measure(url: str, directory: Path, events: int, subscriptions: int, order: dict[str, object]) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        await redis.flushall()
        await settle(redis, rewrite=True)
        queue = DeliveryQueue(redis)
        subs = [subscription(n) for n in range(subscriptions)]
        start_memory, start_aof = await used_memory(redis), aof_bytes(directory)
        body_bytes = len(order_event(0, order).body)
        deliveries: list[DeliveryRecord] = []
        for first in range(0, events, BATCH):
            batch = [order_event(n, order) for n in range(first, min(first + BATCH, events))]
            deliveries += await queue.commit(batch, subs, now=NOW)
        await settle(redis)
        pending_memory, pending_aof = await used_memory(redis), aof_bytes(directory)
        one_event = [keyspace.event(deliveries[0].event_id), keyspace.event_deliveries(deliveries[0].event_id)]
        one_delivery = [keyspace.delivery(deliveries[0].id)]
        event_key_bytes, delivery_key_bytes = await key_bytes(redis, one_event), await key_bytes(redis, one_delivery)

        attempt_at = NOW + timedelta(seconds=1)
        for first in range(0, len(deliveries), BATCH):
            outcomes = [
                Outcome(d, Attempt(at=attempt_at, status_code=204, error=None, duration_ms=12), True, 0.0)
                for d in deliveries[first : first + BATCH]
            ]
            await queue.record(outcomes, attempt_at)
        await settle(redis)
        done_memory, done_aof = await used_memory(redis), aof_bytes(directory)
        attempt_key_bytes = await key_bytes(redis, [keyspace.attempts(deliveries[0].id)])
        await settle(redis, rewrite=True)
        rewritten_aof = aof_bytes(directory)
    finally:
        await redis.aclose()

    def per_event(value: int) -> str:
        return f"{value / events / 1024:6.2f} KB"

    print(
        f"{events} events x {subscriptions} subscription(s), event body {body_bytes} bytes of JSON\n"
        f"  waiting   : used_memory +{per_event(pending_memory - start_memory)} an event"
        f" | AOF +{per_event(pending_aof - start_aof)} an event\n"
        f"              MEMORY USAGE: event record + its deliveries index {event_key_bytes} B,"
        f" one delivery record {delivery_key_bytes} B\n"
        f"  succeeded : used_memory +{per_event(done_memory - start_memory)} an event"
        f" | AOF +{per_event(done_aof - start_aof)} an event"
        f" | after BGREWRITEAOF {per_event(rewritten_aof - start_aof)} an event\n"
        f"              MEMORY USAGE: one attempt list {attempt_key_bytes} B\n"
        f"  total used_memory for all {events} events: {(done_memory - start_memory) / 2**20:.1f} MiB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--subscriptions", default="1,4", help="comma-separated subscription counts to measure")
    args = parser.parse_args()
    order = recorded_order()
    with private_redis() as (url, directory):
        for count in (int(n) for n in args.subscriptions.split(",")):
            await measure(url, directory, args.events, count, order)
        # the same with an almost empty resource: what an event costs beside its body
        await measure(url, directory, args.events, 1, {"orderTypeCode": "SO"})


if __name__ == "__main__":
    asyncio.run(main())
