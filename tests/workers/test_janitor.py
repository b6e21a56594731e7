"""The retention janitor: one sweep at a time across workers, counted in the metrics, stopped promptly."""

import asyncio
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from subscriptions.core.models import DeliveryStatus
from subscriptions.store import keyspace
from tests.subscriptions.test_retention import write_delivery, write_event
from workers.janitor import Janitor
from workers.metrics import Metrics

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
RETENTION_S = 7 * 86_400.0


def janitor(redis: Redis, metrics: Metrics, interval_s: float = 60.0) -> Janitor:
    return Janitor(redis, metrics, retention_s=RETENTION_S, clock=lambda: NOW, interval_s=interval_s)


def removed(metrics: Metrics, kind: str) -> float:
    value = metrics.registry.get_sample_value("relay_retention_removed_total", {"kind": kind})
    return value or 0.0


async def test_one_worker_sweeps_and_counts_what_it_removed(redis_client: Redis) -> None:
    old = NOW - timedelta(days=8)
    await write_event(redis_client, "evt_1", old)
    await write_delivery(redis_client, "evt_1", "sub_a", DeliveryStatus.succeeded, old)
    await write_delivery(redis_client, "evt_1", "sub_b", DeliveryStatus.failed, old)
    first, second = Metrics(), Metrics()

    counts = await janitor(redis_client, first).sweep_once()
    assert counts is not None
    assert (counts.deliveries, counts.events) == (2, 1)
    assert (removed(first, "delivery"), removed(first, "event"), removed(first, "dangling")) == (2, 1, 0)
    # the lock stays until it expires: no other worker sweeps again within the interval
    assert 0 < await redis_client.ttl(keyspace.JANITOR_LOCK) <= 60
    assert await janitor(redis_client, second).sweep_once() is None
    await redis_client.delete(keyspace.JANITOR_LOCK)
    counts = await janitor(redis_client, second).sweep_once()
    assert counts is not None
    assert counts.total() == 0
    assert removed(second, "delivery") == 0


async def test_the_lock_is_kept_while_a_sweep_runs(redis_client: Redis) -> None:
    sweeper = janitor(redis_client, Metrics(), interval_s=1)
    assert await redis_client.set(keyspace.JANITOR_LOCK, "mine", nx=True, ex=1)
    keeper = asyncio.create_task(sweeper._keep_lock("mine", 1))
    await asyncio.sleep(1.5)  # past the lock's first expiry
    assert await redis_client.get(keyspace.JANITOR_LOCK) == "mine"
    await redis_client.set(keyspace.JANITOR_LOCK, "another's")
    await asyncio.wait_for(keeper, 2)  # someone else holds it now: the keeper gives up
    assert await redis_client.get(keyspace.JANITOR_LOCK) == "another's"


async def test_run_sweeps_at_once_and_stops_promptly(redis_client: Redis) -> None:
    old = NOW - timedelta(days=8)
    await write_event(redis_client, "evt_1", old)
    metrics = Metrics()
    sweeper = janitor(redis_client, metrics, interval_s=3600)
    task = asyncio.create_task(sweeper.run())
    for _ in range(100):
        if removed(metrics, "event"):
            break
        await asyncio.sleep(0.01)
    assert removed(metrics, "event") == 1
    sweeper.stop()
    await asyncio.wait_for(task, 1)


async def test_a_failing_sweep_does_not_end_the_loop() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    sweeper = janitor(unreachable, Metrics(), interval_s=0.05)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.3)
    assert not task.done()
    sweeper.stop()
    await asyncio.wait_for(task, 1)
    await unreachable.aclose()
