"""The scripts that let a quiet poll cost three round trips, at fixed clocks: ``poll_open.lua`` (the claim renewed
and the account's state read at once), ``poll_plan.lua`` recording the poll's status and giving back its unspent
budget with its plan (all refused once the claim is lost), and ``sliding_window_reserve.lua`` (a poll's requests
taken from the budget in one call)."""

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.polls import Claim, PollPlan, Polls
from subscriptions.store.quotas import SlidingWindow
from subscriptions.store.records import Store
from tests.conftest import FakeClock
from tests.subscriptions.test_store import account

NOW_MS = 1_800_000_000_000


async def claimed(redis: Redis, clock: FakeClock) -> tuple[Polls, Claim]:
    await Store(redis).create_account(account("acme", clock), {"orders.created": '{"since": 1}'}, first_poll_ms=0)
    polls = Polls(redis)
    (claim,) = await polls.claim(now_ms=NOW_MS, lease_ms=10_000, limit=1)
    return polls, claim


async def test_opening_renews_the_claim_and_reads_the_accounts_state_at_once(
    redis_client: Redis, clock: FakeClock
) -> None:
    polls, claim = await claimed(redis_client, clock)
    await redis_client.hset(keyspace.account_status("acme"), mapping={"orders:error_since": "then", "other": "x"})
    await redis_client.sadd(keyspace.stock_dirty("acme"), 12, 3)
    opened = await polls.open(
        claim,
        until_ms=NOW_MS + 30_000,
        positions=["orders.created", "orders.updated"],
        fields=["orders:error_since", "auth_state"],
    )
    assert opened is not None
    assert await redis_client.zscore(keyspace.POLLS, "acme") == NOW_MS + 30_000  # the lease renewed
    assert opened.account_json == await redis_client.get(keyspace.account("acme"))
    assert opened.plan == await polls.plan("acme")
    assert opened.positions == {"orders.created": '{"since": 1}', "orders.updated": None}
    assert opened.status == {"orders:error_since": "then"}  # fields not set are absent
    assert opened.stock_dirty == [3, 12]
    assert not opened.hints_waiting
    await redis_client.sadd(keyspace.hint_overflow("acme"), "orders")
    assert (await polls.open(claim, until_ms=NOW_MS + 30_000)) is not None
    assert (await polls.open(claim, until_ms=NOW_MS + 30_000)).hints_waiting  # type: ignore[union-attr]


async def test_a_claim_taken_over_opens_nothing_and_leaves_the_lease_alone(
    redis_client: Redis, clock: FakeClock
) -> None:
    polls, first = await claimed(redis_client, clock)
    (second,) = await polls.claim(now_ms=NOW_MS + 10_000, lease_ms=10_000, limit=1)  # the first outlived its lease
    assert await polls.open(first, until_ms=NOW_MS + 60_000, positions=["orders.created"]) is None
    assert await redis_client.zscore(keyspace.POLLS, "acme") == NOW_MS + 20_000  # the second's lease
    assert await polls.open(second, until_ms=NOW_MS + 25_000) is not None


async def test_a_claim_just_made_opens_with_reads_alone(redis_client: Redis, clock: FakeClock) -> None:
    polls, claim = await claimed(redis_client, clock)
    opened = await polls.open(claim, until_ms=None, positions=["orders.created"])
    assert opened is not None
    assert opened.positions == {"orders.created": '{"since": 1}'}
    assert await redis_client.zscore(keyspace.POLLS, "acme") == NOW_MS + 10_000  # the claim's own lease, untouched


async def test_a_removed_account_refuses_its_claims_plan(redis_client: Redis, clock: FakeClock) -> None:
    """Removing an account removes its claim's owner key with it: the plan of a poll that was under way is not
    written back, and the account does not come back to the polls."""
    polls, claim = await claimed(redis_client, clock)
    await Store(redis_client).delete_account("acme")
    assert await polls.save("acme", PollPlan(due_ms={"orders": NOW_MS}), idle_ms=0, claim=claim) is False
    assert await redis_client.exists(keyspace.POLLS, keyspace.poll_plan("acme")) == 0


async def test_a_removed_account_opens_without_a_record(redis_client: Redis, clock: FakeClock) -> None:
    polls, claim = await claimed(redis_client, clock)
    await redis_client.delete(keyspace.account("acme"))
    opened = await polls.open(claim, until_ms=NOW_MS + 1)
    assert opened is not None
    assert opened.account_json is None


async def test_the_poll_records_its_status_and_gives_back_its_unspent_budget_with_its_plan(
    redis_client: Redis, clock: FakeClock
) -> None:
    polls, first = await claimed(redis_client, clock)
    window = keyspace.budget("acme")
    await redis_client.zadd(window, {"spent": NOW_MS, "unspent-1": NOW_MS, "unspent-2": NOW_MS})
    status = {"last_poll_at": "2026-11-26T10:00:00Z", "orders:caught_up_at": "2026-11-26T10:00:00Z"}
    (second,) = await polls.claim(now_ms=NOW_MS + 10_000, lease_ms=10_000, limit=1)  # the first lost its claim
    plan = PollPlan(due_ms={"orders": NOW_MS + 5})
    assert not await polls.save("acme", plan, idle_ms=1, claim=first, status=status, unspent=["unspent-1"])
    assert await redis_client.exists(keyspace.account_status("acme")) == 0  # refused with the plan
    assert await redis_client.zcard(window) == 3
    assert await polls.save("acme", plan, idle_ms=1, claim=second, status=status, unspent=["unspent-1", "unspent-2"])
    assert await redis_client.hgetall(keyspace.account_status("acme")) == status
    assert await redis_client.zrange(window, 0, -1) == ["spent"]
    assert await polls.plan("acme") == plan


async def test_a_reservation_takes_what_the_window_has_room_for_stamped_ahead(redis_client: Redis) -> None:
    window = SlidingWindow(redis_client, "w", limit=5, window_ms=60_000, pause_key="p")
    await redis_client.zadd("w", {"old": NOW_MS - 60_001, "recent": NOW_MS - 1_000})
    taken = await window.take_many(NOW_MS, 3, stamp_ms=NOW_MS + 2_000)
    assert len(taken) == 3
    assert dict(await redis_client.zrange("w", 0, -1, withscores=True)) == {
        "recent": NOW_MS - 1_000,
        **dict.fromkeys(taken, NOW_MS + 2_000),
    }  # the use that left the window is gone; the new ones count until two seconds after the minute
    assert 61_000 < await redis_client.pttl("w") <= 62_000
    assert len(await window.take_many(NOW_MS, 3)) == 1  # room for one more
    assert await window.take_many(NOW_MS, 3) == []  # full
    assert await window.take_many(NOW_MS, 0) == []
    await redis_client.zrem("w", *taken)
    await redis_client.set("p", "1", px=5_000)
    assert await window.take_many(NOW_MS, 2) == []  # paused: nothing taken
    assert await redis_client.zcard("w") == 2
