"""Stock levels: ``product.modified.on-hand-modified`` whenever a product's availability moves in any warehouse.

Finding changes costs requests in proportion to the changes, not to the catalogue. Two things move stock
figures: goods movements (receipts, shipments, corrections; a ``goods-movement-search`` stream) and changes to
orders (allocations move figures without any movement; the orders detector marks the products on changed
orders, or stock follows orders itself when orders are not watched). The products touched are kept in a
*dirty* set; each poll reads ``product-availability`` for them alone, 100 a request, and compares with the
figures kept from last time. A slow reconciliation *sweep* over the whole catalogue, paced at low priority,
catches whatever the incremental path missed, and also takes the first figures of a large catalogue.
"""

import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent, resource_event
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from workers import figures as kept_figures
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.timestamps import format_utc
from workers.context import PollContext
from workers.cursor import Row
from workers.records import ORDERS_FOR_STOCK, poll_records
from workers.stream import Derived, Stream, Write, follow, take_baseline

log = logging.getLogger(__name__)

AVAILABILITY = "warehouse-service/product-availability/"
# Ids a product-availability request names: the endpoint's cap is UNCONFIRMED (clients use 100-200, R-MCP 100;
# API.md 6.1, 8.1), so the relay stays within the smallest (a strict sandbox account refuses more).
AVAILABILITY_IDS = 100
PRODUCT_SEARCH = "product-service/product-search"
MOVEMENTS = Stream(
    "stock.movements",
    "warehouse-service/goods-movement-search",
    "goodsMovementId",
    "updatedOn",
    more_columns=("productId",),
)
SWEEP_KEY = "stock.sweep"
EVENT = "product.modified.on-hand-modified"
BASELINE_PAGES_AT_REGISTRATION = 10  # up to 5,000 products' figures before the registration answers
SWEEP_ROOM = 0.5  # the sweep runs only while less than half the relay's budget was used in the last minute


def figures_text(figures: Mapping[str, Any]) -> str:
    """Availability as compared and stored: ``total`` and ``warehouses``, keys sorted."""
    return json.dumps(
        {"total": figures.get("total"), "warehouses": figures.get("warehouses")}, sort_keys=True, separators=(",", ":")
    )


@dataclass(frozen=True)
class Known:
    """A product's figures as last seen, and how many changes the relay has reported for it."""

    figures: dict[str, Any]
    changes: int

    def text(self) -> str:
        """As kept in the account's figures hash (``workers.figures``: compact where the figures allow)."""
        return kept_figures.encode(self.figures, self.changes)

    @classmethod
    def parse(cls, text: str) -> "Known":
        return cls(*kept_figures.decode(text))


def stock_event(
    account: str, product_id: int, before: dict[str, Any] | None, after: dict[str, Any], count: int, seen_at: datetime
) -> NewEvent:
    """The event of a product's figures moving; its id depends on the figures after and on how many changes came
    before, so the same change seen twice keeps its id and figures that return to an old value get a new one."""
    return resource_event(
        account,
        EVENT,
        product_id,
        after,
        seen_at,
        state_after={"after": after, "change": count},
        more={"before": before, "after": after},
    )


def compare(
    account: str, known: Mapping[int, Known], current: Mapping[int, dict[str, Any]], seen_at: datetime
) -> tuple[list[NewEvent], dict[int, Known]]:
    """Events for every product whose figures differ from those known, and what is known afterwards. A product
    with no known figures (new since the baseline) reports ``before: null``."""
    events, updated = [], {}
    for product_id, figures in sorted(current.items()):
        after = json.loads(figures_text(figures))
        old = known.get(product_id)
        if old is not None and figures_text(old.figures) == figures_text(after):
            continue
        count = (old.changes if old else 0) + 1
        events.append(stock_event(account, product_id, old.figures if old else None, after, count, seen_at))
        updated[product_id] = Known(after, count)
    return events, updated


class Figures:
    """The stock figures the relay keeps for one account, and its dirty set."""

    def __init__(self, redis: "Redis", account: str) -> None:
        self.redis = redis
        self.account = account
        self.key = keyspace.stock_figures(account)
        self.dirty_key = keyspace.stock_dirty(account)

    async def load(self, product_ids: Sequence[int]) -> dict[int, Known]:
        if not product_ids:
            return {}
        raw = await cast(Awaitable[list[str | None]], self.redis.hmget(self.key, [str(i) for i in product_ids]))
        return {i: Known.parse(text) for i, text in zip(product_ids, raw, strict=True) if text is not None}

    async def dirty(self) -> list[int]:
        members = await cast(Any, self.redis.smembers(self.dirty_key))
        return sorted(int(m) for m in members)

    def store(self, known: Mapping[int, Known], settled: Sequence[int]) -> Write:
        """A write storing ``known`` and taking ``settled`` products off the dirty set."""
        mapping = {str(i): k.text() for i, k in known.items()}
        members = [str(i) for i in settled]

        def apply(pipe: Pipeline) -> None:
            if mapping:
                pipe.hset(self.key, mapping=mapping)
            if members:
                pipe.srem(self.dirty_key, *members)

        return apply


async def availability(client: BrightpearlClient, product_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Current figures of the stock-tracked products among ``product_ids`` (the others are absent), 100 ids a
    request. A product Brightpearl refuses alone (deleted, not stock-tracked: the whole request answers 400,
    API.md 8.1) is dropped, in ``client.dropped_ids``, so that one bad id never stops the others' figures."""
    return await client.get_keyed(AVAILABILITY, product_ids, max_per_request=AVAILABILITY_IDS, split_on_rejection=True)


async def poll_stock(ctx: PollContext) -> None:
    """One poll: follow movements (and orders, if nothing else does), settle the dirty products, sweep a little."""
    if "orders" not in ctx.account.resources:
        await poll_records(ctx, ORDERS_FOR_STOCK)
    figures = Figures(ctx.redis, ctx.account.code)

    async def derive(rows: list[Row], raw: Mapping[int, dict[str, Any]]) -> Derived:
        products = {int(raw[r.id]["productId"]) for r in rows if raw.get(r.id, {}).get("productId") is not None}
        return Derived([], [ctx.mark_stock_dirty(products)], {r.id for r in rows})

    await follow(
        ctx.client,
        MOVEMENTS,
        await ctx.cursor(MOVEMENTS),
        overlap_ms=ctx.overlap_ms,
        derive=derive,
        commit=ctx.commit_for(MOVEMENTS),
    )
    await settle_dirty(ctx, figures)
    await Sweep(ctx, figures).step(ctx.sweep_interval_s)


async def settle_dirty(ctx: PollContext, figures: Figures) -> None:
    """Read the figures of every dirty product, 100 a request, and commit an event for each that moved, taking
    them off the dirty set: the poll's path, and a hint's (``workers.hint_reads``)."""
    dirty = await ctx.stock_dirty()
    for start in range(0, len(dirty), AVAILABILITY_IDS):
        batch = dirty[start : start + AVAILABILITY_IDS]
        current = await availability(ctx.client, batch)
        events, known = compare(ctx.account.code, await figures.load(batch), current, ctx.clock())
        await ctx.commit(events, [figures.store(known, batch)])


@dataclass
class SweepState:
    mode: Literal["baseline", "reconcile", "idle"] = "baseline"
    next_first: int = 1
    due_ms: int = 0
    corrections: int = 0
    last_completed_at: str | None = None
    last_corrections: int | None = None

    def text(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def parse(cls, text: str | None) -> "SweepState":
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class CataloguePage:
    figures: dict[int, dict[str, Any]]  # stock-tracked products on the page, by id
    next_first: int
    finished: bool


async def catalogue_page(client: BrightpearlClient, first: int) -> CataloguePage:
    """One page of the stock-tracked catalogue with its figures: one search and up to three availability reads."""
    page = await client.search(
        PRODUCT_SEARCH,
        {
            "stockTracked": "true",
            "columns": "productId",
            "sort": "productId.ASC",
            "pageSize": str(client.page_size),
            "firstResult": str(first),
        },
    )
    ids = [int(row["productId"]) for row in page.rows if row.get("productId") is not None]
    figures = await availability(client, ids) if ids else {}
    return CataloguePage(figures, page.last_result + 1 if page.rows else first, not page.more_pages or not page.rows)


async def stock_baseline(
    client: BrightpearlClient, interval_s: float, now_ms: int
) -> tuple[dict[str, str], dict[int, str]]:
    """What registering an account takes for stock: the movements cursor, and the catalogue's figures (as many
    pages as registration allows; a larger catalogue's sweep goes on in the background)."""
    positions = {MOVEMENTS.key: (await take_baseline(client, MOVEMENTS)).to_json()}
    for stream in ORDERS_FOR_STOCK.streams:
        positions[stream.key] = (await take_baseline(client, stream)).to_json()
    figures: dict[int, str] = {}
    state = SweepState()
    for _ in range(BASELINE_PAGES_AT_REGISTRATION):
        page = await catalogue_page(client, state.next_first)
        figures.update((i, Known(json.loads(figures_text(f)), 0).text()) for i, f in page.figures.items())
        state.next_first = page.next_first
        if page.finished:
            state = SweepState("idle", 1, now_ms + int(interval_s * 1000))
            break
    positions[SWEEP_KEY] = state.text()
    return positions, figures


class Sweep:
    """Reads the whole catalogue's figures a page at a time: first to take them (``baseline``, no events),
    then once an interval to catch what the incremental path missed (``reconcile``, events and a count). It runs
    only while the account's budget has room: it is the first thing to wait."""

    def __init__(self, ctx: PollContext, figures: Figures) -> None:
        self.ctx = ctx
        self.figures = figures
        self.key = keyspace.position(ctx.account.code, SWEEP_KEY)

    async def state(self) -> SweepState:
        return SweepState.parse(await self.ctx.position(SWEEP_KEY))

    async def step(self, interval_s: float, *, pages: int = 1) -> SweepState:
        """Up to ``pages`` pages of the sweep, when one is under way or due and the budget has room."""
        state = await self.state()
        now = self.ctx.clock()
        if state.mode == "idle":
            if ms(now) < state.due_ms:
                return state
            state = SweepState("reconcile", 1, 0, 0, state.last_completed_at, state.last_corrections)
        client = self.ctx.sweep_client
        for _ in range(pages):
            if not await self.ctx.budget_has_room(SWEEP_ROOM):
                break
            page = await catalogue_page(client, state.next_first)
            known = await self.figures.load(list(page.figures))
            if state.mode == "baseline":
                events: list[NewEvent] = []
                fresh = {i: Known(json.loads(figures_text(f)), 0) for i, f in page.figures.items() if i not in known}
            else:
                events, fresh = compare(self.ctx.account.code, known, page.figures, now)
                state.corrections += len(events)
                if events:
                    self.ctx.metrics.reconciliation_corrections.inc(len(events))
                    log.info("stock sweep of %s caught %d changes", self.ctx.account.code, len(events))
            state.next_first = page.next_first
            if page.finished:
                corrections = state.corrections if state.mode == "reconcile" else state.last_corrections
                state = SweepState("idle", 1, ms(now + timedelta(seconds=interval_s)), 0, format_utc(now), corrections)
            await self.ctx.commit(events, [self.figures.store(fresh, []), self._save(state)])
            if page.finished:
                break
        return state

    def _save(self, state: SweepState) -> Write:
        text = state.text()

        def apply(pipe: Pipeline) -> None:
            pipe.set(self.key, text)

        return apply
