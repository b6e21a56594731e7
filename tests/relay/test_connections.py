"""Commands packed by hiredis reach Redis exactly as redis-py would have packed them."""

import enum
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from relay.connections import HiredisPacking, packed_by_hiredis


class Level(enum.IntEnum):
    high = 3


class Packed(HiredisPacking, Connection):
    pass


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "key", "value"),
        ("ZADD", "z", 1.5, "a", 1e20, "b", 1 / 3, "c", -3, "d", 10**20, "e"),
        ("SET", "k", "é ☃ 😀"),
        ("SET", "k", b"\x00\xff bytes"),
        ("SCRIPT EXISTS", "abc"),  # a multi-word command name, split by redis-py
        ("SET", "k", Level.high),  # a type hiredis refuses: packed by redis-py
        ("SET", "k", memoryview(b"view")),
    ],
)
def test_commands_are_packed_byte_for_byte_as_redis_py_packs_them(args: tuple[object, ...]) -> None:
    assert b"".join(Packed().pack_command(*args)) == b"".join(Connection().pack_command(*args))


def test_what_redis_py_refuses_is_still_refused_with_its_error() -> None:
    with pytest.raises(DataError):
        Packed().pack_command("SET", "k", None)
    with pytest.raises(DataError):
        Packed().pack_command("SET", "k", True)
    with pytest.raises(UnicodeEncodeError):
        Packed().pack_command("SET", "k", "\udc80")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://h/0", SSLConnection),
        ("unix:///tmp/r.sock", UnixDomainSocketConnection),
    ],
)
def test_the_pool_keeps_the_kind_of_connection_its_url_asks_for(url: str, base: type[Connection]) -> None:
    cls = packed_by_hiredis(ConnectionPool.from_url(url)).connection_class
    assert issubclass(cls, base)
    assert issubclass(cls, HiredisPacking)


@pytest.fixture
async def packed(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_pool(packed_by_hiredis(ConnectionPool.from_url(redis_url, decode_responses=True)))
    yield client
    await client.aclose()


async def test_a_pipelined_batch_round_trips_through_a_real_server(packed: Redis) -> None:
    async with packed.pipeline(transaction=True) as pipe:
        pipe.set("relay-test:packed:text", "é ☃")
        pipe.zadd("relay-test:packed:z", {f"m{i}": i / 7 for i in range(1000)})
        pipe.get("relay-test:packed:text")
        pipe.zscore("relay-test:packed:z", "m999")
        results = await pipe.execute()
    assert results[2:] == ["é ☃", 999 / 7]
    await packed.delete("relay-test:packed:text", "relay-test:packed:z")
