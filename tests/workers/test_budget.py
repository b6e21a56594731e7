"""The shared request budget, on a real Redis, with a clock the test moves."""

import pytest
from redis.asyncio import Redis

from workers.budget import BudgetExhausted, RequestBudget, requests_per_minute


class Time:
    def __init__(self) -> None:
        self.ms = 10_000_000
        self.slept: list[float] = []

    def now_ms(self) -> int:
        return self.ms

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ms += int(seconds * 1000)


@pytest.mark.parametrize(("share", "per_minute"), [(0.5, 100), (1.0, 200), (0.25, 50), (0.001, 1)])
def test_requests_per_minute(share: float, per_minute: int) -> None:
    assert requests_per_minute(share) == per_minute


async def test_paces_within_the_share(redis_client: Redis) -> None:
    t = Time()
    budget = RequestBudget(redis_client, "acme", 3, now_ms=t.now_ms, sleep=t.sleep)
    for _ in range(3):
        await budget.acquire(max_wait_s=0)
        t.ms += 1000
    assert t.slept == []
    await budget.acquire(max_wait_s=120)  # the 4th waits until the first leaves the minute
    assert t.slept == [57.0]
    assert await budget.used_last_minute() == 3


async def test_refuses_to_wait_longer_than_allowed(redis_client: Redis) -> None:
    t = Time()
    budget = RequestBudget(redis_client, "acme", 1, now_ms=t.now_ms, sleep=t.sleep)
    await budget.acquire(max_wait_s=0)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=10)
    assert caught.value.wait_ms == 60_000


async def test_budget_is_shared_between_processes_and_accounts(redis_client: Redis) -> None:
    t = Time()
    one = RequestBudget(redis_client, "acme", 2, now_ms=t.now_ms, sleep=t.sleep)
    two = RequestBudget(redis_client, "acme", 2, now_ms=t.now_ms, sleep=t.sleep)
    other_account = RequestBudget(redis_client, "beta", 2, now_ms=t.now_ms, sleep=t.sleep)
    await one.acquire(max_wait_s=0)
    await two.acquire(max_wait_s=0)
    with pytest.raises(BudgetExhausted):
        await one.acquire(max_wait_s=0)
    await other_account.acquire(max_wait_s=0)


async def test_pause_holds_everyone(redis_client: Redis) -> None:
    t = Time()
    budget = RequestBudget(redis_client, "acme", 100, now_ms=t.now_ms, sleep=t.sleep)
    await budget.pause(5_000)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=0)
    assert 4_000 < caught.value.wait_ms <= 5_000
