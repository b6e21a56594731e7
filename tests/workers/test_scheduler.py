"""The poll scheduler: every due account becomes one claim and one job carrying its token, across processes."""

import asyncio
from datetime import UTC, datetime

from redis.asyncio import Redis

from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.polls import Claim, Polls
from workers.scheduler import PollScheduler

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


async def test_two_schedulers_turn_each_due_poll_into_one_job(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": ms(NOW) - n for n in range(30)} | {"later": ms(NOW) + 60_000})
    jobs: list[Claim] = []

    async def enqueue(claim: Claim) -> None:
        jobs.append(claim)

    schedulers = [
        PollScheduler(Polls(redis_client), enqueue, clock=lambda: NOW, lease_s=10, tick_s=0.01) for _ in range(2)
    ]
    running = [asyncio.create_task(s.run()) for s in schedulers]
    await asyncio.sleep(0.2)
    for scheduler in schedulers:
        scheduler.stop()
    await asyncio.gather(*running)
    assert sorted(c.code for c in jobs) == sorted(f"a{n}" for n in range(30))
    for claim in jobs:  # each job carries the token its claim left as the account's owner
        assert await redis_client.get(keyspace.poll_owner(claim.code)) == claim.token
        assert await redis_client.zscore(keyspace.POLLS, claim.code) == ms(NOW) + 10_000
