"""Pacing by the account's shared pool: when other apps drain it, the relay slows down before Brightpearl has to
answer 503. The pause is a pure function of what an answer says; the sandbox drains the pool as another app
would, and every process sees the pause in Redis."""

import time

import pytest
from redis.asyncio import Redis

from subscriptions.store import keyspace
from tests.harness import Harness
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.budget import RequestBudget, pacing_pause_ms


@pytest.mark.parametrize(
    ("remaining", "period_ms", "own_left", "pause_ms"),
    [
        (199, 59_000, 100, 0),  # a full pool
        (30, 59_000, 100, 0),  # the reserve still there
        (29, 30_000, 100, 1_000),  # below it: what is left spread over the period
        (14, 30_000, 100, 2_000),
        (0, 30_000, 100, 30_000),  # nothing left: the whole period
        (0, None, 100, 5_000),  # no period given: five seconds
        (0, 120_000, 100, 60_000),  # never more than a minute
        (5, -10, 100, 0),  # a nonsense period holds nothing
        (10, 30_000, 10, 0),  # the relay's own budget stops it first: nobody else is draining the pool
        (10, 30_000, 11, 2_727),
        (-1, 30_000, 100, 30_000),  # a negative count is taken as none left
    ],
)
def test_pacing_pause(remaining: int, period_ms: int | None, own_left: int, pause_ms: int) -> None:
    assert pacing_pause_ms(remaining, period_ms, own_left) == pause_ms


async def test_a_pool_drained_by_other_apps_pauses_every_process(harness: Harness, redis_client: Redis) -> None:
    account = harness.sandbox.account()
    budget = RequestBudget(redis_client, "acme", 100, now_ms=lambda: int(time.time() * 1000))
    credentials = Credentials(harness.sandbox.base_url(), account.app_ref, account.account_token)
    client = BrightpearlClient(harness.http, credentials, budget=budget)
    await client.get("order-service/order-status")
    assert await redis_client.pttl(keyspace.budget_pause("acme")) < 0  # a full pool: no pause
    drained = await harness.sandbox_call("POST", "/spend", {"requests": 180})  # another app's burst
    await client.get("order-service/order-status")
    remaining = drained["requests_remaining"] - 1
    assert client.rate.requests_remaining == remaining
    pause_ms = await redis_client.pttl(keyspace.budget_pause("acme"))
    expected_ms = client.rate.next_throttle_period_ms // (remaining + 1)  # type: ignore[operator]
    assert expected_ms - 500 < pause_ms <= expected_ms
    assert (await harness.sandbox_call("GET", "/requests"))["throttled"] == 0
