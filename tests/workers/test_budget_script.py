"""The request budget's window at fixed clocks (the sliding window script of ``subscriptions.store.quotas`` with
Brightpearl's pause as its second key), and :class:`Budgets`, the one place budgets are made."""

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from subscriptions.core.errors import RelayError
from subscriptions.store import keyspace
from tests.conftest import FakeClock
from workers.budget import BudgetExhausted, Budgets, Priority, RequestBudget

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


def test_budgets_makes_each_accounts_budget_on_its_clock() -> None:
    clock = FakeClock(START)
    budgets = Budgets(Redis(), per_minute=100, clock=clock)  # not connected: making a budget asks nothing of Redis
    budget = budgets.of("acme")
    assert isinstance(budget, RequestBudget)
    assert (budget.account, budget.per_minute, budget.now_ms()) == ("acme", 100, START_MS)
    clock.advance(1.5)
    assert budget.now_ms() == START_MS + 1_500
    assert budgets.of("beta").account == "beta"


@pytest.mark.parametrize(
    ("priority", "taken"),
    [("high", 10), ("normal", 9), ("low", 5)],
)
async def test_each_priority_fills_its_share_of_one_window(redis_client: Redis, priority: Priority, taken: int) -> None:
    budget = Budgets(redis_client, 10, FakeClock(START)).of("acme")
    for _ in range(taken):
        await budget.acquire(max_wait_s=0, priority=priority)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=0, priority=priority)
    assert caught.value.wait_ms == 60_000  # all taken at the same instant: the oldest leaves a minute later
    assert await redis_client.zcount(keyspace.budget("acme"), START_MS, START_MS) == taken
    assert await budget.used_last_minute() == taken


async def test_the_window_slides_with_the_clock(redis_client: Redis) -> None:
    clock = FakeClock(START)
    budget = Budgets(redis_client, 2, clock).of("acme")
    await budget.acquire(max_wait_s=0)
    clock.advance(30)
    await budget.acquire(max_wait_s=0)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=0)
    assert caught.value.wait_ms == 30_000
    clock.advance(30)
    await budget.acquire(max_wait_s=0)  # the first left the minute
    assert 59_000 < await redis_client.pttl(keyspace.budget("acme")) <= 60_000


async def test_a_pause_holds_the_budget_and_ends_by_itself(redis_client: Redis) -> None:
    budget = Budgets(redis_client, 100, FakeClock(START)).of("acme")
    await budget.pause(2_000)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=0)
    assert 1_000 < caught.value.wait_ms <= 2_000
    assert isinstance(caught.value, RelayError)
    assert not await redis_client.exists(keyspace.budget("acme"))  # nothing taken while paused
    await redis_client.delete(keyspace.budget_pause("acme"))  # as when its time to live runs out
    await budget.acquire(max_wait_s=0)
    assert await budget.used_last_minute() == 1
