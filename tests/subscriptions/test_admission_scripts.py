"""The admission scripts run directly against Redis with fixed clocks: what ``admit.lua``, ``release_slots.lua`` and
``unpark.lua`` write and answer, the rate limit's branch included (held deliveries, their due times, and one
more let through each interval as ``now_ms`` advances)."""

from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from subscriptions.store import admission, keyspace
from subscriptions.store.admission import Limits, admit_call
from subscriptions.store.lua import Script

ADMIT = Script.beside(admission.__file__, "admit.lua")
RELEASE = Script.beside(admission.__file__, "release_slots.lua")
UNPARK = Script.beside(admission.__file__, "unpark.lua")


async def admit(redis: Redis, wanted: dict[str, tuple[Limits, Sequence[str]]], now_ms: int) -> list[int]:
    return [int(n) for n in await ADMIT.run(redis, *admit_call(wanted, now_ms))]


async def claimed(redis: Redis, ids: Sequence[str], due_ms: int = 0) -> None:
    await redis.zadd(keyspace.DUE, dict.fromkeys(ids, due_ms))


def test_admit_call_declares_every_key_once_and_names_each_by_its_place() -> None:
    two_of_acme = {
        "sub_a": (Limits("acme", 2, 10.0, account_concurrency=5, lease_ms=1_000), ["dlv_1", "dlv_2"]),
        "sub_b": (Limits("acme", 200_000, None, account_concurrency=5), ["dlv_3"]),
        "sub_c": (Limits("beta", 1, None), []),
    }
    script_keys, args = admit_call(two_of_acme, 5_000)
    assert script_keys == [
        keyspace.DUE,
        keyspace.PARKED,
        keyspace.PARKED_ACCOUNTS,
        keyspace.subscription_in_flight("sub_a"),
        keyspace.subscription_rate("sub_a"),
        keyspace.subscription_parked("sub_a"),
        keyspace.account_in_flight("acme"),
        keyspace.account_parked("acme"),
        keyspace.subscription_in_flight("sub_b"),
        keyspace.subscription_rate("sub_b"),
        keyspace.subscription_parked("sub_b"),
        keyspace.subscription_in_flight("sub_c"),
        keyspace.subscription_rate("sub_c"),
        keyspace.subscription_parked("sub_c"),
        keyspace.account_in_flight("beta"),
        keyspace.account_parked("beta"),
    ]
    a, b, c = args["subscriptions"]
    assert args["now_ms"] == 5_000
    assert a == {
        "id": "sub_a",
        "account": "acme",
        "cap": 2,
        "account_cap": 5,
        "interval_ms": 100,
        "lease_end_ms": 6_000,
        "deliveries": ["dlv_1", "dlv_2"],
        "keys": {"in_flight": 4, "rate": 5, "parked": 6, "account_in_flight": 7, "account_parked": 8},
    }
    assert (b["cap"], b["interval_ms"], b["lease_end_ms"]) == (100_000, 0, 30_000)  # within bounds; default lease
    assert b["keys"] == {"in_flight": 9, "rate": 10, "parked": 11, "account_in_flight": 7, "account_parked": 8}
    assert c["keys"] == {"in_flight": 12, "rate": 13, "parked": 14, "account_in_flight": 15, "account_parked": 16}
    for item in args["subscriptions"]:  # every key a subscription names is the one the layout says
        named = {role: script_keys[index - 1] for role, index in item["keys"].items()}
        assert named["in_flight"] == keyspace.subscription_in_flight(item["id"])
        assert named["account_parked"] == keyspace.account_parked(item["account"])


RATE = Limits("acme", 100, 10.0, lease_ms=5_000)  # one attempt every 100 ms


@pytest.mark.parametrize(
    ("now_ms", "answer", "next_ms"),
    [
        (1_000, [1, 0, 1_100], 1_100),  # the first goes at once; the rest may go from 1,100, spaced by 100 ms
        (1_050, [0, 0, 1_100], 1_100),  # too early: none goes, the limit's time unchanged
        (1_100, [1, 0, 1_200], 1_200),  # one interval later, one more
        (1_250, [1, 0, 1_350], 1_350),  # late: one goes at once and the next is spaced from now
        (5_000, [1, 0, 5_100], 5_100),  # idle for long: still one, no burst saved up
    ],
)
async def test_the_rate_limit_lets_one_through_each_interval(
    redis_client: Redis, now_ms: int, answer: list[int], next_ms: int
) -> None:
    ids = [f"dlv_{n}" for n in range(5)]
    await claimed(redis_client, ids)
    history = [1_000, 1_100, 1_250]  # the attempts already let through before ``now_ms``, each at its own time
    for earlier_ms in [t for t in history if t < now_ms]:
        await redis_client.zadd(keyspace.subscription_in_flight("sub_a"), {f"before_{earlier_ms}": earlier_ms + 5_000})
    if now_ms > 1_000:  # where the limit stands after the attempts before (as the earlier rows left it)
        await redis_client.set(keyspace.subscription_rate("sub_a"), max(t for t in history if t < now_ms) + 100)

    assert await admit(redis_client, {"sub_a": (RATE, ids)}, now_ms) == answer
    assert int(await redis_client.get(keyspace.subscription_rate("sub_a"))) == next_ms
    # the limit's time outlives its next slot by a second, then goes
    assert next_ms - now_ms < await redis_client.pttl(keyspace.subscription_rate("sub_a")) <= next_ms - now_ms + 1_000
    admitted = answer[0]
    flight = await redis_client.zrangebyscore(keyspace.subscription_in_flight("sub_a"), now_ms + 5_000, now_ms + 5_000)
    assert flight == ids[:admitted]  # slots held until the lease ends
    assert await redis_client.zcard(keyspace.DUE) == len(ids)  # held ones stay due (the dispatcher moves them)
    assert not await redis_client.exists(keyspace.subscription_parked("sub_a"))


async def test_held_deliveries_go_one_by_one_as_the_clock_advances(redis_client: Redis) -> None:
    """Asked again as the clock advances, the held deliveries go one an interval, at the due times given."""
    ids = [f"dlv_{n}" for n in range(4)]
    await claimed(redis_client, ids)
    sent = 0
    for now_ms, answer in [
        (10_000, [1, 0, 10_100]),
        (10_099, [0, 0, 10_100]),
        (10_100, [1, 0, 10_200]),
        (10_200, [1, 0, 10_300]),
        (10_300, [1, 0, 0]),  # the last one: none left to hold
    ]:
        assert await admit(redis_client, {"sub_a": (RATE, ids[sent:])}, now_ms) == answer
        sent += answer[0]
    assert await redis_client.zrange(keyspace.subscription_in_flight("sub_a"), 0, -1, withscores=True) == [
        (dlv, at_ms + 5_000.0) for dlv, at_ms in zip(ids, [10_000, 10_100, 10_200, 10_300], strict=True)
    ]


async def test_a_full_cap_parks_before_the_rate_is_asked(redis_client: Redis) -> None:
    ids = ["dlv_1", "dlv_2", "dlv_3"]
    await claimed(redis_client, ids)
    await redis_client.zadd(keyspace.subscription_in_flight("sub_a"), {"old_1": 500, "old_2": 9_000})  # old_1 expired
    limits = Limits("acme", 2, 10.0, lease_ms=5_000)
    assert await admit(redis_client, {"sub_a": (limits, ids)}, 1_000) == [1, 2, 0]
    assert await redis_client.zrange(keyspace.subscription_in_flight("sub_a"), 0, -1, withscores=True) == [
        ("dlv_1", 6_000.0),
        ("old_2", 9_000.0),
    ]
    assert await redis_client.zrange(keyspace.subscription_parked("sub_a"), 0, -1, withscores=True) == [
        ("dlv_2", 1_000.0),
        ("dlv_3", 1_000.0),
    ]
    assert await redis_client.zrange(keyspace.DUE, 0, -1) == ["dlv_1"]  # parked ones left the due set
    assert await redis_client.smembers(keyspace.PARKED) == {"sub_a"}
    assert await redis_client.zrange(keyspace.account_in_flight("acme"), 0, -1) == ["dlv_1"]
    assert not await redis_client.exists(keyspace.PARKED_ACCOUNTS)


async def test_an_account_cap_counts_every_subscription_of_the_account(redis_client: Redis) -> None:
    await claimed(redis_client, ["dlv_1", "dlv_2", "dlv_3", "dlv_4"])
    await redis_client.zadd(keyspace.account_in_flight("acme"), {"expired": 999, "held": 50_000})
    acme = Limits("acme", 10, None, account_concurrency=3)
    wanted: dict[str, tuple[Limits, Sequence[str]]] = {
        "sub_a": (acme, ["dlv_1"]),
        "sub_b": (acme, ["dlv_2", "dlv_3"]),
        "sub_c": (Limits("beta", 10, None, account_concurrency=1), ["dlv_4"]),
    }
    assert await admit(redis_client, wanted, 1_000) == [1, 0, 0, 1, 1, 0, 1, 0, 0]
    assert await redis_client.zrange(keyspace.account_in_flight("acme"), 0, -1) == ["dlv_1", "dlv_2", "held"]
    assert await redis_client.zrange(keyspace.account_parked("acme"), 0, -1) == ["dlv_3"]
    assert await redis_client.smembers(keyspace.PARKED_ACCOUNTS) == {"acme"}
    assert not await redis_client.exists(keyspace.PARKED)
    assert await redis_client.zrange(keyspace.DUE, 0, -1) == ["dlv_1", "dlv_2", "dlv_4"]


async def set_wrong(redis: Redis, key: str) -> None:
    await redis.hset(key, "not", "this type")  # a hash where the script expects a sorted set or a string


@pytest.mark.parametrize(
    "wrong_key",
    [
        keyspace.subscription_in_flight("sub_bad"),
        keyspace.subscription_rate("sub_bad"),
        keyspace.subscription_parked("sub_bad"),
        keyspace.account_in_flight("bad"),
        keyspace.account_parked("bad"),
    ],
)
async def test_a_key_of_another_type_refuses_its_subscription_alone(redis_client: Redis, wrong_key: str) -> None:
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    await set_wrong(redis_client, wrong_key)
    wanted: dict[str, tuple[Limits, Sequence[str]]] = {
        "sub_bad": (Limits("bad", 1, 10.0, account_concurrency=1), ["dlv_1"]),
        "sub_good": (Limits("good", 1, 10.0), ["dlv_2"]),
    }
    assert await admit(redis_client, wanted, 1_000) == [-1, 0, 0, 1, 0, 0]
    bad_keys = [
        keyspace.subscription_in_flight("sub_bad"),
        keyspace.subscription_rate("sub_bad"),
        keyspace.subscription_parked("sub_bad"),
        keyspace.account_in_flight("bad"),
        keyspace.account_parked("bad"),
    ]
    for key in bad_keys:  # nothing of the refused one written
        assert await redis_client.type(key) == ("hash" if key == wrong_key else "none")
    assert await redis_client.zrange(keyspace.DUE, 0, -1) == ["dlv_1", "dlv_2"]
    assert await redis_client.zrange(keyspace.subscription_in_flight("sub_good"), 0, -1) == ["dlv_2"]
    assert await redis_client.get(keyspace.subscription_rate("sub_good")) == "1100"


async def test_limits_of_the_wrong_type_refuse_their_subscription_alone(redis_client: Redis) -> None:
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    script_keys, args = admit_call(
        {"sub_bad": (Limits("acme", 1, None), ["dlv_1"]), "sub_good": (Limits("acme", 1, None), ["dlv_2"])}, 1_000
    )
    args["subscriptions"][0]["cap"] = "1"
    assert await ADMIT.run(redis_client, script_keys, args) == [-1, 0, 0, 1, 0, 0]


async def release(redis: Redis, holder: tuple[str, str], ids: list[str], now_ms: int) -> int:
    account, sub_id = holder
    slot_keys = [
        keyspace.subscription_in_flight(sub_id),
        keyspace.subscription_parked(sub_id),
        keyspace.DUE,
        keyspace.PARKED,
        keyspace.account_in_flight(account),
        keyspace.account_parked(account),
        keyspace.PARKED_ACCOUNTS,
    ]
    args: dict[str, Any] = {"subscription": sub_id, "account": account, "now_ms": now_ms, "deliveries": ids}
    return int(await RELEASE.run(redis, slot_keys, args))


async def test_release_frees_slots_and_brings_back_as_many_parked_of_each_kind(redis_client: Redis) -> None:
    await redis_client.zadd(keyspace.subscription_in_flight("sub_a"), {"dlv_1": 9_000, "dlv_2": 9_000, "dlv_3": 9_000})
    await redis_client.zadd(keyspace.account_in_flight("acme"), {"dlv_1": 9_000, "dlv_2": 9_000, "dlv_x": 9_000})
    await redis_client.zadd(keyspace.subscription_parked("sub_a"), {"p_1": 100, "p_2": 200, "p_3": 300})
    await redis_client.zadd(keyspace.account_parked("acme"), {"q_1": 100})
    await redis_client.sadd(keyspace.PARKED, "sub_a", "sub_other")
    await redis_client.sadd(keyspace.PARKED_ACCOUNTS, "acme")

    assert await release(redis_client, ("acme", "sub_a"), ["dlv_1", "dlv_2"], 2_000) == 3
    assert await redis_client.zrange(keyspace.subscription_in_flight("sub_a"), 0, -1) == ["dlv_3"]
    assert await redis_client.zrange(keyspace.account_in_flight("acme"), 0, -1) == ["dlv_x"]
    assert await redis_client.zrange(keyspace.DUE, 0, -1, withscores=True) == [
        ("p_1", 2_000.0),
        ("p_2", 2_000.0),
        ("q_1", 2_000.0),
    ]  # two freed: the two oldest parked for the subscription, and the one parked for the account
    assert await redis_client.zrange(keyspace.subscription_parked("sub_a"), 0, -1) == ["p_3"]
    assert await redis_client.smembers(keyspace.PARKED) == {"sub_a", "sub_other"}  # it still has one parked
    assert not await redis_client.exists(keyspace.PARKED_ACCOUNTS)  # the account has none left

    assert await release(redis_client, ("acme", "sub_a"), ["dlv_3"], 3_000) == 1
    assert await redis_client.smembers(keyspace.PARKED) == {"sub_other"}


async def unpark(redis: Redis, holder: str, slot_keys: list[str], now_ms: int, room: int) -> int:
    return int(await UNPARK.run(redis, slot_keys, {"holder": holder, "now_ms": now_ms, "room": room}))


async def test_unpark_brings_back_what_expired_slots_make_room_for(redis_client: Redis) -> None:
    slot_keys = [
        keyspace.subscription_in_flight("sub_a"),
        keyspace.subscription_parked("sub_a"),
        keyspace.DUE,
        keyspace.PARKED,
    ]
    await redis_client.zadd(keyspace.subscription_in_flight("sub_a"), {"dlv_1": 1_000, "dlv_2": 5_000})
    await redis_client.zadd(keyspace.subscription_parked("sub_a"), {"p_1": 100, "p_2": 200, "p_3": 300})
    await redis_client.sadd(keyspace.PARKED, "sub_a")

    assert await unpark(redis_client, "sub_a", slot_keys, 900, room=2) == 0  # both slots still held
    assert await unpark(redis_client, "sub_a", slot_keys, 1_000, room=2) == 1  # one lease ended at 1,000
    assert await redis_client.zrange(keyspace.subscription_in_flight("sub_a"), 0, -1) == ["dlv_2"]
    assert await redis_client.zrange(keyspace.DUE, 0, -1, withscores=True) == [("p_1", 1_000.0)]
    assert await redis_client.smembers(keyspace.PARKED) == {"sub_a"}

    assert await unpark(redis_client, "sub_a", slot_keys, 2_000, room=2**31) == 2  # no cap: all of them
    assert await redis_client.zrangebyscore(keyspace.DUE, 2_000, 2_000) == ["p_2", "p_3"]
    assert not await redis_client.exists(keyspace.PARKED)


async def test_unpark_works_on_an_account_alike(redis_client: Redis) -> None:
    slot_keys = [
        keyspace.account_in_flight("acme"),
        keyspace.account_parked("acme"),
        keyspace.DUE,
        keyspace.PARKED_ACCOUNTS,
    ]
    await redis_client.zadd(keyspace.account_parked("acme"), {"p_1": 100})
    await redis_client.sadd(keyspace.PARKED_ACCOUNTS, "acme", "beta")
    assert await unpark(redis_client, "acme", slot_keys, 3_000, room=1) == 1
    assert await redis_client.zrange(keyspace.DUE, 0, -1, withscores=True) == [("p_1", 3_000.0)]
    assert await redis_client.smembers(keyspace.PARKED_ACCOUNTS) == {"beta"}


async def test_times_of_today_are_written_to_the_millisecond(redis_client: Redis) -> None:
    """Numbers from the JSON argument are Lua's doubles: today's Unix milliseconds still go to Redis exactly."""
    now_ms = 1_795_000_123_457
    await claimed(redis_client, ["dlv_1", "dlv_2"])
    limits = Limits("acme", 10, 3.0, lease_ms=25_001)
    assert await admit(redis_client, {"sub_a": (limits, ["dlv_1", "dlv_2"])}, now_ms) == [1, 0, now_ms + 333]
    assert await redis_client.zscore(keyspace.subscription_in_flight("sub_a"), "dlv_1") == now_ms + 25_001
    assert await redis_client.get(keyspace.subscription_rate("sub_a")) == str(now_ms + 333)
