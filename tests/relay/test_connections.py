"""Commands packed by hiredis reach Redis exactly as redis-py would have packed them; pools for Sentinel and for a
server that fails over."""

import enum
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

from relay.connections import HiredisPacking, ReconnectOnReadOnly, connect, packed_by_hiredis, sentinel_connections
from relay.redis_url import parse_sentinel_url
from tests.e2e import wait_for
from tests.faults.redis_server import redis_server


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


def test_sentinel_pools_keep_hiredis_packing_and_follow_the_primary() -> None:
    connections = sentinel_connections(parse_sentinel_url("redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/relay/3"))
    decoded, raw = connections.redis.connection_pool, connections.arq.connection_pool
    for pool in (decoded, raw):
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "relay"
        assert issubclass(pool.connection_class, SentinelManagedConnection)  # rediscovers the primary on errors
        assert pool.connection_kwargs["db"] == 3
        assert pool.connection_kwargs["password"] == "pw"
    assert issubclass(decoded.connection_class, HiredisPacking)
    assert connections.sentinel is not None
    assert [c.connection_pool.connection_kwargs["port"] for c in connections.sentinel.sentinels] == [1, 2]


async def test_plain_pools_reconnect_when_their_server_is_a_replica_now() -> None:
    connections = await connect("redis://127.0.0.1:1/0")
    for pool in (connections.redis.connection_pool, connections.arq.connection_pool):
        assert issubclass(pool.connection_class, ReconnectOnReadOnly)
    assert issubclass(connections.redis.connection_pool.connection_class, HiredisPacking)
    await connections.close()


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A directory for Unix sockets, with a short path (a socket's has at most 107 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="relay-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory)


async def test_an_endpoint_that_moves_to_the_promoted_replica_is_followed(tmp_path: Path, sockets: Path) -> None:
    """A managed Redis's failover: its endpoint now leads to the promoted replica, and the old primary, demoted,
    answers the connections still open to it with READONLY. Such a connection is dropped, its command fails as on
    a lost connection, and the next command reaches the new primary through the endpoint. Here the endpoint is a
    symbolic link to a Unix socket."""
    endpoint = sockets / "endpoint.sock"
    endpoint.symlink_to(sockets / "a.sock")
    async with (
        redis_server(tmp_path / "a", socket=sockets / "a.sock") as first,
        redis_server(tmp_path / "b", socket=sockets / "b.sock", replica_of=first) as second,
    ):
        connections = await connect(f"unix://{endpoint}?db=0")
        try:
            await connections.redis.set("relay-test:failover", "before")
            await connections.arq.set("relay-test:failover:arq", "before")
            await wait_for(second.synced, 10, "the replica to sync")

            await second.command("REPLICAOF", "NO", "ONE")  # promoted
            await first.command("REPLICAOF", "127.0.0.1", str(second.port))  # demoted, its connections kept
            (sockets / "moved.sock").symlink_to(sockets / "b.sock")
            (sockets / "moved.sock").replace(endpoint)

            for client in (connections.redis, connections.arq):
                with pytest.raises(RedisConnectionError, match="is a read-only replica now"):
                    await client.set("relay-test:failover", "lost")
            await connections.redis.set("relay-test:failover", "after")
            await connections.arq.set("relay-test:failover:arq", "after")
            assert await second.command("GET", "relay-test:failover") == "after"
            assert await second.command("GET", "relay-test:failover:arq") == "after"
        finally:
            await connections.close()
