"""The ``state`` of a connect flow: what lets the OAuth callback, which carries no bearer token, finish the
authorization of one account and of no other.

A state is ``{account}.{256 random bits}``: the account it is bound to, and a secret. Only a SHA-256 digest of it
is stored, in the account's own sorted set with its expiry as the score, so a copy of Redis holds no usable
state. Taking a state removes it (``ZREM`` answers 1 once), so it works once; an expired one is refused though
Redis has not dropped it yet. An account holds at most :data:`MAX_PER_ACCOUNT` states (each new one pushes out
the oldest), so asking for authorize URLs in a loop costs a few hundred bytes, not memory without end; removing
the account removes its states (``AccountStore.delete_account``).
"""

import hashlib
import secrets
from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from subscriptions.store import keyspace

STATE_TTL_S = 600  # ten minutes, as the contract says
MAX_PER_ACCOUNT = 20  # authorize URLs out at once for one account; the oldest stops working first
MAX_STATE_CHARS = 200  # a longer "state" is no state this relay gave
SEPARATOR = "."  # not in an account code, nor in URL-safe base64


def digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def account_of(state: str) -> str | None:
    """The account a state names, or ``None`` when it is not shaped like one this relay gives."""
    code, separator, secret = state.partition(SEPARATOR)
    if not separator or not code or not secret or len(state) > MAX_STATE_CHARS:
        return None
    return code


class OAuthStates:
    """Single-use states of the connect flow, per account."""

    def __init__(self, redis: Redis, *, ttl_s: float = STATE_TTL_S) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)

    async def issue(self, code: str, *, now_ms: int) -> str:
        """A new state for ``code``, valid for the TTL from ``now_ms``."""
        state = f"{code}{SEPARATOR}{secrets.token_urlsafe(32)}"
        key = keyspace.oauth_states(code)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now_ms)  # the expired
            pipe.zadd(key, {digest(state): now_ms + self.ttl_ms})
            pipe.zremrangebyrank(key, 0, -(MAX_PER_ACCOUNT + 1))  # the oldest beyond the cap
            pipe.pexpire(key, self.ttl_ms)
            await pipe.execute()
        return state

    async def take(self, state: str, *, now_ms: int) -> str | None:
        """The account ``state`` was issued for, once: ``None`` when it is unknown, expired or already taken."""
        code = account_of(state)
        if code is None:
            return None
        key, member = keyspace.oauth_states(code), digest(state)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zscore(key, member)
            pipe.zrem(key, member)
            expiry_ms, removed = await pipe.execute()
        if not removed or expiry_ms is None or float(expiry_ms) <= now_ms:
            return None
        return code

    async def outstanding(self, code: str) -> int:
        """How many states of ``code`` are stored (tests: the cap holds)."""
        return int(await cast(Awaitable[int], self.redis.zcard(keyspace.oauth_states(code))))
