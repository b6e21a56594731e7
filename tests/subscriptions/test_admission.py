"""Subscriptions' caps over every worker: slots taken by admission, freed by outcomes, parked deliveries back."""

from redis.asyncio import Redis

from subscriptions import keys
from subscriptions.admission import Admissions, Limits


async def test_released_slots_free_the_cap_and_bring_back_as_many_parked_deliveries(redis_client: Redis) -> None:
    admissions = Admissions(redis_client)
    ids = [f"dlv_{n:03}" for n in range(700)]
    await redis_client.zadd(keys.DUE, dict.fromkeys(ids, 0))  # claimed
    limits = Limits(max_concurrency=600, rate_per_s=None, lease_ms=25_000)
    (admission,) = (await admissions.admit({"sub_a": (limits, ids)}, now_ms=1_000)).values()
    assert (admission.admitted, admission.parked) == (600, 100)
    assert await redis_client.zcard(keys.subscription_in_flight("sub_a")) == 600
    assert await redis_client.zcard(keys.subscription_parked("sub_a")) == 100

    await admissions.release({"sub_a": ids[:550]}, now_ms=2_000)  # more outcomes than one command takes
    assert await redis_client.zcard(keys.subscription_in_flight("sub_a")) == 50
    assert sorted(await redis_client.zrangebyscore(keys.DUE, 2_000, 2_000)) == ids[600:]  # due again, now
    assert await redis_client.zcard(keys.subscription_parked("sub_a")) == 0
    assert not await redis_client.sismember(keys.PARKED, "sub_a")
