"""Claiming due polls: at most the number asked, each once, and workers claiming at the same moment share the due
accounts instead of racing for the same few."""

import asyncio

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.polls import Polls

NOW_MS = 1_800_000_000_000


async def test_a_claim_takes_at_most_its_limit_of_the_longest_due(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": NOW_MS - 100 + n for n in range(20)} | {"later": NOW_MS + 1})
    claims = await Polls(redis_client).claim(now_ms=NOW_MS, lease_ms=10_000, limit=3)
    assert len(claims) == 3
    assert {c.code for c in claims} <= {f"a{n}" for n in range(12)}  # among the 4 x 3 longest due
    assert await redis_client.zcount(keyspace.POLLS, "-inf", NOW_MS) == 17


async def test_workers_claiming_at_once_both_get_polls(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": NOW_MS - n for n in range(40)})
    first, second = await asyncio.gather(
        Polls(redis_client).claim(now_ms=NOW_MS, lease_ms=10_000, limit=8),
        Polls(redis_client).claim(now_ms=NOW_MS, lease_ms=10_000, limit=8),
    )
    codes = [c.code for c in first + second]
    assert len(codes) == len(set(codes))  # never one account twice
    assert len(first) >= 4
    assert len(second) >= 4
