"""How long each account has gone without a successful poll: what the poll-age gauges show at scrape time.

(The delivery backlog is read by the delivery queue: ``subscriptions.store.queue.backlog``.)
"""

from datetime import datetime
from typing import cast

from redis.asyncio import Redis

from subscriptions.store import keyspace


async def read_last_successful_polls(redis: "Redis") -> dict[str, float]:
    """Each account's last successful poll (Unix seconds), from its status; an account that has had none yet
    counts from its registration, so that one that never manages a poll is noticed too."""
    accounts = cast(list[tuple[str, float]], await redis.zrange(keyspace.ACCOUNTS, 0, -1, withscores=True))
    async with redis.pipeline(transaction=False) as pipe:
        for code, _ in accounts:
            pipe.hget(keyspace.account_status(code), "last_success_at")
        successes = await pipe.execute()
    return {
        code: datetime.fromisoformat(success).timestamp() if success else registered_ms / 1000
        for (code, registered_ms), success in zip(accounts, successes, strict=True)
    }
