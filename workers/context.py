"""What a detector works with during one poll of one account: the client, the account, and a fenced commit."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent
from subscriptions.core.fence import Fence
from subscriptions.core.models import AccountRecord
from subscriptions.store import keyspace
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.brightpearl.client import BrightpearlClient
from workers.budget import RequestBudget
from workers.cursor import StampCursor
from workers.metrics import Metrics
from workers.stream import Commit, Stream, Write, take_baseline


@dataclass
class Preloaded:
    """What a poll read of its account in the round trip that opened it (``subscriptions.store.polls.Polls.open``):
    positions by name, and the dirty stock products. Good until the poll's first commit, which may change any of
    them (an order's commit marks products dirty): reads after it go to Redis."""

    positions: dict[str, str | None] = field(default_factory=dict)
    stock_dirty: list[int] | None = None
    valid: bool = True


@dataclass
class PollContext:
    client: BrightpearlClient
    account: AccountRecord
    redis: "Redis"
    store: Store
    queue: DeliveryQueue
    fence: Fence | None
    overlap_ms: int
    clock: Callable[[], datetime]
    metrics: Metrics
    on_deliveries: Callable[[], None]
    budget: RequestBudget
    sweep_client: BrightpearlClient  # the same account at low priority
    sweep_interval_s: float = 3600.0
    status_sweep_interval_s: float = 300.0  # how often the newest orders' statuses are swept (workers.status_sweep)
    # a poll of a resource whose hints are judged (workers.hint_health) collects the events it stores first, which
    # no hint's read stored before it: one round trip before each commit that has events
    collect_found: bool = False
    found: list[NewEvent] = field(default_factory=list)
    preloaded: Preloaded = field(default_factory=lambda: Preloaded(valid=False))  # shared by the poll's contexts

    async def budget_has_room(self, share: float) -> bool:
        """Whether the relay used less than ``share`` of its budget in the last minute."""
        return await self.budget.used_last_minute() < self.budget.per_minute * share

    async def position(self, name: str) -> str | None:
        """Where one of the account's pollings stands (``keyspace.position``), as stored: as the poll found it
        when it opened, until its first commit."""
        preloaded = self.preloaded
        if preloaded.valid and name in preloaded.positions:
            return preloaded.positions[name]
        return await self.store.get_position(self.account.code, name)

    async def stock_dirty(self) -> list[int]:
        """The products whose stock figures may have moved (``mark_stock_dirty``), ascending."""
        preloaded = self.preloaded
        if preloaded.valid and preloaded.stock_dirty is not None:
            return list(preloaded.stock_dirty)
        members = await cast(Awaitable[set[str]], self.redis.smembers(keyspace.stock_dirty(self.account.code)))
        return sorted(int(m) for m in members)

    async def cursor(self, stream: Stream) -> StampCursor:
        """The stream's cursor; a stream never followed before starts from a baseline taken now, so nothing
        that exists already is reported."""
        stored = await self.position(stream.key)
        if stored is not None:
            return StampCursor.from_json(stored)
        cursor = await take_baseline(self.client, stream)
        await self.commit_for(stream)([], cursor, [])
        return cursor

    async def commit(self, events: list[NewEvent], writes: list[Write]) -> None:
        """Commit events with the detector's writes, in one fenced transaction (no cursor moves)."""
        self.preloaded.valid = False  # what this commit writes is read from Redis from now on
        subscriptions = await self.store.account_subscriptions(self.account.code) if events else []
        new = await self._not_stored(events) if self.collect_found else []

        def also(pipe: Pipeline) -> None:
            for write in writes:
                write(pipe)

        created = await self.queue.commit(events, subscriptions, now=self.clock(), fence=self.fence, also=also)
        for event in events:
            self.metrics.events.labels(event.type).inc()
        if created:
            self.on_deliveries()
        self.found += new

    async def _not_stored(self, events: list[NewEvent]) -> list[NewEvent]:
        """Those of ``events`` not stored yet (read before the commit that stores them; this poll's claim fences
        every writer of the account's events, so none can come between)."""
        if not events:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.exists(keyspace.event(event.id))
            stored = await pipe.execute()
        return [event for event, exists in zip(events, stored, strict=True) if not exists]

    def commit_for(self, stream: Stream) -> Commit:
        """Commit events with the stream's new cursor and the detector's writes, in one fenced transaction."""
        cursor_key = keyspace.position(self.account.code, stream.key)

        async def commit(events: list[NewEvent], cursor: StampCursor, writes: list[Write]) -> None:
            def write_cursor(pipe: Pipeline) -> None:
                pipe.set(cursor_key, cursor.to_json())

            await self.commit(events, [write_cursor, *writes])

        return commit

    def mark_stock_dirty(self, product_ids: Iterable[int]) -> Write:
        """A write marking products whose stock figures may have moved (their orders changed)."""
        ids = sorted(product_ids)
        key = keyspace.stock_dirty(self.account.code)

        def apply(pipe: Pipeline) -> None:
            if ids:
                pipe.sadd(key, *ids)

        return apply
