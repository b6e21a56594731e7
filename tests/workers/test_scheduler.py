"""The poll scheduler: every due account is claimed once and polled by the worker that claimed it, never more at
once than the worker has room for; falling behind is said once."""

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.polls import Claim, Polls
from workers.scheduler import PollScheduler

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def scheduler(redis: Redis, run: "PollRun", *, capacity: int = 200, batch: int = 8) -> PollScheduler:
    return PollScheduler(Polls(redis), run, clock=lambda: NOW, lease_s=10, tick_s=0.01, capacity=capacity, batch=batch)


class PollRun:
    """What the worker's poller does with a claim, as a test sees it: records it, and waits while held."""

    def __init__(self) -> None:
        self.polled: list[Claim] = []
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, claim: Claim) -> None:
        self.polled.append(claim)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1


async def run_for(schedulers: list[PollScheduler], seconds: float) -> None:
    running = [asyncio.create_task(s.run()) for s in schedulers]
    await asyncio.sleep(seconds)
    for s in schedulers:
        s.stop()
    await asyncio.gather(*running)
    for s in schedulers:
        await s.drain(1.0)


async def test_two_schedulers_poll_each_due_account_once(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": ms(NOW) - n for n in range(30)} | {"later": ms(NOW) + 60_000})
    runs = [PollRun(), PollRun()]
    await run_for([scheduler(redis_client, r) for r in runs], 0.3)
    polled = [c for r in runs for c in r.polled]
    assert sorted(c.code for c in polled) == sorted(f"a{n}" for n in range(30))
    for claim in polled:  # each poll runs under the token its claim left as the account's owner
        assert await redis_client.get(keyspace.poll_owner(claim.code)) == claim.token
        assert await redis_client.zscore(keyspace.POLLS, claim.code) == ms(NOW) + 10_000
    assert all(r.polled for r in runs)  # small batches: both took their turns


async def test_a_full_worker_claims_nothing_more_and_leaves_the_rest_to_another(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": ms(NOW) - n for n in range(10)})
    busy, free = PollRun(), PollRun()
    busy.gate.clear()  # its polls do not end while the test runs
    busy_scheduler = scheduler(redis_client, busy, capacity=3, batch=2)
    running = asyncio.create_task(busy_scheduler.run())
    await asyncio.sleep(0.1)
    assert busy.most == 3
    assert len(busy.polled) == 3  # the other 7 stay due: not claimed, so no lease of theirs runs out unpolled
    assert await redis_client.zcount(keyspace.POLLS, "-inf", ms(NOW)) == 7
    await run_for([scheduler(redis_client, free)], 0.2)
    assert len(free.polled) == 7
    busy_scheduler.stop()
    busy.gate.set()
    await running
    await busy_scheduler.drain(1.0)


async def test_falling_behind_is_said_once_and_catching_up_once(
    redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers.scheduler")
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": ms(NOW) - 5_000 - n for n in range(6)})
    run = PollRun()
    run.gate.clear()
    one_at_a_time = scheduler(redis_client, run, capacity=1, batch=1)
    running = asyncio.create_task(one_at_a_time.run())
    for _ in range(5):  # each poll ends in turn; the others keep waiting, 5 s late
        await asyncio.sleep(0.05)
        run.gate.set()
        await asyncio.sleep(0)
        run.gate.clear()
    run.gate.set()
    await asyncio.sleep(0.2)
    one_at_a_time.stop()
    await running
    await one_at_a_time.drain(1.0)
    assert len(run.polled) == 6
    late = [r for r in caplog.records if "starting late" in r.getMessage()]
    assert len(late) == 1
    assert "waited 5." in late[0].getMessage()
    assert [r.getMessage() for r in caplog.records].count("polls start on time again") == 1


async def test_a_failing_poll_frees_its_room(redis_client: Redis, caplog: pytest.LogCaptureFixture) -> None:
    await redis_client.zadd(keyspace.POLLS, {"a": ms(NOW) - 2, "b": ms(NOW) - 1})
    polled: list[str] = []

    async def failing(claim: Claim) -> None:
        polled.append(claim.code)
        raise RuntimeError("boom")

    await run_for([scheduler(redis_client, failing, capacity=1, batch=1)], 0.2)  # type: ignore[arg-type]
    assert sorted(polled) == ["a", "b"]
    assert "poll of a failed" in caplog.text
