"""New orders: found by ``order-search`` on ``createdOn`` (always set, unlike ``updatedOn``, which is null on
new orders), read in full by multi-id GETs, and turned into ``order.created`` events."""

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from subscriptions.ids import event_id
from subscriptions.outbox import NewEvent, event_body
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.search import SearchPage
from workers.brightpearl.timestamps import TimestampError, format_utc, from_ms, parse_timestamp, to_ms
from workers.cursor import CreationCursor, Row, baseline

log = logging.getLogger(__name__)

ORDER_SEARCH = "order-service/order-search"
ORDER_GET = "order-service/order/"
MAX_PAGES_PER_POLL = 20  # 10,000 new orders a poll; more simply waits for the next poll
MAX_BASELINE_PAGES = 10

Commit = Callable[[list[NewEvent], CreationCursor], Awaitable[None]]


def search_rows(page: SearchPage) -> list[Row]:
    """The ``(orderId, createdOn)`` of each row; rows without a usable creation time are skipped, loudly."""
    rows = []
    for raw in page.rows:
        try:
            rows.append(Row(int(raw["orderId"]), to_ms(parse_timestamp(str(raw["createdOn"])))))
        except (KeyError, TypeError, ValueError, TimestampError) as error:
            log.warning("skipping order-search row %r: %s", raw, error)
    return rows


def order_created(account: str, order: dict[str, Any]) -> NewEvent:
    """The ``order.created`` event of an order as Brightpearl returns it; its id depends only on the order."""
    order_id = int(order["id"])
    try:
        when = format_utc(parse_timestamp(str(order["createdOn"])))
    except (KeyError, TimestampError):
        when = ""
    data = {
        "accountCode": account,
        "resourceType": "order",
        "id": order_id,
        "lifecycleEvent": "created",
        "fullEvent": "order.created",
        "resource": order,
    }
    event_type = "order.created"
    return NewEvent(
        id=event_id(account, event_type, order_id),
        type=event_type,
        account=account,
        resource_id=order_id,
        timestamp=when,
        body=event_body(event_type, when, data),
    )


async def read_created_since(
    client: BrightpearlClient, cursor: CreationCursor, *, max_pages: int
) -> tuple[list[Row], bool]:
    """Every order created from the cursor's query bound, and whether the read was complete."""
    params = {"columns": "orderId,createdOn", "sort": "createdOn.ASC", "pageSize": str(client.page_size)}
    start = cursor.query_from_ms()
    if start is not None:
        params["createdOn"] = format_utc(from_ms(start)) + "/"
    rows: list[Row] = []
    first = 1
    for _ in range(max_pages):
        page = await client.search(ORDER_SEARCH, {**params, "firstResult": str(first)})
        rows += search_rows(page)
        if not page.more_pages or not page.rows:
            return rows, True
        first = page.last_result + 1
    return rows, False


async def poll_created_orders(
    client: BrightpearlClient,
    account: str,
    cursor: CreationCursor,
    *,
    overlap_ms: int,
    commit: Commit,
    max_pages: int = MAX_PAGES_PER_POLL,
) -> CreationCursor:
    """One poll: emit ``order.created`` for every order the cursor has not seen, committing events with the
    cursor that covers them after each batch of GETs, so that a crash repeats at most one batch."""
    read, complete = await read_created_since(client, cursor, max_pages=max_pages)
    waiting = cursor.unseen(read)
    for start in range(0, len(waiting), 200):
        batch = waiting[start : start + 200]
        orders = {
            int(order["id"]): order
            for order in await client.get_many(ORDER_GET, [r.id for r in batch])
            if "id" in order
        }
        # an order listed but not returned yet stays unseen, and is asked for again next poll
        done = [row for row in batch if row.id in orders]
        cursor = cursor.with_done(done)
        await commit([order_created(account, orders[row.id]) for row in done], cursor)
    if complete:
        advanced = cursor.advanced(read, overlap_ms)
        if advanced != cursor:
            cursor = advanced
            await commit([], cursor)
    return cursor


async def orders_baseline(client: BrightpearlClient) -> CreationCursor:
    """Where the account's orders stand now: the newest orders (all those sharing the newest creation time)."""
    params = {"columns": "orderId,createdOn", "sort": "createdOn.DESC", "pageSize": str(client.page_size)}
    rows: list[Row] = []
    first = 1
    for _ in range(MAX_BASELINE_PAGES):
        page = await client.search(ORDER_SEARCH, {**params, "firstResult": str(first)})
        page_rows = search_rows(page)
        rows += page_rows
        if not page.more_pages or not page_rows:
            return baseline(rows)
        if any(a.created_ms < b.created_ms for a, b in itertools.pairwise(page_rows)):
            # The server ignored the sort. Its default order is by id, so the newest orders are on the last page.
            last_first = max(first + len(page_rows), page.results_available - client.page_size + 1)
            last_page = await client.search(ORDER_SEARCH, {**params, "firstResult": str(last_first)})
            return baseline(rows + search_rows(last_page))
        if page_rows[-1].created_ms < max(row.created_ms for row in rows):
            return baseline(rows)  # the run of the newest creation time ended on this page
        first = page.last_result + 1
    log.warning("orders baseline read %d pages without reaching the end; using the newest of those", len(rows))
    return baseline(rows)
