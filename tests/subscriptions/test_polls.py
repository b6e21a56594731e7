"""Polls: the claim that owns a poll, its renewal, and the plan stored with the account's next poll.

The three scripts are run directly against a real Redis with fixed times and tokens; then ``Polls`` over them.
"""

import asyncio

import pytest
from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.polls import CLAIM, RENEW, REPORT, SAVE_PLAN, Claim, PollBacklog, PollPlan, Polls
from subscriptions.store.records import Store
from tests.conftest import FakeClock
from tests.subscriptions.test_store import account

NOW_MS = 1_800_000_000_000


async def scores(redis: Redis) -> dict[str, float]:
    return dict(await redis.zrange(keyspace.POLLS, 0, -1, withscores=True))


# the scripts, directly -------------------------------------------------------------------------------------


async def test_the_claim_script_takes_only_candidates_still_due(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {"due": NOW_MS - 5, "now": NOW_MS, "later": NOW_MS + 1})
    await redis_client.set(keyspace.poll_owner("later"), "someone-else")
    members = ["due", "now", "later", "gone"]
    answer = await CLAIM.run(
        redis_client,
        [keyspace.POLLS, *map(keyspace.poll_owner, members)],
        {
            "now_ms": NOW_MS,
            "lease_ms": 10_000,
            "limit": 4,
            "members": members,
            "tokens": ["t1", "t2", "t3", "t4"],
            "next": True,
        },
    )
    claimed, first = answer
    assert claimed == ["due", "t1", "now", "t2"]
    assert int(float(first)) == NOW_MS + 1  # asked for: the earliest account left, the one not due yet
    assert await scores(redis_client) == {"due": NOW_MS + 10_000, "now": NOW_MS + 10_000, "later": NOW_MS + 1}
    assert await redis_client.mget([keyspace.poll_owner(m) for m in members]) == ["t1", "t2", "someone-else", None]
    assert await redis_client.zscore(keyspace.POLLS, "gone") is None  # a candidate removed meanwhile is not added


async def test_the_claim_script_stops_at_its_limit(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {"a": NOW_MS - 5, "b": NOW_MS - 4, "c": NOW_MS - 3})
    members = ["c", "a", "b"]
    answer = await CLAIM.run(
        redis_client,
        [keyspace.POLLS, *map(keyspace.poll_owner, members)],
        {"now_ms": NOW_MS, "lease_ms": 10_000, "limit": 2, "members": members, "tokens": ["t1", "t2", "t3"]},
    )
    assert answer == [["c", "t1", "a", "t2"], None]  # in the order given, two of them (and no next, not asked)
    assert await redis_client.zscore(keyspace.POLLS, "b") == NOW_MS - 4


async def test_the_renew_script_extends_only_the_owners_lease(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.POLLS, {"acme": NOW_MS})
    await redis_client.set(keyspace.poll_owner("acme"), "mine")
    script_keys = [keyspace.POLLS, keyspace.poll_owner("acme")]
    assert await RENEW.run(redis_client, script_keys, {"member": "acme", "token": "stale", "until_ms": 1}) == 0
    assert await scores(redis_client) == {"acme": NOW_MS}
    assert await RENEW.run(redis_client, script_keys, {"member": "acme", "token": "mine", "until_ms": NOW_MS + 7}) == 1
    assert await scores(redis_client) == {"acme": NOW_MS + 7}


async def test_the_plan_script_writes_plan_and_score_together_while_the_claim_holds(redis_client: Redis) -> None:
    script_keys = [keyspace.POLLS, keyspace.poll_plan("acme"), keyspace.poll_owner("acme"), keyspace.account("acme")]

    def args(token: str | None, next_ms: int) -> dict[str, object]:
        return {"member": "acme", "plan": '{"due_ms": {}}', "next_ms": next_ms, "token": token}

    assert await SAVE_PLAN.run(redis_client, script_keys, args(None, 5)) == 0  # no such account: nothing
    assert await redis_client.exists(keyspace.poll_plan("acme"), keyspace.POLLS) == 0
    await redis_client.set(keyspace.account("acme"), "{}")
    await redis_client.set(keyspace.poll_owner("acme"), "mine")
    assert await SAVE_PLAN.run(redis_client, script_keys, args("stale", 6)) == 0  # taken over: nothing
    assert await redis_client.exists(keyspace.poll_plan("acme"), keyspace.POLLS) == 0
    assert await SAVE_PLAN.run(redis_client, script_keys, args(None, 7)) == 1  # unfenced: the owner stays
    assert await scores(redis_client) == {"acme": 7}
    assert await redis_client.get(keyspace.poll_owner("acme")) == "mine"
    assert await SAVE_PLAN.run(redis_client, script_keys, args("mine", NOW_MS)) == 1  # the owner's: its claim ends
    assert await scores(redis_client) == {"acme": NOW_MS}
    assert await redis_client.get(keyspace.poll_plan("acme")) == '{"due_ms": {}}'
    assert await redis_client.exists(keyspace.poll_owner("acme")) == 0


# the plan, pure ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due_ms", "idle_ms", "next_ms"),
    [
        ({"orders": 5, "stock": 3}, 100, 3),
        ({"orders": 500}, 100, 500),
        ({}, 100, 100),  # nothing to poll: the idle time
    ],
)
def test_the_next_poll_is_the_earliest_resource(due_ms: dict[str, int], idle_ms: int, next_ms: int) -> None:
    assert PollPlan(due_ms=due_ms).next_poll_ms(idle_ms) == next_ms


def test_making_resources_due_keeps_what_was_learned() -> None:
    plan = PollPlan(due_ms={"orders": 9, "stock": 9}, requests_per_poll={"orders": 2.5}, interval_s={"orders": 5.0})
    due = plan.due_at(["orders", "contacts"], 1)
    assert due == PollPlan(
        due_ms={"orders": 1, "contacts": 1}, requests_per_poll={"orders": 2.5}, interval_s={"orders": 5.0}
    )
    assert plan.due_ms == {"orders": 9, "stock": 9}  # (a copy)


@pytest.mark.parametrize(
    ("due_ms", "until_ms", "postponed"),
    [
        ({"orders": 5, "stock": 50}, 20, {"orders": 20, "stock": 50}),
        ({}, 20, {}),
    ],
)
def test_postponing_moves_only_what_is_due_sooner(
    due_ms: dict[str, int], until_ms: int, postponed: dict[str, int]
) -> None:
    assert PollPlan(due_ms=due_ms).postponed(until_ms).due_ms == postponed


# Polls over the scripts -----------------------------------------------------------------------------------


async def test_registration_schedules_the_first_poll_from_the_plan(redis_client: Redis, clock: FakeClock) -> None:
    store = Store(redis_client)
    await store.create_account(account("acme", clock), {}, first_poll_ms=1234)
    assert await scores(redis_client) == {"acme": 1234}
    assert await Polls(redis_client).plan("acme") == PollPlan(due_ms={"orders": 1234})
    await store.delete_account("acme")
    assert await redis_client.exists(keyspace.POLLS, keyspace.poll_plan("acme")) == 0


async def test_a_change_makes_every_resource_due_and_keeps_the_costs(redis_client: Redis, clock: FakeClock) -> None:
    store, polls = Store(redis_client), Polls(redis_client)
    await store.create_account(account("acme", clock), {}, first_poll_ms=0)
    learned = PollPlan(due_ms={"orders": NOW_MS}, requests_per_poll={"orders": 3.0}, interval_s={"orders": 6.0})
    assert await polls.save("acme", learned, idle_ms=0, claim=None)
    await store.save_account(account("acme", clock), {}, first_poll_ms=77)
    assert await polls.plan("acme") == learned.model_copy(update={"due_ms": {"orders": 77}})
    assert await scores(redis_client) == {"acme": 77}


async def test_each_due_poll_is_claimed_once(redis_client: Redis) -> None:
    polls = Polls(redis_client)
    await redis_client.zadd(keyspace.POLLS, {f"a{n}": NOW_MS - n for n in range(20)})
    batches = await asyncio.gather(*(polls.claim(now_ms=NOW_MS, lease_ms=10_000, limit=100) for _ in range(4)))
    claims = [claim for batch in batches for claim in batch]
    assert sorted(c.code for c in claims) == sorted(f"a{n}" for n in range(20))
    assert len({c.token for c in claims}) == 20
    for claim in claims:
        assert await redis_client.get(claim.fence.key) == claim.token
    assert await polls.claim(now_ms=NOW_MS + 9_999, lease_ms=10_000, limit=100) == []  # leased
    again = await polls.claim(now_ms=NOW_MS + 10_000, lease_ms=10_000, limit=100)  # the leases ended
    assert len(again) == 20
    assert not {c.token for c in again} & {c.token for c in claims}


async def test_a_claim_taken_over_can_neither_renew_nor_plan(redis_client: Redis, clock: FakeClock) -> None:
    store, polls = Store(redis_client), Polls(redis_client)
    await store.create_account(account("acme", clock), {}, first_poll_ms=0)
    (first,) = await polls.claim(now_ms=NOW_MS, lease_ms=10_000, limit=10)
    (second,) = await polls.claim(now_ms=NOW_MS + 10_000, lease_ms=10_000, limit=10)  # the first outlived its lease
    assert not await polls.renew(first, until_ms=NOW_MS + 30_000)
    assert not await polls.save("acme", PollPlan(), idle_ms=1, claim=first)
    assert await scores(redis_client) == {"acme": NOW_MS + 20_000}  # the second's lease, untouched
    assert await polls.renew(second, until_ms=NOW_MS + 30_000)
    assert await polls.save("acme", PollPlan(due_ms={"orders": 5}), idle_ms=1, claim=second)
    assert await scores(redis_client) == {"acme": 5}
    assert await polls.plan("acme") == PollPlan(due_ms={"orders": 5})
    assert not await polls.renew(second, until_ms=NOW_MS)  # its poll ended with the plan: so did its claim
    assert Claim("acme", "x").fence.key == keyspace.poll_owner("acme")


async def test_the_status_script_records_only_for_the_owner(redis_client: Redis) -> None:
    script_keys = [keyspace.poll_owner("acme"), keyspace.account_status("acme")]
    await redis_client.set(keyspace.poll_owner("acme"), "mine")
    fields = {"last_poll_at": "2026-11-26T10:00:00Z", "last_error": ""}
    assert await REPORT.run(redis_client, script_keys, {"token": "stale", "fields": fields}) == 0
    assert await redis_client.exists(keyspace.account_status("acme")) == 0
    assert await REPORT.run(redis_client, script_keys, {"token": "mine", "fields": fields}) == 1
    assert await redis_client.hgetall(keyspace.account_status("acme")) == fields


async def test_the_backlog_counts_the_due_polls_no_worker_has_claimed(redis_client: Redis) -> None:
    polls = Polls(redis_client)
    assert await polls.backlog(now_ms=NOW_MS) == PollBacklog(due=0, oldest_due_age_s=0.0)  # no account at all
    await redis_client.zadd(keyspace.POLLS, {"later": NOW_MS + 5_000})
    assert await polls.backlog(now_ms=NOW_MS) == PollBacklog(due=0, oldest_due_age_s=0.0)  # none due yet
    await redis_client.zadd(keyspace.POLLS, {"old": NOW_MS - 42_500, "new": NOW_MS - 1_000, "now": NOW_MS})
    assert await polls.backlog(now_ms=NOW_MS) == PollBacklog(due=3, oldest_due_age_s=42.5)
    # One of them, picked among the oldest at random so that workers do not collide, is now leased to a worker.
    (claim,) = await polls.claim(now_ms=NOW_MS, lease_ms=10_000, limit=1)
    ages = {"old": 42.5, "new": 1.0, "now": 0.0}
    left = max(age for code, age in ages.items() if code != claim.code)
    assert await polls.backlog(now_ms=NOW_MS) == PollBacklog(due=2, oldest_due_age_s=left)
    assert await polls.backlog(now_ms=NOW_MS + 10_000) == PollBacklog(
        due=4, oldest_due_age_s=left + 10.0
    )  # lease ended
