"""Failed dashboard logins, limited per client address: ``MAX_FAILURES`` in any ``WINDOW``, then 429.

Each login attempt is counted before its token is checked (so a burst of parallel attempts cannot slip past
the limit) and taken back if the token was good: only failures count. A success takes back that attempt only;
it clears no earlier failure, neither its own client's nor anyone else's, so a valid key cannot be used to reset
the count while guessing another token. Once a client has ``MAX_FAILURES`` failures within ``WINDOW`` every
attempt from it (even with a good token) gets 429 with ``Retry-After``: the seconds until the oldest of them is
``WINDOW`` old.

The client is the address the connection came from. When that is not a global address (loopback, private or
shared: a reverse proxy or ingress in front, as in ``deploy/``), it is the last address in ``X-Forwarded-For``,
the one that proxy appended, so clients behind one proxy are counted apart rather than locking each other out.
A client connecting straight from a public address cannot choose its count that way: its header is ignored.
"""

import ipaddress
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from aiohttp import web
from redis.asyncio import Redis

from subscriptions import keys
from subscriptions.due import ms

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)


def client_address(request: web.Request) -> str:
    """The address failed logins are counted against (see the module's docstring)."""
    peer = request.remote or ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer or "unknown"  # not an IP connection (a Unix socket): one client
    if not address.is_global:  # loopback, private, shared (100.64/10), link-local: a proxy of ours
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops[-1]:
            try:
                return str(ipaddress.ip_address(hops[-1]))
            except ValueError:
                pass  # not an address: count against the proxy
    return str(address)


@dataclass(frozen=True)
class Attempt:
    """One counted login attempt; ``retry_after_s`` is set when it was refused (and so not counted)."""

    key: str
    member: str
    retry_after_s: int | None = None


class LoginLimit:
    """Failed logins per client, over one Redis connection pool (``decode_responses=True``)."""

    def __init__(self, redis: "Redis", clock: Callable[[], datetime]) -> None:
        self.redis = redis
        self.clock = clock

    async def attempt(self, client: str) -> Attempt:
        """Count an attempt from ``client``; refused (``retry_after_s`` set, not counted) if over the limit."""
        now_ms = ms(self.clock())
        window_ms = int(WINDOW.total_seconds() * 1000)
        key = keys.login_failures(client)
        member = f"{now_ms}-{secrets.token_hex(4)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now_ms - window_ms)
            pipe.zadd(key, {member: now_ms})
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.pexpire(key, window_ms)
            _, _, count, oldest, _ = await pipe.execute()
        if int(count) <= MAX_FAILURES:
            return Attempt(key, member)
        await self.redis.zrem(key, member)
        first_ms = int(cast(list[tuple[str, float]], oldest)[0][1])
        wait_s = max(1, math.ceil((first_ms + window_ms - now_ms) / 1000))
        return Attempt(key, member, retry_after_s=wait_s)

    async def succeeded(self, attempt: Attempt) -> None:
        """The attempt's token was good: it is not a failure (earlier failures stay counted)."""
        await self.redis.zrem(attempt.key, attempt.member)
