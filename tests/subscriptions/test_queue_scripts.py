"""The delivery queue's Lua scripts run directly, with fixed ``now_ms``: what each writes and answers."""

from datetime import UTC, datetime

from redis.asyncio import Redis

from subscriptions.core.envelope import NewEvent
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.transitions import created
from subscriptions.store import keyspace
from subscriptions.store.queue import scripts

NOW_MS = 1_795_687_200_000


async def test_claim_leases_what_is_due_and_answers_the_ids(redis_client: Redis) -> None:
    await redis_client.zadd("due", {"d1": NOW_MS - 5, "d2": NOW_MS, "d3": NOW_MS + 1, "d4": NOW_MS - 1})
    args = {"now_ms": NOW_MS, "lease_ms": 25_000, "limit": 10}
    answer = await scripts.CLAIM.run(redis_client, ["due"], args)
    assert answer == ["d1", "d4", "d2"]  # oldest due first
    assert await redis_client.zrange("due", 0, -1, withscores=True) == [
        ("d3", NOW_MS + 1),
        ("d1", NOW_MS + 25_000),
        ("d2", NOW_MS + 25_000),
        ("d4", NOW_MS + 25_000),
    ]
    assert await scripts.CLAIM.run(redis_client, ["due"], {**args, "now_ms": NOW_MS + 1, "limit": 1}) == ["d3"]
    assert await scripts.CLAIM.run(redis_client, ["due"], {**args, "now_ms": NOW_MS + 2}) == []


async def test_claim_leases_no_member_that_left_meanwhile(redis_client: Redis) -> None:
    many = {f"d{n:04}": NOW_MS for n in range(1_200)}  # more than one chunk of 500
    await redis_client.zadd("due", many)
    answer = await scripts.CLAIM.run(redis_client, ["due"], {"now_ms": NOW_MS, "lease_ms": 1, "limit": 1_100})
    assert answer == sorted(many)[:1_100]
    assert await redis_client.zcount("due", NOW_MS + 1, NOW_MS + 1) == 1_100


def commit_args(due_ms: int | None) -> dict[str, object]:
    delivery: dict[str, object] = {"id": "d1", "record": 3, "key": 8, "subscription_deliveries": 9, "joins": 10}
    if due_ms is not None:
        delivery["due_ms"] = due_ms
    event = {
        "id": "e1",
        "record": 2,
        "key": 4,
        "account_events": 5,
        "account_deliveries": 6,
        "event_deliveries": 7,
        "deliveries": [delivery],
    }
    return {"created_ms": NOW_MS, "events": [event]}


COMMIT_KEYS = ["events", "deliveries", "due", "ev:e1", "acc:events", "acc:deliveries", "ev:e1:deliveries"]
COMMIT_KEYS += ["dl:d1", "sub:deliveries", "status:pending"]
COMMIT_TEXTS = ["E1", "D1"]  # ARGV[2] and ARGV[3], after the argument


async def test_commit_stores_an_event_once_with_its_deliveries_and_indexes(redis_client: Redis) -> None:
    assert await scripts.COMMIT.run(redis_client, COMMIT_KEYS, commit_args(NOW_MS), COMMIT_TEXTS) == [1]
    assert await redis_client.mget("ev:e1", "dl:d1") == ["E1", "D1"]
    for index in ("events", "acc:events"):
        assert await redis_client.zrange(index, 0, -1, withscores=True) == [("e1", NOW_MS)]
    for index in ("deliveries", "acc:deliveries", "ev:e1:deliveries", "sub:deliveries", "status:pending", "due"):
        assert await redis_client.zrange(index, 0, -1, withscores=True) == [("d1", NOW_MS)]
    # the same event again (a crash before the cursor moved): left alone, no second fan-out
    await redis_client.zrem("due", "d1")
    assert await scripts.COMMIT.run(redis_client, COMMIT_KEYS, commit_args(NOW_MS + 7), COMMIT_TEXTS) == [0]
    assert await redis_client.zcard("due") == 0


async def test_commit_leaves_a_delivery_with_no_due_time_off_the_due_set(redis_client: Redis) -> None:
    keys = [*COMMIT_KEYS[:-1], "status:skipped"]
    assert await scripts.COMMIT.run(redis_client, keys, commit_args(None), COMMIT_TEXTS) == [1]
    assert await redis_client.zrange("status:skipped", 0, -1) == ["d1"]
    assert not await redis_client.exists("due")


async def test_apply_moves_indexes_appends_attempts_and_replaces_records(redis_client: Redis) -> None:
    await redis_client.zadd("due", {"d1": NOW_MS, "d2": NOW_MS, "d3": NOW_MS})
    await redis_client.zadd("status:pending", {"d1": 1, "d2": 2, "d3": 3})
    items = [
        # an attempt failed: retrying, due later
        {"id": "d1", "record": 2, "key": 2, "attempt": 3, "attempts": 3, "leaves": 4, "joins": 5,
         "created_ms": 1, "due_ms": NOW_MS + 5_000},
        # given up: failed, off the due set
        {"id": "d2", "record": 4, "key": 6, "attempt": 5, "attempts": 7, "leaves": 4, "joins": 8,
         "created_ms": 2},
        # requeued while pending: no status move, due now
        {"id": "d3", "record": 6, "key": 9, "created_ms": 3, "due_ms": NOW_MS + 1},
    ]  # fmt: skip
    keys = ["due", "dl:d1", "dl:d1:attempts", "status:pending", "status:retrying", "dl:d2", "dl:d2:attempts"]
    keys += ["status:failed", "dl:d3"]
    texts = ["R1", "A1", "R2", "A2", "R3"]  # ARGV[2] onwards
    assert await scripts.APPLY.run(redis_client, keys, {"items": items}, texts) == 3
    assert await redis_client.mget("dl:d1", "dl:d2", "dl:d3") == ["R1", "R2", "R3"]
    assert await redis_client.lrange("dl:d1:attempts", 0, -1) == ["A1"]
    assert await redis_client.lrange("dl:d2:attempts", 0, -1) == ["A2"]
    assert not await redis_client.exists("dl:d3:attempts")
    assert await redis_client.zrange("status:pending", 0, -1, withscores=True) == [("d3", 3)]
    assert await redis_client.zrange("status:retrying", 0, -1, withscores=True) == [("d1", 1)]
    assert await redis_client.zrange("status:failed", 0, -1, withscores=True) == [("d2", 2)]
    assert await redis_client.zrange("due", 0, -1, withscores=True) == [("d3", NOW_MS + 1), ("d1", NOW_MS + 5_000)]


async def test_apply_keeps_the_order_of_one_deliverys_moves_in_a_batch(redis_client: Redis) -> None:
    await redis_client.zadd("status:pending", {"d1": 1})
    items = [
        {"id": "d1", "record": 2, "key": 2, "leaves": 3, "joins": 4, "created_ms": 1, "due_ms": NOW_MS},
        {"id": "d1", "record": 3, "key": 2, "leaves": 4, "joins": 5, "created_ms": 1},
    ]
    keys = ["due", "dl:d1", "status:pending", "status:retrying", "status:succeeded"]
    assert await scripts.APPLY.run(redis_client, keys, {"items": items}, ["first", "second"]) == 2
    assert await redis_client.get("dl:d1") == "second"
    assert [await redis_client.zcard(k) for k in keys[2:]] == [0, 0, 1]
    assert await redis_client.zcard("due") == 0


async def test_apply_writes_large_batches_in_chunks(redis_client: Redis) -> None:
    ids = [f"d{n:04}" for n in range(1_200)]
    await redis_client.zadd("status:pending", dict.fromkeys(ids, 1))
    items = [
        {"id": i, "record": 2 + n, "key": 4 + n, "leaves": 2, "joins": 3, "created_ms": 1} for n, i in enumerate(ids)
    ]
    keys = ["due", "status:pending", "status:succeeded", *(f"dl:{i}" for i in ids)]
    assert await scripts.APPLY.run(redis_client, keys, {"items": items}, ids) == 1_200
    assert await redis_client.zcard("status:pending") == 0
    assert await redis_client.zcard("status:succeeded") == 1_200
    assert await redis_client.get("dl:d1199") == "d1199"


def test_arguments_declare_each_key_once() -> None:
    key = scripts.KeyList("a", "b")
    assert [key("b"), key("c"), key("a"), key("c")] == [2, 3, 1, 3]
    assert key.names == ["a", "b", "c"]


def test_arguments_of_a_commit_name_their_keys_and_texts() -> None:
    """What the queue passes ``commit.lua``, read back: every key in KEYS, every text after the argument."""
    now = datetime.fromtimestamp(NOW_MS / 1000, UTC)
    subs = [
        SubscriptionRecord(id=s, account="acme", url="https://example.com/h", events=["*"], secret="x" * 32,
                           created_at=now, updated_at=now)
        for s in ("s1", "s2")
    ]  # fmt: skip
    events = [NewEvent(f"e{n}", "order.created", "acme", n, "2026-11-26T10:00:00Z", "{}") for n in (1, 2)]
    planned = [(e, [created(e.id, e.type, e.account, s, now) for s in subs]) for e in events]
    script_keys, args, texts = scripts.commit_args(planned, now)
    assert len(script_keys) == len(set(script_keys))  # each key declared once
    assert args["created_ms"] == NOW_MS
    first = args["events"][0]
    assert script_keys[first["key"] - 1] == keyspace.event("e1")
    assert script_keys[first["account_events"] - 1] == keyspace.account_events("acme")
    assert texts[first["record"] - 2].startswith('{"id":"e1"')
    delivery = first["deliveries"][1]
    assert script_keys[delivery["subscription_deliveries"] - 1] == keyspace.subscription_deliveries("s2")
    assert script_keys[delivery["joins"] - 1] == keyspace.status_deliveries("pending")
    assert delivery["due_ms"] == NOW_MS
    assert texts[delivery["record"] - 2] == planned[0][1][1].record.model_dump_json()
