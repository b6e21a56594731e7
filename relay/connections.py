"""Redis connections: a real server from ``RELAY_REDIS_URL``, its primary named by Redis Sentinel, or the embedded
in-process store.

Failover: with ``redis+sentinel://`` every new connection asks the sentinels where the primary is (redis-py's
``SentinelConnectionPool``), so after a promotion the next command reaches the new primary. A connection to a
server that has become a replica meanwhile (``READONLY``) is dropped and the command fails as a lost connection,
for Sentinel and for a managed Redis whose endpoint moved to the new primary alike; the relay's loops try it
again. Every command has a deadline, so one sent to a machine that vanished fails too instead of waiting for TCP
to give up (a quarter of an hour).

The embedded store (``relay run`` and ``relay demo`` without ``RELAY_REDIS_URL``) is fakeredis with Lua, so
locks and claims work as on a real server; it keeps nothing across restarts. arq reads ``INFO`` at startup
only to log it, which fakeredis lacks; that one log call is skipped in embedded mode.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import arq.worker
import hiredis
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from relay.redis_url import SentinelUrl, is_sentinel, parse_sentinel_url

# Every connection: a PING before a command on one idle this long; a connection attempt, or a reply, given up
# after this long (no command of the relay's, nor of arq's, blocks, or keeps Redis busy for seconds: a reply
# that long overdue is from a server that froze or a machine that vanished, which TCP alone would wait on for a
# quarter of an hour); what timed out tried once more on a fresh connection. A lost connection is not tried
# again here: the command fails, and the loop that sent it tries again.
CONNECTION_OPTIONS: dict[str, Any] = {
    "health_check_interval": 15,
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
    "retry_on_timeout": True,
}
# Sentinels are asked at every new connection, and at most this often before a command (see PrimaryPool); a
# sentinel that does not answer soon is passed over for the next.
SENTINEL_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
PRIMARY_RECHECK_S = 1.0


@dataclass
class Connections:
    redis: "Redis"  # decoded strings: the relay's own records
    arq: ArqRedis  # bytes: arq's jobs
    embedded: bool
    sentinel: "RelaySentinel | None" = None  # with redis+sentinel://: the sentinels both pools ask

    async def close(self) -> None:
        await self.redis.aclose()
        await self.arq.aclose(close_connection_pool=True)  # a client given its pool leaves it open otherwise
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                await client.aclose()


class HiredisPacking(AbstractConnection):
    """Commands packed into the wire format by hiredis, in C, instead of by redis-py in Python: three to four
    times faster for the relay's batches of thousands of arguments (a poll's events, a batch of attempts).
    What hiredis does not take (a multi-word command name, an argument of another type) is packed by
    redis-py as before, with the same errors."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if args and isinstance(args[0], str) and " " not in args[0]:
            try:
                return [hiredis.pack_command(args)]
            except (TypeError, UnicodeEncodeError):
                pass
        return super().pack_command(*args)


class ReconnectOnReadOnly(AbstractConnection):
    """A connection that, answered ``READONLY`` (the server it reached is a replica now: a failover demoted it),
    drops itself and raises redis-py's ``ConnectionError``: the command fails as on a lost connection, and the
    next one connects afresh, through the endpoint, to the new primary. Without this a connection kept open to
    the demoted server would answer ``READONLY`` to every write for as long as it lives (its health checks pass).
    redis-py's ``SentinelManagedConnection`` does the same for Sentinel."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ReadOnlyError:
            await self.disconnect()
            raise RedisConnectionError(f"{self._host_error()} is a read-only replica now; reconnecting") from None


_P = TypeVar("_P", bound=ConnectionPool)


def with_connection_mixin(pool: _P, mixin: type, prefix: str) -> _P:
    """``pool``, its connections (TCP, TLS, Unix socket or Sentinel-managed) subclassed with ``mixin``."""
    base = pool.connection_class
    pool.connection_class = type(f"{prefix}{base.__name__}", (mixin, base), {})
    return pool


def packed_by_hiredis(pool: _P) -> _P:
    """``pool``, its connections (TCP, TLS, Unix socket or Sentinel-managed) packing commands with hiredis."""
    return with_connection_mixin(pool, HiredisPacking, "Hiredis")


def reconnecting_on_readonly(pool: _P) -> _P:
    """``pool``, its connections reconnecting when the server they reached has become a replica."""
    return with_connection_mixin(pool, ReconnectOnReadOnly, "Reconnecting")


async def _skip_redis_info(redis: "Redis", log_func: Callable[[str], Any]) -> None:
    """arq logs server INFO at startup; fakeredis has no INFO command."""


async def connect(redis_url: str | None) -> Connections:
    """Connections to ``redis_url`` (checked by ``relay.redis_url``), or to a fresh embedded store when it is
    ``None``. Nothing is sent yet: the first command connects."""
    if redis_url is None:
        import fakeredis  # noqa: PLC0415 - only the embedded mode needs it
        from fakeredis.aioredis import FakeAsyncRedisConnection  # noqa: PLC0415

        server = fakeredis.FakeServer()
        arq.worker.log_redis_info = _skip_redis_info  # type: ignore[attr-defined]
        decoded = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server, decode_responses=True)
        raw = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server)
        return Connections(Redis(connection_pool=decoded), ArqRedis(raw), embedded=True)
    if is_sentinel(redis_url):
        return sentinel_connections(parse_sentinel_url(redis_url))
    decoded = ConnectionPool.from_url(redis_url, decode_responses=True, **CONNECTION_OPTIONS)
    redis = Redis.from_pool(packed_by_hiredis(reconnecting_on_readonly(decoded)))
    arq_pool = ArqRedis(reconnecting_on_readonly(ConnectionPool.from_url(redis_url, **CONNECTION_OPTIONS)))
    return Connections(redis, arq_pool, embedded=False)


class PrimaryPool(SentinelConnectionPool):
    """A pool of connections to the primary the sentinels name, that also leaves a primary they no longer name.

    redis-py asks the sentinels only when it opens a connection, so connections that stay open keep going to the
    primary they were opened to. That is right until a primary that froze (a network that split) answers again
    after its replica was promoted: it still takes writes as a primary, for the seconds until the sentinels
    demote it, and drops them when it resyncs with the new primary. So the sentinels are asked again, beside the
    commands, at most every ``recheck_s`` while commands are sent, and connections to a primary they no longer
    name are closed: idle ones at once, busy ones when their command ends (redis-py's synchronous pool does the
    latter; its asyncio one does not). When no sentinel answers, the connections open are used as they are: an
    outage of the sentinels alone does not stop the relay."""

    recheck_s = PRIMARY_RECHECK_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves Sentinel untyped
        self._checked_at = 0.0
        self._recheck: asyncio.Task[None] | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        now = time.monotonic()
        idle = self._recheck is None or self._recheck.done()
        if self.master_address is not None and idle and now - self._checked_at >= self.recheck_s:
            self._checked_at = now
            self._recheck = asyncio.create_task(self._ask_sentinels(), name="sentinel-recheck")
        connection: AbstractConnection = await super().get_connection(*args, **kwargs)
        return connection

    async def _ask_sentinels(self) -> None:
        with contextlib.suppress(RedisError):  # none answers, or none names a primary: keep what is open
            await self.get_master_address()  # type: ignore[no-untyped-call]  # closes idle connections if it moved

    async def release(self, connection: AbstractConnection) -> None:
        address = (getattr(connection, "host", None), getattr(connection, "port", None))
        if self.master_address is not None and address != self.master_address:
            await connection.disconnect()
        await super().release(connection)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        if inuse_connections and self._recheck is not None:  # the pool is closing: no recheck outlives it
            self._recheck.cancel()
            await asyncio.gather(self._recheck, return_exceptions=True)
        await super().disconnect(inuse_connections)


class RelaySentinel(Sentinel):
    """redis-py's Sentinel client, saying in plain words why no primary was found: for each sentinel asked, that it
    did not answer or is no sentinel (and why), that it knows no such service, or that the primary it knows is
    down. The error is a ``ConnectionError``, which every loop of the relay takes as "Redis away, try again"."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        problems = []
        for position, sentinel in enumerate(self.sentinels):
            kwargs = sentinel.connection_pool.connection_kwargs
            address = f"{kwargs.get('host')}:{kwargs.get('port')}"
            try:
                masters = await sentinel.sentinel_masters()  # type: ignore[no-untyped-call]
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as error:  # down, or not a sentinel
                problems.append(f"{address}: {error}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                # the sentinel that answered is asked first next time (as redis-py does)
                self.sentinels[0], self.sentinels[position] = sentinel, self.sentinels[0]
                return state["ip"], state["port"]
            problems.append(f"{address}: {'its primary is down' if state else 'no such service'}")
        raise MasterNotFoundError(f"no sentinel names a primary for {service_name!r} ({'; '.join(problems)})")


def sentinel_connections(url: SentinelUrl) -> Connections:
    """Connections to the primary of ``url.service``, wherever the sentinels say it is at each new connection."""
    sentinel = RelaySentinel(  # type: ignore[no-untyped-call]  # redis-py leaves Sentinel untyped
        url.sentinels,
        sentinel_kwargs={**SENTINEL_OPTIONS, "username": url.sentinel_username, "password": url.sentinel_password},
    )
    options = {**CONNECTION_OPTIONS, "db": url.db, "username": url.username, "password": url.password}
    decoded = PrimaryPool(url.service, sentinel, decode_responses=True, **options)
    redis = Redis.from_pool(packed_by_hiredis(decoded))
    raw = PrimaryPool(url.service, sentinel, **options)
    arq_pool = ArqRedis(raw)
    return Connections(redis, arq_pool, embedded=False, sentinel=sentinel)
