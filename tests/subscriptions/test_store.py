"""Listing newest first with cursors, and filters, on a real Redis."""

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.errors import Conflict, InvalidInput, NotFound
from subscriptions.core.models import AccountRecord, SubscriptionRecord
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.conftest import FakeClock


def account(code: str, clock: FakeClock) -> AccountRecord:
    return AccountRecord(
        code=code,
        base_url="http://x/public-api/" + code,
        app_ref=code + "_relay",
        auth="account_token",
        token="t",
        poll_interval_s=5,
        resources=["orders"],
        created_at=clock(),
    )


def subscription(n: int, clock: FakeClock, account_code: str = "acme") -> SubscriptionRecord:
    return SubscriptionRecord(
        id=f"sub_{n:03d}",
        account=account_code,
        url="https://example.com/",
        events=["*"],
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        created_at=clock(),
        updated_at=clock(),
    )


async def test_accounts_are_unique(redis_client: Redis, clock: FakeClock) -> None:
    store = Store(redis_client)
    await store.create_account(account("acme", clock), {"orders": "{}"}, first_poll_ms=0)
    with pytest.raises(Conflict):
        await store.create_account(account("acme", clock), {}, first_poll_ms=0)
    assert (await store.get_account("acme")).app_ref == "acme_relay"
    with pytest.raises(NotFound):
        await store.get_account("nope")


async def test_pages_newest_first_and_stable_under_inserts(redis_client: Redis, clock: FakeClock) -> None:
    store = Store(redis_client)
    for n in range(25):
        if n % 5:
            clock.advance(1)  # some share a creation time
        await store.create_subscription(subscription(n, clock))
    first = await store.list_subscriptions(limit=10, cursor=None)
    # new ones arrive between two pages: they neither shift nor repeat the pages already read
    for n in range(100, 103):
        clock.advance(1)
        await store.create_subscription(subscription(n, clock))
    seen = [s.id for s in first.items]
    cursor = first.next_cursor
    while cursor:
        page = await store.list_subscriptions(limit=10, cursor=cursor)
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
    assert len(seen) == 25 == len(set(seen))
    assert seen == [f"sub_{n:03d}" for n in reversed(range(25))]  # ties in reverse id order


async def test_last_page_has_no_cursor(redis_client: Redis, clock: FakeClock) -> None:
    store = Store(redis_client)
    for n in range(3):
        clock.advance(1)
        await store.create_subscription(subscription(n, clock))
    page = await store.list_subscriptions(limit=3, cursor=None)
    assert [s.id for s in page.items] == ["sub_002", "sub_001", "sub_000"]
    assert page.next_cursor is None
    assert (await store.list_subscriptions(limit=5, cursor=None)).next_cursor is None


async def test_filters(redis_client: Redis, clock: FakeClock) -> None:
    store, queue = Store(redis_client), DeliveryQueue(redis_client)
    subs = [subscription(1, clock), subscription(2, clock, "beta")]
    for s in subs:
        await store.create_subscription(s)
    assert [s.id for s in (await store.list_subscriptions(limit=10, cursor=None, account="beta")).items] == ["sub_002"]
    events = [
        NewEvent(f"evt_{n}", t, a, n, "", event_body(t, "", {}))
        for n, (t, a) in enumerate([("order.created", "acme"), ("contact.created", "acme"), ("order.created", "beta")])
    ]
    for e in events:
        clock.advance(1)
        await queue.commit([e], subs, now=clock())
    by_type = await store.list_deliveries(limit=10, cursor=None, type_="order.created")
    assert sorted(d.event_id for d in by_type.items) == ["evt_0", "evt_2"]
    by_sub = await store.list_deliveries(limit=10, cursor=None, subscription="sub_001", type_="contact.created")
    assert [d.event_id for d in by_sub.items] == ["evt_1"]
    by_event = await store.list_deliveries(limit=10, cursor=None, event_id="evt_2")
    assert [d.subscription for d in by_event.items] == ["sub_002"]
    acme_events = await store.list_events(limit=10, cursor=None, account="acme")
    assert [e.id for e in acme_events.items] == ["evt_1", "evt_0"]
    recent = await store.list_events(limit=10, cursor=None, since=clock() - timedelta(seconds=1))
    assert [e.id for e in recent.items] == ["evt_2", "evt_1"]


async def test_bad_cursor_is_invalid_input(redis_client: Redis) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        await Store(redis_client).list_subscriptions(limit=10, cursor="not-a-cursor!!")


async def test_deleting_an_account_removes_its_subscriptions(redis_client: Redis, clock: FakeClock) -> None:
    store = Store(redis_client)
    await store.create_account(account("acme", clock), {"orders.created": "{}"}, first_poll_ms=0)
    await store.create_subscription(subscription(1, clock))
    await store.delete_account("acme")
    with pytest.raises(NotFound):
        await store.get_subscription("sub_001")
    assert await store.get_position("acme", "orders.created") is None
    assert (await store.list_subscriptions(limit=10, cursor=None)).items == []
