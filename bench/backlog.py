"""Backlog: a receiver down for a minute while events pile up, then back: how long until the backlog is delivered,
and whether the retries bunch up.

    .venv/bin/python bench/backlog.py [--rate-per-s 50] [--up-s 5] [--down-s 60] [--retry-schedule-s 2,5,10,20,40,60]
        [--histogram-s 30] [--max-after-s 120] [--quick]

One ``relay worker`` process with ``RELAY_RETRY_SCHEDULE_S=--retry-schedule-s`` (a short schedule so that a
minute's outage is retried within the run; the default is 5 s, 5 min, 30 min, ...), one subscription at a timed
receiver (``bench/timed_receiver.py``) in a process of its own, and a steady stream of ``order.created`` events
(a real recorded order, about 3 KB) committed through ``DeliveryQueue.commit`` at ``--rate-per-s``, one a commit,
for the whole run: ``--up-s`` with the receiver up, ``--down-s`` with its process stopped (connections refused),
then with it started again on the same port until every delivery made before it came back has succeeded (or failed
for good), and 5 s more.

From the attempts Redis keeps for every delivery (time, outcome): the time from receiver-back to the backlog
drained (the last success of a delivery created before it came back), the attempts per second after it came back
against the stream rate (its peak is the bunching), and a per-second histogram of the first ``--histogram-s``
seconds after it came back, first attempts (the stream) apart from retries (the backlog). "Schedule predicts" is
the longest any delivery of the outage must wait for its next retry after the receiver is back, without jitter
(the schedule is jittered by up to ±20 %): the drain cannot be shorter.
"""

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rig import peak_rss_mb, redis_database, worker
from bench.world import (
    ENCRYPTION_KEY,
    TimedReceivers,
    command_line,
    markdown_table,
    order_event,
    recorded_order,
    subscription,
)
from subscriptions.core.models import Attempt, DeliveryRecord, SubscriptionRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store


def predicted_wait_s(down_s: float, schedule_s: list[float], step_s: float = 0.01) -> float:
    """The longest wait, after an outage of ``down_s``, for the next attempt of a delivery created during it
    (attempts at creation and after each step of the schedule, no jitter); pure arithmetic."""
    marks = list(itertools.accumulate(schedule_s, initial=0.0))
    longest = 0.0
    for i in range(int(down_s / step_s)):
        age = down_s - i * step_s  # how long before the receiver came back the delivery was created
        after = [m - age for m in marks if m >= age]
        if after:
            longest = max(longest, after[0])
    return longest


class Stream:
    """Commits one event at a time at a steady rate until stopped; remembers when each was committed."""

    def __init__(self, queue: DeliveryQueue, subs: list[SubscriptionRecord], rate_per_s: float) -> None:
        self.queue = queue
        self.subs = subs
        self.interval_s = 1 / rate_per_s
        self.created: list[tuple[int, DeliveryRecord]] = []  # (created ms, delivery)
        self.late_s = 0.0  # how far the loop fell behind its schedule at worst
        self._stop = asyncio.Event()

    async def run(self) -> None:
        order = recorded_order()
        next_at = time.monotonic()
        for n in itertools.count(1):
            if self._stop.is_set():
                return
            self.late_s = max(self.late_s, time.monotonic() - next_at)
            now = datetime.now(UTC)
            (delivery,) = await self.queue.commit([order_event(n, order)], self.subs, now=now)
            self.created.append((ms(now), delivery))
            next_at += self.interval_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()


async def attempts_of(redis: Redis, deliveries: list[DeliveryRecord]) -> dict[str, list[Attempt]]:
    async with redis.pipeline(transaction=False) as pipe:
        for delivery in deliveries:
            pipe.lrange(keyspace.attempts(delivery.id), 0, -1)
        lists = await pipe.execute()
    return {d.id: [Attempt.model_validate_json(a) for a in raw] for d, raw in zip(deliveries, lists, strict=True)}


@dataclass
class Outage:
    """What one run recorded: the stream, every delivery's attempts, and when the receiver went and came back."""

    stream: Stream
    attempts: dict[str, list[Attempt]]  # delivery id -> its attempts, oldest first
    down_ms: int
    back_ms: int
    drained_seen_s: float | None  # receiver-back until Redis showed the backlog final, polled every 0.1 s
    worker_rss_mb: float


async def run(args: argparse.Namespace) -> Outage:
    with TimedReceivers(1) as receiver, redis_database() as redis_url:
        redis = Redis.from_url(redis_url, decode_responses=True)
        store, queue = Store(redis), DeliveryQueue(redis)
        sub = subscription(0, receiver.urls()[0], datetime.now(UTC))
        await store.create_subscription(sub)
        schedule = ",".join(f"{s:g}" for s in args.retry_schedule_s)
        stream = Stream(queue, [sub], args.rate_per_s)
        async with worker(redis_url, retry_schedule_s=schedule, encryption_key=ENCRYPTION_KEY) as child:
            task = asyncio.create_task(stream.run())
            try:
                await asyncio.sleep(args.up_s)
                await asyncio.to_thread(receiver.stop)  # not blocking the stream's loop
                down_ms = ms(datetime.now(UTC))
                await asyncio.sleep(args.down_s)
                await asyncio.to_thread(receiver.start)
                back_ms = ms(datetime.now(UTC))
                before = sum(1 for created, _ in stream.created if created < back_ms)
                drained_seen_s = None
                for _ in range(int(args.max_after_s * 10)):
                    final = await redis.zcount(keyspace.status_deliveries("succeeded"), "-inf", back_ms - 1)
                    final += await redis.zcount(keyspace.status_deliveries("failed"), "-inf", back_ms - 1)
                    if final >= before:
                        drained_seen_s = (ms(datetime.now(UTC)) - back_ms) / 1000
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(5.0)
            finally:
                stream.stop()
                await task
            await asyncio.sleep(1.0)  # the stream's last deliveries
            rss = peak_rss_mb(child.pid)
        attempts = await attempts_of(redis, [d for _, d in stream.created])
        await redis.aclose()
    return Outage(stream, attempts, down_ms, back_ms, drained_seen_s, rss)


def seconds_after(at: datetime, origin_ms: int) -> float:
    return (at.timestamp() * 1000 - origin_ms) / 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-per-s", type=float, default=50.0, help="events a second, all run long")
    parser.add_argument("--up-s", type=float, default=5.0, help="the stream with the receiver up, first")
    parser.add_argument("--down-s", type=float, default=60.0, help="how long the receiver is down")
    parser.add_argument(
        "--retry-schedule-s",
        type=lambda text: [float(s) for s in text.split(",")],
        default=[2.0, 5.0, 10.0, 20.0, 40.0, 60.0],
        help="RELAY_RETRY_SCHEDULE_S of the worker",
    )
    parser.add_argument("--histogram-s", type=int, default=30, help="seconds after recovery shown one by one")
    parser.add_argument("--max-after-s", type=float, default=120.0, help="give up waiting for the drain after this")
    parser.add_argument("--quick", action="store_true", help="the receiver down for 20 s")
    args = parser.parse_args()
    if args.quick:
        args.down_s = 20.0
    return args


@dataclass
class Drain:
    """The backlog (deliveries created before the receiver came back) and how it drained."""

    backlog: list[DeliveryRecord]
    drain_s: float  # receiver-back until the backlog's last success ended
    failed_for_good: int


def drain_of(result: Outage) -> Drain:
    """The drain: the last success of a delivery created before the receiver came back."""
    backlog = [d for created, d in result.stream.created if created < result.back_ms]
    last_success = []
    failed_for_good = 0
    for delivery in backlog:
        tries = result.attempts[delivery.id]
        done = [a for a in tries if a.status_code is not None and 200 <= a.status_code < 300]
        if done:
            last_success.append(seconds_after(done[-1].at, result.back_ms) + done[-1].duration_ms / 1000)
        else:
            failed_for_good += 1
    return Drain(backlog, max(last_success, default=float("nan")), failed_for_good)


@dataclass
class Seconds:
    """Attempts per second after the receiver came back (negative seconds: while it was down): first attempts
    (the stream) apart from retries (the backlog), and those that succeeded."""

    first: Counter[int]
    retries: Counter[int]
    ok: Counter[int]

    def attempts(self, second: int) -> int:
        return self.first[second] + self.retries[second]


def seconds_of(result: Outage) -> Seconds:
    seconds = Seconds(Counter(), Counter(), Counter())
    for tries in result.attempts.values():
        for index, attempt in enumerate(tries):
            second = int(seconds_after(attempt.at, result.back_ms) // 1)
            (seconds.retries if index else seconds.first)[second] += 1
            if attempt.status_code is not None and attempt.status_code < 300:
                seconds.ok[second] += 1
    return seconds


async def main() -> None:
    args = parse_args()
    result = await run(args)
    drain, seconds = drain_of(result), seconds_of(result)
    after = [seconds.attempts(s) for s in range(max(seconds.first) + 1)]  # to the end of the stream
    peak = max(after, default=0)
    peak_at = after.index(peak) if after else 0
    down_seconds = range(int((result.down_ms - result.back_ms) / 1000) + 1, 0)
    down_rate = sum(seconds.attempts(s) for s in down_seconds) / max(1, len(down_seconds))
    predicted = predicted_wait_s(args.down_s, args.retry_schedule_s)
    print(f"\n{command_line('backlog.py', args)}")
    schedule = ",".join(f"{s:g}" for s in args.retry_schedule_s)
    print(
        f"RELAY_RETRY_SCHEDULE_S={schedule} (±20 % jitter); stream {args.rate_per_s:g} events/s, one subscription;"
        f" receiver down {args.down_s:g} s"
    )
    summary_rows = [
        ["deliveries created before the receiver came back", f"{len(drain.backlog):,}"],
        ["time from receiver-back to backlog drained (last success)", f"{drain.drain_s:.1f} s"],
        ["  the same, as seen by polling Redis every 0.1 s", f"{result.drained_seen_s or float('nan'):.1f} s"],
        ["  schedule predicts at least (longest wait for a next retry, no jitter)", f"{predicted:.1f} s"],
        ["backlog deliveries that failed for good", f"{drain.failed_for_good}"],
        ["attempts/s while down (retries + stream)", f"{down_rate:.0f}"],
        ["stream rate (new deliveries/s)", f"{args.rate_per_s:g}"],
        [f"peak attempts/s after back (second +{peak_at})", f"{peak}"],
        ["peak / stream rate (bunching)", f"{peak / args.rate_per_s:.1f}x"],
        ["peak / attempts/s while down", f"{peak / max(down_rate, 1):.1f}x"],
        ["stream loop fell behind by at most", f"{result.stream.late_s * 1000:.0f} ms"],
        ["worker peak RSS", f"{result.worker_rss_mb:.0f} MB"],
    ]
    print(markdown_table(["figure", "value"], summary_rows))
    print_histogram(seconds, args.histogram_s, peak)
    unfinished = sum(1 for tries in result.attempts.values() if not tries)
    print(
        json.dumps(
            {
                "rate_per_s": args.rate_per_s,
                "down_s": args.down_s,
                "backlog": len(drain.backlog),
                "drain_s": round(drain.drain_s, 2),
                "predicted_min_drain_s": round(predicted, 2),
                "peak_attempts_per_s": peak,
                "bunching": round(peak / args.rate_per_s, 2),
                "failed_for_good": drain.failed_for_good,
                "never_attempted": unfinished,
                "worker_peak_rss_mb": round(result.worker_rss_mb),
            }
        )
    )


def print_histogram(seconds: Seconds, histogram_s: int, peak: int) -> None:
    """The first ``histogram_s`` seconds after the receiver came back, one row each, with a bar."""
    scale = max(1, -(-peak // 40))  # at most 40 characters a bar
    rows = [
        [
            f"+{s}",
            seconds.attempts(s),
            seconds.first[s],
            seconds.retries[s],
            seconds.ok[s],
            "#" * (seconds.attempts(s) // scale),
        ]
        for s in range(histogram_s)
    ]
    print(f"\nattempts per second after the receiver came back (# = {scale} attempts)")
    print(markdown_table(["second", "attempts", "first", "retries", "succeeded", ""], rows))


if __name__ == "__main__":
    asyncio.run(main())
