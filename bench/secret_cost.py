"""What opening sealed signing secrets costs the delivery loop: one claimed batch's subscriptions, read and opened.

    .venv/bin/python bench/secret_cost.py [--batch 500] [--fanout 1000] [--repeats 30]

The dispatcher reads the subscriptions of every batch it claims (``Store.load_subscriptions``, up to
``--batch`` distinct ones) and each poll that finds changes reads its account's subscriptions for the fan-out
(``Store.account_subscriptions``, ``--fanout`` of them). Both are timed here (median of ``--repeats``) over an
empty Redis database of the run's own, every subscription with a current and a previous secret:

- *no key*, the baseline: secrets stored in plain text, nothing to decrypt;
- *key, first read*: a cipher that has decrypted nothing yet (a process's first batch);
- *key, later reads*: the same cipher again (every batch after the first: decryptions are remembered).

Also printed: one Fernet decryption, and the memory the cipher's memo holds for the fan-out's secrets.
"""

import argparse
import asyncio
import functools
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rig import redis_database
from bench.world import ACCOUNT, ENCRYPTION_KEY, markdown_table, subscription
from subscriptions.core.crypto import TokenCipher
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store.records import Store

Read = Callable[[Store], Awaitable[Sequence[SubscriptionRecord | None]]]


async def median_ms(read: Read, store_for_each: Callable[[], Store], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        store = store_for_each()
        started = time.perf_counter()
        await read(store)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def store_subscriptions(redis: "Redis", key: str | None, count: int) -> list[str]:
    now = datetime.now(UTC)
    store = Store(redis, TokenCipher([key]) if key else None)
    ids = []
    for n in range(count):
        sub = subscription(n, f"http://127.0.0.1:9/hook/{n}", now).model_copy(
            update={"previous_secret": new_secret(), "previous_secret_valid_until": now + timedelta(days=1)}
        )
        await store.create_subscription(sub)
        ids.append(sub.id)
    return ids


async def timed_reads(redis: "Redis", key: str | None, reads: dict[str, Read], repeats: int) -> list[list[str]]:
    rows = []
    for what, read in reads.items():
        if key is None:
            rows.append([what, "no key (baseline)", f"{await median_ms(read, lambda: Store(redis), repeats):.2f}"])
            continue
        first = await median_ms(read, lambda: Store(redis, TokenCipher([key])), repeats)  # a fresh memo each time
        warmed = TokenCipher([key])
        await read(Store(redis, warmed))
        later = await median_ms(read, functools.partial(Store, redis, warmed), repeats)  # the memo is the cipher's
        rows += [[what, "key, first read", f"{first:.2f}"], [what, "key, later reads", f"{later:.2f}"]]
    return rows


async def measure_with(key: str | None, args: argparse.Namespace) -> list[list[str]]:
    """The rows of one way of storing secrets: plain (``key`` None) or sealed under ``key``."""
    with redis_database() as redis_url:
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            batch = (await store_subscriptions(redis, key, args.fanout))[: args.batch]

            async def dispatcher_batch(store: Store) -> Sequence[SubscriptionRecord | None]:
                return await store.load_subscriptions(batch)

            async def fan_out(store: Store) -> Sequence[SubscriptionRecord | None]:
                return await store.account_subscriptions(ACCOUNT)

            reads = {
                f"load_subscriptions, {args.batch}": dispatcher_batch,
                f"account_subscriptions, {args.fanout}": fan_out,
            }
            rows = await timed_reads(redis, key, reads, args.repeats)
            if key is not None:
                tracemalloc.start()
                cipher = TokenCipher([key])
                read = await fan_out(Store(redis, cipher))
                del read  # what stays is the memo, the cipher's
                held, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                rows.append([f"memory after reading {args.fanout}", "key", f"{held / 1e6:.1f} MB"])
            return rows
        finally:
            await redis.aclose()


async def measure(args: argparse.Namespace) -> list[list[str]]:
    rows = await measure_with(None, args) + await measure_with(ENCRYPTION_KEY, args)
    cipher = TokenCipher([ENCRYPTION_KEY])
    stored = [cipher.encrypt(new_secret()) for _ in range(2000)]
    started = time.perf_counter()
    for text in stored:  # each a different text: none is remembered yet
        cipher.decrypt(text)
    rows.append(["one Fernet decryption", "", f"{(time.perf_counter() - started) / len(stored) * 1e6:.0f} µs"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    rows = asyncio.run(measure(parser.parse_args()))
    print(markdown_table(["read", "secrets", "ms (median)"], rows))


if __name__ == "__main__":
    main()
