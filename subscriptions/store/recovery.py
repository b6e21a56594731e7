"""Recovering a subscription's missed deliveries: every ``failed`` or ``skipped`` one created in a window,
sent again, with progress a person can follow.

Starting a recovery finds the deliveries (from the subscription's index, by creation time) and keeps their
ids; a background job re-queues them in batches, counting as it goes, so a job that dies is run again and
carries on where it stopped. Progress counts a delivery done once it has been sent again and reached
``succeeded`` or ``failed``.
"""

from collections.abc import Awaitable
from datetime import datetime
from typing import cast

from pydantic import BaseModel

from subscriptions.core.errors import NotFound
from subscriptions.core.ids import random_id
from subscriptions.core.models import DeliveryRecord, DeliveryStatus
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store

BATCH = 500
KEPT_S = 7 * 86_400  # how long a recovery's record and progress are kept
RECOVERABLE = (DeliveryStatus.failed, DeliveryStatus.skipped)


class Recovery(BaseModel):
    """A recovery and how far it has got."""

    id: str
    subscription: str
    since: datetime
    until: datetime
    created_at: datetime
    total: int
    queued: int = 0
    done: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def status(self) -> str:
        return "completed" if self.queued == self.total and self.done == self.total else "running"


class Recoveries:
    """Recoveries in Redis: start, run (the background job's work), and read progress."""

    def __init__(self, store: Store, queue: DeliveryQueue) -> None:
        self.store = store
        self.queue = queue
        self.redis = store.redis

    async def start(self, sub_id: str, since: datetime, until: datetime, now: datetime) -> Recovery:
        """Find the subscription's failed and skipped deliveries created in ``[since, until)`` and keep them
        as a new recovery; the caller then runs :meth:`run` in the background."""
        recovery = Recovery(id=random_id("rec"), subscription=sub_id, since=since, until=until, created_at=now, total=0)
        ids_key = keyspace.recovery_deliveries(recovery.id)
        index = keyspace.subscription_deliveries(sub_id)
        offset = 0
        while True:
            page = await cast(
                Awaitable[list[str]],
                self.redis.zrangebyscore(index, ms(since), f"({ms(until)}", start=offset, num=BATCH),
            )
            if not page:
                break
            offset += len(page)
            found = [d.id for d in await self.store.load_deliveries(page) if d and d.status in RECOVERABLE]
            if found:
                await cast(Awaitable[int], self.redis.rpush(ids_key, *found))
                recovery.total += len(found)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keyspace.recovery(recovery.id), mapping={"record": recovery.model_dump_json(), "queued": 0})
            pipe.expire(keyspace.recovery(recovery.id), KEPT_S)
            pipe.expire(ids_key, KEPT_S)
            await pipe.execute()
        return recovery

    async def run(self, rec_id: str, now: datetime) -> int:
        """Re-queue the recovery's deliveries from where it stopped; returns how many this call queued.

        A delivery sent again meanwhile (a manual retry) is left as it is and counted as queued.
        """
        recovery = await self.get(rec_id)
        ids_key, queued_now = keyspace.recovery_deliveries(rec_id), 0
        for start in range(recovery.queued, recovery.total, BATCH):
            ids = await cast(Awaitable[list[str]], self.redis.lrange(ids_key, start, start + BATCH - 1))
            waiting = [d for d in await self.store.load_deliveries(ids) if d and d.status in RECOVERABLE]
            await self.queue.requeue(waiting, now)
            await cast(Awaitable[int], self.redis.hincrby(keyspace.recovery(rec_id), "queued", len(ids)))
            queued_now += len(ids)
        return queued_now

    async def get(self, rec_id: str) -> Recovery:
        """A recovery without its progress counts (see :meth:`progress`)."""
        fields = await cast(Awaitable[dict[str, str]], self.redis.hgetall(keyspace.recovery(rec_id)))
        if not fields:
            raise NotFound(f"recovery {rec_id!r} does not exist")
        return Recovery.model_validate_json(fields["record"]).model_copy(update={"queued": int(fields["queued"])})

    async def progress(self, rec_id: str) -> Recovery:
        """A recovery with how many of its deliveries have been sent again and where they ended."""
        recovery = await self.get(rec_id)
        succeeded = failed = 0
        ids_key = keyspace.recovery_deliveries(rec_id)
        for start in range(0, recovery.queued, BATCH):
            ids = await cast(Awaitable[list[str]], self.redis.lrange(ids_key, start, start + BATCH - 1))
            for delivery in await self.store.load_deliveries(ids):
                outcome = _outcome_since(delivery, recovery.created_at)
                succeeded += outcome == DeliveryStatus.succeeded
                failed += outcome == DeliveryStatus.failed
        return recovery.model_copy(update={"done": succeeded + failed, "succeeded": succeeded, "failed": failed})


def _outcome_since(delivery: DeliveryRecord | None, started: datetime) -> DeliveryStatus | None:
    """Where a delivery ended after the recovery started, or ``None`` while it is still on its way.

    A delivery no longer kept (retention removed it) counts as failed: it will not arrive.
    """
    if delivery is None:
        return DeliveryStatus.failed
    attempted = delivery.last_attempt_at is not None and delivery.last_attempt_at >= started
    if attempted and delivery.status in (DeliveryStatus.succeeded, DeliveryStatus.failed):
        return delivery.status
    return None
