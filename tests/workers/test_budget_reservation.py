"""A poll's requests reserved from the account's budget in one call, at fixed clocks: the first request reserves
what the poll expects, the next ones spend it without asking Redis, and what is left is given back; a pause, or
the reservation lapsing, sends requests back to the window one by one."""

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from subscriptions.store import keyspace
from tests.conftest import FakeClock
from workers.budget import RESERVATION_MS, BudgetExhausted, Budgets

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


async def uses(redis: Redis) -> dict[str, float]:
    return dict(await redis.zrange(keyspace.budget("acme"), 0, -1, withscores=True))


async def test_the_first_request_reserves_what_the_poll_expects(redis_client: Redis) -> None:
    budget = Budgets(redis_client, 100, FakeClock(START)).of("acme")
    budget.expect(3)
    await budget.acquire(max_wait_s=0, priority="normal")
    reserved = await uses(redis_client)
    assert list(reserved.values()) == [START_MS + RESERVATION_MS] * 3  # counted a little longer than they last
    await budget.acquire(max_wait_s=0, priority="high")
    await budget.acquire(max_wait_s=0, priority="normal")
    assert await uses(redis_client) == reserved  # spent without a call
    await budget.acquire(max_wait_s=0)
    assert len(await uses(redis_client)) == 4  # the fourth from the window, as before
    assert budget.unspent() == []


async def test_what_the_poll_did_not_spend_is_handed_back(redis_client: Redis) -> None:
    budget = Budgets(redis_client, 100, FakeClock(START)).of("acme")
    budget.expect(5)
    await budget.acquire(max_wait_s=0)
    left = budget.unspent()
    assert len(left) == 4
    assert set(left) < set(await uses(redis_client))
    assert budget.unspent() == []  # handed back once


async def test_low_priority_requests_do_not_spend_the_reservation(redis_client: Redis) -> None:
    budget = Budgets(redis_client, 10, FakeClock(START)).of("acme")
    budget.expect(2)
    await budget.acquire(max_wait_s=0, priority="low")  # a sweep: its own share, one at a time
    assert len(await uses(redis_client)) == 1
    await budget.acquire(max_wait_s=0, priority="normal")
    assert len(await uses(redis_client)) == 3
    assert len(budget.unspent()) == 1


async def test_a_reservation_takes_no_more_than_the_priority_may_fill(redis_client: Redis) -> None:
    budget = Budgets(redis_client, 10, FakeClock(START)).of("acme")  # normal may fill 9
    budget.expect(20)
    for _ in range(9):
        await budget.acquire(max_wait_s=0, priority="normal")
    assert len(await uses(redis_client)) == 9
    with pytest.raises(BudgetExhausted):
        await budget.acquire(max_wait_s=0, priority="normal")
    await budget.acquire(max_wait_s=0, priority="high")  # high's share has one more
    assert len(await uses(redis_client)) == 10


async def test_a_pause_holds_the_requests_a_reservation_would_have_let_through(redis_client: Redis) -> None:
    clock = FakeClock(START)
    budget = Budgets(redis_client, 100, clock).of("acme")
    budget.expect(3)
    await budget.acquire(max_wait_s=0)
    await budget.pause(2_000)  # Brightpearl throttled the account
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(max_wait_s=0)
    assert 0 < caught.value.wait_ms <= 2_000
    assert len(budget.unspent()) == 2  # given back when the poll ends


async def test_a_reservation_lapses(redis_client: Redis) -> None:
    clock = FakeClock(START)
    budget = Budgets(redis_client, 100, clock).of("acme")
    budget.expect(3)
    await budget.acquire(max_wait_s=0)
    clock.advance(RESERVATION_MS / 1000)
    await budget.acquire(max_wait_s=0)  # too late to spend a reserved use: one from the window, stamped now
    assert sorted((await uses(redis_client)).values()) == [START_MS + RESERVATION_MS] * 4
    assert len(budget.unspent()) == 2
