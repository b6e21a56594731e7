"""How much delivery work is waiting, read from the status indexes: what the backlog gauges show at scrape time.

Three commands in one round trip, each O(1) or O(log n) on the sorted sets, so a scrape stays cheap however
long the backlog grows.
"""

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from subscriptions.core.models import DeliveryStatus
from subscriptions.core.times import ms
from subscriptions.store import keyspace


@dataclass(frozen=True)
class Backlog:
    """Deliveries not yet final: how many wait for a first attempt, how many for a retry, and the oldest wait."""

    waiting: int
    retrying: int
    oldest_waiting_age_s: float  # 0 when nothing waits


async def read_backlog(redis: "Redis", now: datetime) -> Backlog:
    """The backlog as it stands at ``now``: ZCARD of the pending and retrying indexes, and the oldest pending
    delivery's created time (the indexes are scored by it)."""
    pending = keyspace.status_deliveries(DeliveryStatus.pending)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(pending)
        pipe.zcard(keyspace.status_deliveries(DeliveryStatus.retrying))
        pipe.zrange(pending, 0, 0, withscores=True)
        waiting, retrying, oldest = await pipe.execute()
    age_s = max(0.0, (ms(now) - float(oldest[0][1])) / 1000) if oldest else 0.0
    return Backlog(waiting=int(waiting), retrying=int(retrying), oldest_waiting_age_s=age_s)
