"""Hints in Redis: offered ids wait for the account's poll, bring it forward unless a poll is under way, are
taken once, and are bounded: hints a minute, ids waiting."""

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.hints import HintLimits, Hints, Offered
from subscriptions.store.polls import Claim, PollPlan, Polls

NOW_MS = 1_800_000_000_000
AT = "2027-01-15T08:00:00Z"


async def due_ms(redis: Redis, code: str = "acme") -> float | None:
    return await redis.zscore(keyspace.POLLS, code)


async def scheduled(redis: Redis, at_ms: int) -> None:
    await redis.set(keyspace.account("acme"), "{}")
    await Polls(redis).save("acme", PollPlan(due_ms={"orders": at_ms}), idle_ms=at_ms, claim=None)


async def test_a_hint_waits_for_the_poll_which_it_brings_forward(redis_client: Redis) -> None:
    await scheduled(redis_client, NOW_MS + 60_000)
    hints = Hints(redis_client, HintLimits(coalesce_ms=30))
    assert await hints.offer("acme", [Offered("orders", [7, 8])], now_ms=NOW_MS, at=AT) == "ok"
    assert await due_ms(redis_client) == NOW_MS + 30
    assert await hints.pending("acme") == ({"orders"}, set())
    assert await redis_client.hget(keyspace.account_status("acme"), "hints:last_hint_at") == AT
    assert await hints.offer("acme", [Offered("orders", [8, 9])], now_ms=NOW_MS + 10, at=AT) == "ok"
    assert await due_ms(redis_client) == NOW_MS + 30  # never later: hints arriving together are read together
    assert await hints.take("acme", "orders", 2) in ([7, 8], [7, 9], [8, 9])
    assert len(await hints.take("acme", "orders", 10)) == 1
    assert await hints.take("acme", "orders", 10) == []
    assert await hints.pending("acme") == (set(), set())


async def test_a_hint_does_not_move_a_poll_under_way_which_is_due_again_when_it_ends(redis_client: Redis) -> None:
    await scheduled(redis_client, NOW_MS)
    polls = Polls(redis_client)
    [claim] = await polls.claim(now_ms=NOW_MS, lease_ms=10_000, limit=1)
    await Hints(redis_client).offer("acme", [Offered("stock", [3])], now_ms=NOW_MS + 5, at=AT)
    assert await due_ms(redis_client) == NOW_MS + 10_000  # the lease stands: no second claim can start
    plan = PollPlan(due_ms={"orders": NOW_MS + 60_000})
    assert await polls.save("acme", plan, idle_ms=NOW_MS + 60_000, claim=claim, hints_due_ms=NOW_MS + 100)
    assert await due_ms(redis_client) == NOW_MS + 100
    assert await polls.save("acme", plan, idle_ms=NOW_MS, claim=Claim("acme", "stale"), hints_due_ms=NOW_MS) is False


async def test_hints_a_minute_are_bounded_per_account(redis_client: Redis) -> None:
    await scheduled(redis_client, NOW_MS + 60_000)
    hints = Hints(redis_client, HintLimits(per_minute=3))
    answers = [await hints.offer("acme", [Offered("orders", [i])], now_ms=NOW_MS + i, at=AT) for i in range(5)]
    assert answers == ["ok", "ok", "ok", "limited", "limited"]
    assert sorted(await hints.take("acme", "orders", 10)) == [0, 1, 2]
    assert await hints.offer("acme", [Offered("orders", [9])], now_ms=NOW_MS + 60_001, at=AT) == "ok"


async def test_too_many_ids_ask_for_a_poll_of_the_whole_resource(redis_client: Redis) -> None:
    await scheduled(redis_client, NOW_MS + 60_000)
    hints = Hints(redis_client, HintLimits(max_pending=3))
    await hints.offer("acme", [Offered("products", [1, 2])], now_ms=NOW_MS, at=AT)
    await hints.offer("acme", [Offered("products", [3, 4])], now_ms=NOW_MS, at=AT)
    await hints.offer("acme", [Offered("stock", [], overflow=True)], now_ms=NOW_MS, at=AT)
    assert await hints.pending("acme") == ({"products"}, {"products", "stock"})
    assert await hints.take_overflow("acme") == {"products", "stock"}
    assert await hints.take_overflow("acme") == set()
    assert sorted(await hints.take("acme", "products", 10)) == [1, 2]


async def test_when_each_id_was_last_hinted_is_kept(redis_client: Redis) -> None:
    hints = Hints(redis_client)
    await hints.offer("acme", [Offered("orders", [1, 2])], now_ms=NOW_MS, at=AT)
    await hints.offer("acme", [Offered("orders", [2])], now_ms=NOW_MS + 500, at=AT)
    assert await hints.last_hinted("acme", "orders", [1, 2, 3]) == {1: NOW_MS, 2: NOW_MS + 500}


async def test_requests_spent_on_hints_are_counted_for_a_minute(redis_client: Redis) -> None:
    hints = Hints(redis_client)
    await hints.spent("acme", 3, now_ms=NOW_MS)
    await hints.spent("acme", 2, now_ms=NOW_MS + 30_000)
    assert await hints.spent_last_minute("acme", now_ms=NOW_MS + 30_000) == 5
    assert await hints.spent_last_minute("acme", now_ms=NOW_MS + 60_001) == 2


async def test_forgetting_an_account_removes_its_hints_only(redis_client: Redis) -> None:
    hints = Hints(redis_client)
    for code in ("acme", "acme2"):
        await hints.offer(code, [Offered("orders", [1])], now_ms=NOW_MS, at=AT)
    await hints.forget("acme")
    assert await hints.pending("acme") == (set(), set())
    assert await hints.pending("acme2") == ({"orders"}, set())
