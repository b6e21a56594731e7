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
from redis.asyncio.sentinel import MasterNotFoundError, SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from relay.connections import (
    CONNECTION_OPTIONS,
    HiredisPacking,
    PrimaryPool,
    ReconnectOnReadOnly,
    connect,
    packed_by_hiredis,
    sentinel_connections,
)
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
        assert isinstance(pool, PrimaryPool)
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


class NamedPrimary:
    """Stands in for the sentinels: names the primary the test says, or none."""

    def __init__(self, port: int | None) -> None:
        self.port = port

    async def discover_master(self, service: str) -> tuple[str, int]:
        if self.port is None:
            raise MasterNotFoundError(f"no sentinel names a primary for {service!r}")
        return "127.0.0.1", self.port


async def test_a_primary_the_sentinels_no_longer_name_is_left_between_commands(tmp_path: Path) -> None:
    """A primary that froze and came back answers as a primary until the sentinels demote it: connections kept
    open to it are closed once the sentinels name another, busy ones when they come back, idle ones once the
    sentinels have been asked again beside a command."""
    async with redis_server(tmp_path / "a") as first, redis_server(tmp_path / "b") as second:
        named = NamedPrimary(first.port)
        pool = PrimaryPool("relay", named, decode_responses=True)
        pool.recheck_s = 0
        client = Redis.from_pool(pool)
        try:
            await client.set("relay-test:primary", "first")
            named.port = None  # the sentinels see the primary down and name none while they fail over
            await client.set("relay-test:primary", "still first")  # the connection open goes on being used
            assert pool.master_address == ("127.0.0.1", first.port)
            busy = await pool.get_connection()  # a command under way on the old primary as it is left

            named.port = second.port  # the replica is promoted
            await client.set("relay-test:primary", "second")  # on a new connection, to the new primary
            assert await second.command("GET", "relay-test:primary") == "second"
            assert await first.command("GET", "relay-test:primary") == "still first"
            assert busy.is_connected
            await pool.release(busy)
            assert not busy.is_connected

            named.port = first.port  # and back: the idle connection to the second is left too
            await client.ping()
            await wait_for(lambda: pool.master_address == ("127.0.0.1", first.port), 5, "the sentinels asked again")
            connections = [*pool._available_connections, *pool._in_use_connections]
            assert second.port not in [c.port for c in connections if c.is_connected]  # type: ignore[attr-defined]
            await client.set("relay-test:primary", "first again")
            assert await first.command("GET", "relay-test:primary") == "first again"
        finally:
            await client.aclose()


async def test_a_reply_that_never_comes_is_given_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server gone silent (a machine that vanished: no reset, no close) fails the command once its reply is
    overdue, rather than after TCP gives up a quarter of an hour later."""
    monkeypatch.setitem(CONNECTION_OPTIONS, "socket_timeout", 0.2)
    async with redis_server(tmp_path / "silent") as server:
        connections = await connect(server.url)
        try:
            await connections.redis.ping()
            server.freeze()
            with pytest.raises(RedisTimeoutError):
                await connections.redis.get("relay-test:silent")
        finally:
            server.thaw()
            await connections.close()
