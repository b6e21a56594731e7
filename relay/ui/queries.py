"""What the dashboard shows, read through the API's own code and limited to what the caller may see.

The admin sees everything; an account-scoped key sees its account, that account's subscriptions, and the
deliveries to them (another account's delivery is "not found", as in the API). Nothing here writes.
"""

import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import cast

from relay.api.access import Principal
from relay.api.account_views import account_view
from relay.api.context import ApiContext
from relay.api.schemas import CODE_PATTERN, AccountView, SubscriptionView
from relay.api.subscription_views import views
from relay.ui.chart import HOUR
from subscriptions.core.errors import NotFound
from subscriptions.core.ids import DELIVERY_PREFIX, is_id
from subscriptions.core.models import AccountRecord, DeliveryRecord, DeliveryStatus, SubscriptionRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.paging import Page, Position

MAX_ROWS = 200  # accounts and subscriptions on the overview; more than this is an operator's API job
CHART_SCAN = 20_000  # deliveries per subscription a scoped key's chart looks at (the admin's chart counts)
ZMSCORE_CHUNK = 2_000


async def visible_accounts(ctx: ApiContext, who: Principal) -> list[AccountView]:
    """The accounts the caller may see, each with its polling state (the API's own view of it)."""
    if who.account is not None:
        try:
            return [await account_view(ctx, await ctx.store.get_account(who.account))]
        except NotFound:
            return []
    page = await ctx.store.list_accounts(limit=MAX_ROWS, cursor=None)
    return [await account_view(ctx, account) for account in page.items]


async def visible_account(ctx: ApiContext, who: Principal, code: str) -> AccountRecord:
    """One account, or :class:`NotFound` if it does not exist or the caller may not see it (or ``code`` is not
    even shaped like an account code: it is never looked up, as in the API)."""
    if not re.fullmatch(CODE_PATTERN, code) or not who.can_see(code):
        raise NotFound(f"account {code!r} does not exist")
    return await ctx.store.get_account(code)


async def view_of(ctx: ApiContext, account: AccountRecord) -> AccountView:
    """The API's view of an account, with its polling state and authorization."""
    return await account_view(ctx, account)


async def visible_subscriptions(ctx: ApiContext, who: Principal) -> list[SubscriptionRecord]:
    """The subscriptions the caller may see, newest first."""
    if who.account is not None:
        own = await ctx.store.account_subscriptions(who.account)
        return sorted(own, key=lambda s: (s.created_at, s.id), reverse=True)[:MAX_ROWS]
    return (await ctx.store.list_subscriptions(limit=MAX_ROWS, cursor=None)).items


async def subscription_views(ctx: ApiContext, subs: Sequence[SubscriptionRecord]) -> list[SubscriptionView]:
    """The API's view of each subscription: its shown state, and its health with the recent success rate."""
    return await views(ctx, subs)


async def visible_delivery(ctx: ApiContext, who: Principal, delivery_id: str) -> DeliveryRecord:
    """One delivery, or :class:`NotFound` if it does not exist or belongs to an account the caller cannot see
    (or ``delivery_id`` is not even shaped like an id: it is never looked up, as in the API)."""
    if not is_id(delivery_id, DELIVERY_PREFIX):
        raise NotFound(f"delivery {delivery_id!r} does not exist")
    delivery = await ctx.store.get_delivery(delivery_id)
    if not who.can_see(delivery.account):
        raise NotFound(f"delivery {delivery_id!r} does not exist")
    return delivery


async def visible_deliveries(
    ctx: ApiContext,
    who: Principal,
    *,
    limit: int,
    cursor: str | None,
    subscription: str | None,
    status: DeliveryStatus | None,
) -> Page[DeliveryRecord]:
    """A newest-first page of the deliveries the caller may see.

    A scoped key reads the index of each of its account's subscriptions after the same cursor and merges
    them: the cursor names a position in time, not in one index, so it holds across all of them.
    """
    if who.account is None:
        return await ctx.store.list_deliveries(limit=limit, cursor=cursor, subscription=subscription, status=status)
    own = [s.id for s in await ctx.store.account_subscriptions(who.account)]
    if subscription is not None:
        if subscription not in own:
            raise NotFound(f"subscription {subscription!r} does not exist")
        own = [subscription]
    pages = [
        await ctx.store.list_deliveries(limit=limit, cursor=cursor, subscription=sub_id, status=status)
        for sub_id in own
    ]
    return merge_pages(pages, limit)


def _position(delivery: DeliveryRecord) -> Position:
    return Position(ms(delivery.created_at), delivery.id)


def _order(position: Position) -> tuple[int, str]:
    return (position.score, position.member)


def merge_pages(pages: Sequence[Page[DeliveryRecord]], limit: int) -> Page[DeliveryRecord]:
    """One newest-first page out of pages read from several indexes after the same cursor.

    An index whose page has a ``next_cursor`` was not read past that position, so nothing older than the
    newest such position is taken yet: it comes on the next page, in order.
    """
    stops = [Position.decode(page.next_cursor) for page in pages if page.next_cursor]
    boundary = max(stops, key=_order, default=None)
    merged = sorted(
        {d.id: d for page in pages for d in page.items}.values(), key=lambda d: _order(_position(d)), reverse=True
    )
    if boundary is not None:
        merged = [d for d in merged if _order(_position(d)) >= _order(boundary)]
    taken = merged[:limit]
    if len(merged) <= limit and boundary is None:
        return Page(taken, None)
    last = _position(taken[-1]) if taken else boundary
    assert last is not None
    return Page(taken, last.encode())


async def hourly_counts(ctx: ApiContext, who: Principal, starts: Sequence[datetime]) -> list[dict[str, int]]:
    """Deliveries created in each hour starting at ``starts``, by their status now.

    For the admin, a count per hour from each status index (cheap whatever the volume). For a scoped key,
    its subscriptions' deliveries of the window (at most ``CHART_SCAN`` each), their status looked up in
    the status indexes.
    """
    edges = [ms(start) for start in starts] + [ms(starts[-1] + HOUR)]
    statuses = [s.value for s in DeliveryStatus]
    counts: list[dict[str, int]] = [dict.fromkeys(statuses, 0) for _ in starts]
    if who.account is None:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for status in statuses:
                for low, high in pairwise(edges):
                    pipe.zcount(keyspace.status_deliveries(status), low, f"({high}")
            raw = cast(list[int], await pipe.execute())
        for s, status in enumerate(statuses):
            for i in range(len(starts)):
                counts[i][status] = int(raw[s * len(starts) + i])
        return counts
    subs = await ctx.store.account_subscriptions(who.account)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for sub in subs:
            index = keyspace.subscription_deliveries(sub.id)
            pipe.zrangebyscore(index, edges[0], f"({edges[-1]}", start=0, num=CHART_SCAN, withscores=True)
        found = cast(list[list[tuple[str, float]]], await pipe.execute())
    scored = [(member, int(score)) for page in found for member, score in page]
    for offset in range(0, len(scored), ZMSCORE_CHUNK):
        chunk = scored[offset : offset + ZMSCORE_CHUNK]
        ids = [member for member, _ in chunk]
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for status in statuses:
                pipe.zmscore(keyspace.status_deliveries(status), ids)
            membership = cast(list[list[float | None]], await pipe.execute())
        for status, scores in zip(statuses, membership, strict=True):
            for (_, created_ms), score in zip(chunk, scores, strict=True):
                if score is not None:
                    counts[_hour_index(edges, created_ms)][status] += 1
    return counts


def _hour_index(edges: Sequence[int], at_ms: int) -> int:
    """The hour ``at_ms`` falls in, given the hours' edges (every time looked at is within them)."""
    return min(max(bisect_right(edges, at_ms) - 1, 0), len(edges) - 2)
