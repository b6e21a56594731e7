"""Order status changes that move neither ``updatedOn`` nor ``version``: a slow sweep of the newest orders' statuses.

Whether every status change moves an order's ``updatedOn`` is unconfirmed (API.md 8, "Status change visibility"),
and the orders poll sees only what does. Once an interval, at low priority and only while the budget has room
(like the stock sweep), this sweep reads the statuses of the newest :data:`RECENT_ORDERS` orders from the search
alone (``orderId``, ``orderStatusId``, newest id first: no range filter, which the IDSET column may refuse,
API.md 8.1), 500 a request, and compares each with what the relay knows: the order's snapshot, or for an order
without one, the status this sweep saw last time (a hash, rewritten at the end of every sweep, so it holds only
the newest orders). The first sweep starts an interval after the account's first poll.

Only the orders whose status differs are read in full; each is diffed with its snapshot and reported through
:func:`workers.records.modified_events`, its snapshot written in the same fenced commit, so a change the orders
poll also sees is delivered once: whichever path comes second diffs to nothing.
"""

import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from workers.brightpearl.timestamps import format_utc
from workers.context import PollContext
from workers.cursor import Row
from workers.records import ORDERS, RecordPoll, modified_events
from workers.stream import BATCH, Write

log = logging.getLogger(__name__)

STATE_KEY = "orders.status_sweep"
RECENT_ORDERS = 1_000  # the newest orders by id: two searches of 500
COLUMNS = "orderId,orderStatusId"
SWEEP_ROOM = 0.5  # like the stock sweep: only while less than half the budget was used in the last minute


@dataclass
class StatusSweepState:
    """When the next sweep is due, and what the last one found."""

    due_ms: int = 0
    last_completed_at: str | None = None
    last_corrections: int | None = None  # status changes the last sweep caught that the orders poll had not

    def text(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def parse(cls, text: str | None) -> "StatusSweepState":
        return cls(**json.loads(text)) if text else cls()


def status_id(order: Mapping[str, Any]) -> int | None:
    """An order's ``orderStatus.orderStatusId``, if it has one."""
    status = order.get("orderStatus")
    value = status.get("orderStatusId") if isinstance(status, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def changed_statuses(
    listed: Mapping[int, int], in_snapshots: Mapping[int, int | None], seen: Mapping[int, int]
) -> list[int]:
    """The orders whose listed status differs from what the relay knows of it: its snapshot's status where it
    has a snapshot, else the status the sweep saw last time. An order known neither way is no change (the sweep
    sees it for the first time: it remembers it)."""
    changed = []
    for order_id, status in sorted(listed.items()):
        known = in_snapshots[order_id] if order_id in in_snapshots else seen.get(order_id)
        if known is not None and known != status:
            changed.append(order_id)
    return changed


def assumed_before(record: dict[str, Any], old_status: int, names: Mapping[str, Any]) -> dict[str, Any]:
    """What an order without a snapshot was before its status changed, as far as the relay knows: the order as it
    is now with its old status (named from the search's ``orderStatusNames`` when the search named it)."""
    status: dict[str, Any] = {"orderStatusId": old_status}
    if str(old_status) in names:
        status["name"] = names[str(old_status)]
    return record | {"orderStatus": status}


class StatusSweep:
    """The status sweep of one account's orders, one step per orders poll."""

    def __init__(self, ctx: PollContext) -> None:
        self.ctx = ctx
        self.poll = RecordPoll(ctx, ORDERS)
        self.state_key = keyspace.position(ctx.account.code, STATE_KEY)
        self.seen_key = keyspace.order_statuses(ctx.account.code)

    async def step(self, interval_s: float) -> StatusSweepState:
        """A whole sweep when one is due and the budget has room; otherwise nothing (a later poll tries again)."""
        stored = await self.ctx.position(STATE_KEY)
        state = StatusSweepState.parse(stored)
        now = self.ctx.clock()
        if stored is None:  # the account's first poll spends nothing on it: the first sweep is an interval away
            state.due_ms = ms(now + timedelta(seconds=interval_s))
            await self.ctx.commit([], [self._save(state)])
            return state
        if ms(now) < state.due_ms:
            return state
        listing = await self._list()
        if listing is None:
            return state
        listed, names = listing
        snapshots = await self.poll.snapshots.load(list(listed))
        seen = await self._seen(listed)
        corrections = 0
        changed = changed_statuses(listed, {i: status_id(s) for i, s in snapshots.items()}, seen)
        for start in range(0, len(changed), BATCH):
            if not await self.ctx.budget_has_room(SWEEP_ROOM):
                return state  # the rest at a later poll: the statuses still differ then
            caught = await self._correct(changed[start : start + BATCH], seen, names, now)
            self.ctx.metrics.status_sweep_corrections.inc(caught)  # counted as committed
            corrections += caught
        if corrections:
            log.info("status sweep of %s caught %d status changes", self.ctx.account.code, corrections)
        state = StatusSweepState(ms(now + timedelta(seconds=interval_s)), format_utc(now), corrections)
        await self.ctx.commit([], [self._remember(listed), self._save(state)])
        return state

    async def _list(self) -> tuple[dict[int, int], dict[str, Any]] | None:
        """The newest orders' statuses by id, and the status names the search gave; ``None`` when the budget
        ran out of room on the way."""
        client = self.ctx.sweep_client
        listed: dict[int, int] = {}
        names: dict[str, Any] = {}
        first = 1
        while len(listed) < RECENT_ORDERS:
            if not await self.ctx.budget_has_room(SWEEP_ROOM):
                return None
            size = min(client.page_size, RECENT_ORDERS - len(listed))
            params = {"columns": COLUMNS, "sort": "orderId.DESC", "pageSize": str(size), "firstResult": str(first)}
            page = await client.search(ORDERS.search_path, params)
            for row in page.rows:
                order_id, status = row.get("orderId"), row.get("orderStatusId")
                if isinstance(order_id, int) and isinstance(status, int):
                    listed[order_id] = status
            reference = page.reference.get("orderStatusNames")
            names |= reference if isinstance(reference, dict) else {}
            if not page.more_pages or not page.rows:
                break
            first = page.last_result + 1
        return listed, names

    async def _seen(self, listed: Mapping[int, int]) -> dict[int, int]:
        if not listed:
            return {}
        ids = list(listed)
        raw = await cast(Awaitable[list[str | None]], self.ctx.redis.hmget(self.seen_key, [str(i) for i in ids]))
        return {i: int(text) for i, text in zip(ids, raw, strict=True) if text is not None}

    async def _correct(self, ids: list[int], seen: Mapping[int, int], names: Mapping[str, Any], now: datetime) -> int:
        """Read the orders whose status changed, and commit their events with their new snapshots: how many
        orders' changes were reported."""
        records = await self.poll.fetch([Row(i, 0) for i in ids], self.ctx.sweep_client)
        before = await self.poll.snapshots.load(list(records))
        events: list[NewEvent] = []
        writes: list[Write] = []
        reported = 0
        for order_id, record in sorted(records.items()):
            old = before.get(order_id)
            if old is None and order_id in seen:
                old = assumed_before(record, seen[order_id], names)
            found = modified_events(self.ctx.account.code, ORDERS, old, record, seen_at=now)
            reported += bool(found)
            events += found
            writes += self.poll.remember(order_id, record, before.get(order_id))
        await self.ctx.commit(events, writes)
        return reported

    def _remember(self, listed: Mapping[int, int]) -> Write:
        """A write replacing the statuses the sweep saw with this sweep's."""
        mapping = {str(i): str(status) for i, status in listed.items()}

        def apply(pipe: Pipeline) -> None:
            pipe.delete(self.seen_key)
            if mapping:
                pipe.hset(self.seen_key, mapping=mapping)

        return apply

    def _save(self, state: StatusSweepState) -> Write:
        text = state.text()

        def apply(pipe: Pipeline) -> None:
            pipe.set(self.state_key, text)

        return apply


async def sweep_statuses(ctx: PollContext, interval_s: float) -> StatusSweepState:
    """One step of the account's status sweep (see the module's docstring)."""
    return await StatusSweep(ctx).step(interval_s)
