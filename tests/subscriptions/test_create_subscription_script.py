"""``create_subscription.lua`` run directly: the record, its place in both indexes, and the account's limit counted
in the same step."""

from typing import Any

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store import records as store
from subscriptions.store.lua import Script

CREATE = Script.beside(store.__file__, "create_subscription.lua")


async def create(redis: Redis, sub_id: str, limit: int) -> int:
    script_keys = [keyspace.subscription(sub_id), keyspace.SUBSCRIPTIONS, keyspace.account_subscriptions("acme")]
    args: dict[str, Any] = {"id": sub_id, "record": f'{{"id":"{sub_id}"}}', "created_ms": 1_000, "limit": limit}
    return int(await CREATE.run(redis, script_keys, args))


async def test_stores_the_record_in_both_indexes_until_the_account_has_its_limit(redis_client: Redis) -> None:
    assert await create(redis_client, "sub_a", limit=2) == 1
    assert await redis_client.get(keyspace.subscription("sub_a")) == '{"id":"sub_a"}'
    assert await redis_client.zrange(keyspace.SUBSCRIPTIONS, 0, -1, withscores=True) == [("sub_a", 1_000.0)]
    assert await redis_client.smembers(keyspace.account_subscriptions("acme")) == {"sub_a"}
    assert await create(redis_client, "sub_b", limit=2) == 1
    assert await create(redis_client, "sub_c", limit=2) == 0  # the account has two already: nothing written
    assert not await redis_client.exists(keyspace.subscription("sub_c"))
    assert await redis_client.zcard(keyspace.SUBSCRIPTIONS) == 2
    assert await create(redis_client, "sub_c", limit=0) == 1  # 0: no limit
    assert await redis_client.scard(keyspace.account_subscriptions("acme")) == 3


async def test_an_existing_record_is_kept(redis_client: Redis) -> None:
    await redis_client.set(keyspace.subscription("sub_a"), "as it was")
    assert await create(redis_client, "sub_a", limit=0) == 1
    assert await redis_client.get(keyspace.subscription("sub_a")) == "as it was"
