"""Targeted reads: the ids a hint named, read now and handed to the same detection a poll runs.

A hint (``subscriptions.store.hints``) only says where to look. What is found there goes through the detectors'
own functions, against the same snapshots, stock figures and followed notes, and is committed through the
poll's fenced ``ctx.commit``: the events carry exactly the ids polling would give them (the envelope derives
them from the change), and ``DeliveryQueue.commit`` stores an event once, so a change reached through a hint and
again through the poll is delivered once. No cursor moves here: the streams still list every change, and find
those a hint read already done (their snapshots say so).

- orders, products, contacts: :meth:`workers.records.RecordPoll.derive_hinted`, 200 ids a GET; after orders,
  when stock is watched but its hints are not trusted, the dirty products (an order's rows mark them) are settled
  at once, so an allocation is seen as fast as the order. While stock's hints are healthy, Brightpearl announces
  the allocation itself (``product.modified.on-hand-modified``), and a request for every order's hint would
  only halve how many orders a burst can read within the budget.
- stock: the hinted products join the dirty set, which is settled now (:func:`workers.stock.settle_dirty`).
- goods-out notes: :func:`workers.goods_out.read_hinted_notes`.

A resource whose streams have no cursor yet (never polled) is left to its first poll.
"""

from collections.abc import Sequence

from workers.context import PollContext
from workers.cursor import StampCursor
from workers.goods_out import read_hinted_notes
from workers.records import KINDS, RecordPoll
from workers.stock import Figures, settle_dirty
from workers.stream import BATCH

MAX_HINTED_IDS = 1_000  # ids of one resource a poll job reads; the rest wait for the next job (due at once)
HINTED = ("orders", "products", "contacts", "stock", "goods-out-notes")


async def read_hinted(ctx: PollContext, resource: str, ids: Sequence[int], *, settle_stock: bool = True) -> None:
    """Read the hinted ``ids`` of ``resource`` and commit what a poll would make of them (after orders, with
    ``settle_stock``, the stock of their products too)."""
    ids = sorted(set(ids))
    if not ids:
        return
    if resource in KINDS:
        await _read_records(ctx, resource, ids)
        if resource == "orders" and settle_stock and "stock" in ctx.account.resources:
            await settle_dirty(ctx, Figures(ctx.redis, ctx.account.code))
    elif resource == "stock":
        await ctx.commit([], [ctx.mark_stock_dirty(ids)])
        await settle_dirty(ctx, Figures(ctx.redis, ctx.account.code))
    elif resource == "goods-out-notes":
        await read_hinted_notes(ctx, ids)


async def _read_records(ctx: PollContext, resource: str, ids: list[int]) -> None:
    kind = KINDS[resource]
    created_stream, updated_stream = kind.streams
    stored = [await ctx.position(s.key) for s in (created_stream, updated_stream)]
    if stored[0] is None or stored[1] is None:
        return  # never polled: its first poll takes the baseline
    created, updated = (StampCursor.from_json(text) for text in stored if text is not None)
    poll = RecordPoll(ctx, kind)
    for start in range(0, len(ids), BATCH):
        derived = await poll.derive_hinted(created, updated, ids[start : start + BATCH])
        await ctx.commit(derived.events, derived.writes)
