"""What a caller may see: merging pages of several subscriptions' indexes, and the chart's counts."""

from datetime import UTC, datetime, timedelta

from relay.api.access import ADMIN, Principal
from relay.ui.chart import hour_starts
from relay.ui.queries import hourly_counts, merge_pages, visible_deliveries
from subscriptions.core.models import DeliveryRecord, DeliveryStatus
from subscriptions.core.times import ms
from subscriptions.store.paging import Page, Position
from tests.ui.world import Relay

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def delivery(n: int, sub: str) -> DeliveryRecord:
    return DeliveryRecord(
        id=f"dlv_{n:03d}",
        event_id=f"evt_{n}",
        subscription=sub,
        account="acme",
        type="order.created",
        status=DeliveryStatus.succeeded,
        created_at=T0 + timedelta(seconds=n),
        next_attempt_at=None,
    )


def cursor_at(d: DeliveryRecord) -> str:
    return Position(ms(d.created_at), d.id).encode()


def test_pages_of_several_indexes_merge_newest_first() -> None:
    a = [delivery(n, "a") for n in (9, 5, 1)]
    b = [delivery(n, "b") for n in (8, 7, 2)]
    page = merge_pages([Page(a, None), Page(b, None)], limit=4)
    assert [d.id for d in page.items] == ["dlv_009", "dlv_008", "dlv_007", "dlv_005"]
    assert page.next_cursor == cursor_at(a[1])
    last = merge_pages([Page(a[2:], None), Page(b[2:], None)], limit=4)
    assert [d.id for d in last.items] == ["dlv_002", "dlv_001"]
    assert last.next_cursor is None


def test_nothing_older_than_where_an_index_stopped_is_taken_yet() -> None:
    a = [delivery(n, "a") for n in (9, 6)]  # "a" has more after 6
    b = [delivery(n, "b") for n in (8, 3)]
    page = merge_pages([Page(a, cursor_at(a[-1])), Page(b, None)], limit=10)
    assert [d.id for d in page.items] == ["dlv_009", "dlv_008", "dlv_006"]  # not 3: "a" may have 5, 4 …
    assert page.next_cursor == cursor_at(a[-1])


async def test_a_scoped_key_pages_through_its_own_deliveries_only(relay: Relay) -> None:
    for code in ("acme", "globex"):
        await relay.add_account(code)
    for _ in range(2):
        await relay.subscribe("acme")
    await relay.subscribe("globex")
    made = [d for n in range(5) for d in await relay.commit_event("acme", n)]
    await relay.commit_event("globex", 99)
    acme = Principal(account="acme")
    seen: list[str] = []
    cursor = None
    while True:
        page = await visible_deliveries(relay.ctx, acme, limit=3, cursor=cursor, subscription=None, status=None)
        seen += [d.id for d in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(d.id for d in made)
    assert len(seen) == 10


async def test_the_chart_counts_what_the_caller_may_see(relay: Relay) -> None:
    for code in ("acme", "globex"):
        await relay.add_account(code)
    await relay.subscribe("acme")
    await relay.subscribe("globex")
    now = relay.ctx.clock()
    for hours_ago, n in ((0, 1), (0, 2), (5, 3), (30, 4)):  # the last one is outside the 24 hours
        await relay.commit_event("acme", n, at=now - timedelta(hours=hours_ago))
    await relay.commit_event("globex", 5)
    starts = hour_starts(now)
    acme = await hourly_counts(relay.ctx, Principal(account="acme"), starts)
    everyone = await hourly_counts(relay.ctx, ADMIN, starts)
    assert sum(sum(c.values()) for c in acme) == 3
    assert sum(acme[-1].values()) == 2
    assert sum(acme[-6].values()) == 1
    assert sum(sum(c.values()) for c in everyone) == 4
