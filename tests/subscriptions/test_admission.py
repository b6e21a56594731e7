"""Caps over every worker: slots taken by admission, freed by outcomes, parked deliveries back; a subscription's
own cap and rate, its account's cap over all its subscriptions, and one bad subscription refused on its own."""

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.admission import MAX_INTERVAL_MS, REFUSED, Admissions, Limits


async def claimed(redis: Redis, ids: list[str]) -> None:
    await redis.zadd(keyspace.DUE, dict.fromkeys(ids, 0))


async def test_released_slots_free_the_cap_and_bring_back_as_many_parked_deliveries(redis_client: Redis) -> None:
    admissions = Admissions(redis_client)
    ids = [f"dlv_{n:03}" for n in range(700)]
    await claimed(redis_client, ids)
    limits = Limits("acme", max_concurrency=600, rate_per_s=None, lease_ms=25_000)
    (admission,) = (await admissions.admit({"sub_a": (limits, ids)}, now_ms=1_000)).values()
    assert (admission.admitted, admission.parked) == (600, 100)
    assert await redis_client.zcard(keyspace.subscription_in_flight("sub_a")) == 600
    assert await redis_client.zcard(keyspace.account_in_flight("acme")) == 600
    assert await redis_client.zcard(keyspace.subscription_parked("sub_a")) == 100

    await admissions.release({("acme", "sub_a"): ids[:550]}, now_ms=2_000)  # more outcomes than one command takes
    assert await redis_client.zcard(keyspace.subscription_in_flight("sub_a")) == 50
    assert await redis_client.zcard(keyspace.account_in_flight("acme")) == 50
    assert sorted(await redis_client.zrangebyscore(keyspace.DUE, 2_000, 2_000)) == ids[600:]  # due again, now
    assert await redis_client.zcard(keyspace.subscription_parked("sub_a")) == 0
    assert not await redis_client.sismember(keyspace.PARKED, "sub_a")


async def test_an_account_holds_at_most_its_cap_however_many_subscriptions_it_has(redis_client: Redis) -> None:
    """Eight subscriptions of one account, each allowed 64 at once, share the account's 20 slots; another account's
    subscription is not held back by them at all."""
    admissions = Admissions(redis_client)
    wanted = {}
    for n in range(8):
        ids = [f"dlv_a{n}_{i:02}" for i in range(64)]
        await claimed(redis_client, ids)
        wanted[f"sub_a{n}"] = (Limits("attacker", 64, None, account_concurrency=20), ids)
    other = [f"dlv_b_{i:02}" for i in range(10)]
    await claimed(redis_client, other)
    wanted["sub_b"] = (Limits("victim", 32, None, account_concurrency=20), other)

    found = await admissions.admit(wanted, now_ms=1_000)
    assert sum(found[f"sub_a{n}"].admitted for n in range(8)) == 20
    assert sum(found[f"sub_a{n}"].parked for n in range(8)) == 8 * 64 - 20
    assert (found["sub_b"].admitted, found["sub_b"].parked) == (10, 0)
    assert await redis_client.zcard(keyspace.account_in_flight("attacker")) == 20


async def test_parked_for_the_account_come_back_when_any_of_its_slots_frees(redis_client: Redis) -> None:
    """Deliveries held back by their account's cap come back as soon as any subscription of the account finishes
    an attempt, not only their own subscription: one that has nothing under way is not left waiting."""
    admissions = Admissions(redis_client)
    first, second = ["dlv_1", "dlv_2"], ["dlv_3", "dlv_4"]
    await claimed(redis_client, first + second)
    limits = Limits("acme", 10, None, account_concurrency=2)
    found = await admissions.admit({"sub_a": (limits, first), "sub_b": (limits, second)}, now_ms=1_000)
    assert (found["sub_a"].admitted, found["sub_b"].admitted, found["sub_b"].parked) == (2, 0, 2)
    assert await redis_client.zrange(keyspace.account_parked("acme"), 0, -1) == second
    assert await redis_client.smembers(keyspace.PARKED_ACCOUNTS) == {"acme"}
    assert await admissions.unpark_account("acme", 2, now_ms=2_000) == 0  # the account is still full

    await admissions.release({("acme", "sub_a"): first[:1]}, now_ms=3_000)
    assert await redis_client.zrangebyscore(keyspace.DUE, 3_000, 3_000) == ["dlv_3"]  # one slot freed, one back
    await admissions.release({("acme", "sub_a"): first[1:]}, now_ms=4_000)
    assert await redis_client.zrangebyscore(keyspace.DUE, 4_000, 4_000) == ["dlv_4"]
    assert not await redis_client.exists(keyspace.account_parked("acme"))
    assert not await redis_client.smembers(keyspace.PARKED_ACCOUNTS)


async def test_leases_that_end_free_the_account_slots(redis_client: Redis) -> None:
    """A worker that dies never releases: its account slots free when their leases end, and the sweep finds them."""
    admissions = Admissions(redis_client)
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    limits = Limits("acme", 10, None, account_concurrency=1, lease_ms=5_000)
    found = await admissions.admit({"sub_a": (limits, ["dlv_1", "dlv_2"])}, now_ms=1_000)
    assert (found["sub_a"].admitted, found["sub_a"].parked) == (1, 1)
    assert await admissions.unpark_account("acme", 1, now_ms=5_000) == 0  # its lease has not ended yet
    assert await admissions.unpark_account("acme", 1, now_ms=7_000) == 1
    assert await redis_client.zrangebyscore(keyspace.DUE, 7_000, 7_000) == ["dlv_2"]


async def test_a_subscription_redis_cannot_admit_is_refused_alone(redis_client: Redis) -> None:
    """A subscription whose slots key holds something else fails its own deliveries; the batch's other
    subscriptions are admitted as usual, and nothing is written for the refused one."""
    admissions = Admissions(redis_client)
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    await redis_client.set(keyspace.subscription_in_flight("sub_bad"), "not a sorted set")
    found = await admissions.admit(
        {
            "sub_bad": (Limits("acme", 10, None), ["dlv_1"]),
            "sub_good": (Limits("acme", 10, None), ["dlv_2"]),
        },
        now_ms=1_000,
    )
    assert (found["sub_bad"].admitted, found["sub_bad"].error) == (0, REFUSED)
    assert (found["sub_good"].admitted, found["sub_good"].error) == (1, None)
    assert await redis_client.zrange(keyspace.account_in_flight("acme"), 0, -1) == ["dlv_2"]


async def test_limits_out_of_range_are_brought_within_what_delivery_can_honour(redis_client: Redis) -> None:
    """A rate of 1e-300 a second, stored before the API bounded it, made the script fail for the whole batch
    (its interval was no integer Redis could take). It is now one attempt every 100 s at the slowest."""
    assert Limits("acme", 1, 1e-300).interval_ms == MAX_INTERVAL_MS == 100_000
    assert Limits("acme", 0, None).cap == 1
    assert Limits("acme", 10**12, None, account_concurrency=-5).cap == 100_000
    admissions = Admissions(redis_client)
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    found = await admissions.admit({"sub_slow": (Limits("acme", 10, 1e-300), ["dlv_1", "dlv_2"])}, now_ms=1_000)
    assert (found["sub_slow"].admitted, found["sub_slow"].retry_at_ms) == (1, 101_000)
