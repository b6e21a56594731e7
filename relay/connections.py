"""Redis connections: a real server from ``RELAY_REDIS_URL``, or the embedded in-process store.

The embedded store (``relay run`` and ``relay demo`` without ``RELAY_REDIS_URL``) is fakeredis with Lua, so
locks and claims work as on a real server; it keeps nothing across restarts. arq reads ``INFO`` at startup
only to log it, which fakeredis lacks; that one log call is skipped in embedded mode.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import arq.worker
import hiredis
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection


@dataclass
class Connections:
    redis: "Redis"  # decoded strings: the relay's own records
    arq: ArqRedis  # bytes: arq's jobs
    embedded: bool

    async def close(self) -> None:
        await self.redis.aclose()
        await self.arq.aclose()


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


def packed_by_hiredis(pool: ConnectionPool) -> ConnectionPool:
    """``pool``, its connections (TCP, TLS or Unix socket, as its URL said) packing commands with hiredis."""
    base = pool.connection_class
    pool.connection_class = type(f"Hiredis{base.__name__}", (HiredisPacking, base), {})
    return pool


async def _skip_redis_info(redis: "Redis", log_func: Callable[[str], Any]) -> None:
    """arq logs server INFO at startup; fakeredis has no INFO command."""


async def connect(redis_url: str | None) -> Connections:
    """Connections to ``redis_url``, or to a fresh embedded store when it is ``None``."""
    if redis_url is None:
        import fakeredis  # noqa: PLC0415 - only the embedded mode needs it
        from fakeredis.aioredis import FakeAsyncRedisConnection  # noqa: PLC0415

        server = fakeredis.FakeServer()
        arq.worker.log_redis_info = _skip_redis_info  # type: ignore[attr-defined]
        decoded = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server, decode_responses=True)
        raw = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server)
        return Connections(Redis(connection_pool=decoded), ArqRedis(raw), embedded=True)
    options: dict[str, Any] = {"health_check_interval": 15, "socket_connect_timeout": 5, "retry_on_timeout": True}
    redis = Redis.from_pool(packed_by_hiredis(ConnectionPool.from_url(redis_url, decode_responses=True, **options)))
    arq_pool = ArqRedis(ConnectionPool.from_url(redis_url, **options))
    return Connections(redis, arq_pool, embedded=False)
