"""``extend_lock.lua`` run directly: the janitor's lock is pushed forward only by the worker holding it."""

from redis.asyncio import Redis

from subscriptions.store import keyspace
from subscriptions.store.lua import Script
from workers import janitor

EXTEND = Script.beside(janitor.__file__, "extend_lock.lua")


async def test_only_the_holder_extends_the_lock(redis_client: Redis) -> None:
    await redis_client.set(keyspace.JANITOR_LOCK, "mine", px=1_000)
    assert await EXTEND.run(redis_client, [keyspace.JANITOR_LOCK], {"token": "mine", "ttl_ms": 60_000}) == 1
    assert 59_000 < await redis_client.pttl(keyspace.JANITOR_LOCK) <= 60_000
    assert await EXTEND.run(redis_client, [keyspace.JANITOR_LOCK], {"token": "another's", "ttl_ms": 120_000}) == 0
    assert await redis_client.pttl(keyspace.JANITOR_LOCK) <= 60_000
    await redis_client.delete(keyspace.JANITOR_LOCK)
    assert await EXTEND.run(redis_client, [keyspace.JANITOR_LOCK], {"token": "mine", "ttl_ms": 60_000}) == 0
    assert not await redis_client.exists(keyspace.JANITOR_LOCK)  # a lock gone is not made again
