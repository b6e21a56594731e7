"""The creation cursor: table tests of its arithmetic, and a property test that simulates Brightpearl."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.cursor import QUERY_SLACK_MS, Row, StampCursor, baseline

OVERLAP = 60_000


def test_a_fresh_cursor_takes_everything() -> None:
    cursor = StampCursor(None)
    assert cursor.query_from_ms() is None
    assert cursor.unseen([Row(2, 500), Row(1, 500), Row(3, 100)]) == [Row(3, 100), Row(1, 500), Row(2, 500)]


def test_query_starts_a_little_below_since() -> None:
    assert StampCursor(10_000).query_from_ms() == 10_000 - QUERY_SLACK_MS


def test_rows_before_since_or_seen_are_not_new() -> None:
    cursor = StampCursor(1000, {7: 1000})
    rows = [Row(6, 999), Row(7, 1000), Row(8, 1000), Row(9, 2000)]
    assert cursor.unseen(rows) == [Row(8, 1000), Row(9, 2000)]


def test_duplicates_in_one_read_count_once() -> None:
    assert StampCursor(None).unseen([Row(1, 5), Row(1, 5)]) == [Row(1, 5)]


@pytest.mark.parametrize(
    ("since", "seen", "read", "done", "expected_since"),
    [
        (None, {}, [], [], None),  # nothing read: unchanged
        (None, {}, [Row(1, 100_000)], [Row(1, 100_000)], 100_000 - OVERLAP),
        (0, {}, [Row(1, 100_000), Row(2, 200_000)], [Row(1, 100_000), Row(2, 200_000)], 200_000 - OVERLAP),
        # a row read but not done (its GET did not return it) holds since at its creation time
        (0, {}, [Row(1, 100_000), Row(2, 200_000)], [Row(2, 200_000)], 100_000),
        # since never moves back
        (150_000, {}, [Row(2, 160_000)], [Row(2, 160_000)], 150_000),
    ],
)
def test_advance(
    since: int | None, seen: dict[int, int], read: list[Row], done: list[Row], expected_since: int | None
) -> None:
    cursor = StampCursor(since, seen).with_done(done).advanced(read, OVERLAP)
    assert cursor.since_ms == expected_since
    assert all(created >= (cursor.since_ms or 0) for created in cursor.seen.values())


def test_seen_is_pruned_below_since() -> None:
    cursor = (
        StampCursor(0).with_done([Row(1, 10_000), Row(2, 200_000)]).advanced([Row(1, 10_000), Row(2, 200_000)], OVERLAP)
    )
    assert cursor.seen == {2: 200_000}


def test_json_round_trip_compresses_runs() -> None:
    cursor = StampCursor(5000, dict.fromkeys(range(100, 400), 5000) | {7: 6000})
    text = cursor.to_json()
    assert "100-399" in text
    assert StampCursor.from_json(text) == cursor
    assert StampCursor.from_json(StampCursor(None).to_json()) == StampCursor(None)


def test_baseline_holds_the_newest_run() -> None:
    assert baseline([]) == StampCursor(None)
    cursor = baseline([Row(9, 3000), Row(8, 3000), Row(5, 1000)])
    assert cursor.since_ms == 3000
    assert cursor.seen == {9: 3000, 8: 3000}
    assert cursor.unseen([Row(5, 1000), Row(8, 3000), Row(10, 3000), Row(11, 4000)]) == [Row(10, 3000), Row(11, 4000)]


# --- a simulated Brightpearl ---------------------------------------------------------------------------------
#
# Orders are created at times that often collide (second precision); some become visible late (committed after
# later orders were already read), within the overlap; the search answers in pages, sorted by creation time
# with ties in any order per request, or not sorted at all; a GET sometimes misses an order that the search
# listed. Whatever happens, every order is emitted exactly once.

creations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=20), st.booleans()),
    min_size=1,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    creations,
    st.integers(min_value=1, max_value=7),
    st.booleans(),
    st.randoms(use_true_random=False),
    st.integers(min_value=0, max_value=5),
)
def test_every_order_is_emitted_exactly_once(
    plan: list[tuple[int, int, bool]], page_size: int, sorted_search: bool, rnd: object, baseline_orders: int
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    overlap_ms = 30_000
    orders: list[tuple[int, int, int]] = []  # (id, stamp_ms, visible_from_ms)
    now = 1_000_000
    # some orders exist before registration
    for i in range(baseline_orders):
        orders.append((i + 1, now - 5_000 + i * 1000, now - 5_000 + i * 1000))
    visible = [Row(i, c) for i, c, v in orders if v <= now]
    cursor = baseline(sorted(visible, key=lambda r: -r.stamp_ms))
    registered_at = cursor.since_ms  # an order stamped before the newest order at registration is "before"
    existing = {r.id for r in visible}
    next_id = baseline_orders + 1
    emitted: list[int] = []
    for step, (gap_s, count, late) in enumerate(plan):
        now += gap_s * 1000
        for _ in range(count % 4):
            # created now (second precision); a late one is stamped up to 20 s earlier but appears only now
            created = (now // 1000) * 1000 - (rnd.randint(0, 20) * 1000 if late else 0)
            orders.append((next_id, created, now))
            next_id += 1
        rows = [
            Row(i, c)
            for i, c, v in orders
            if v <= now and (cursor.query_from_ms() is None or c >= cursor.query_from_ms())
        ]
        if sorted_search:
            rnd.shuffle(rows)
            rows.sort(key=lambda r: r.stamp_ms)  # ties in any order
        else:
            rnd.shuffle(rows)
        read: list[Row] = []
        for start in range(0, len(rows), page_size):
            read += rows[start : start + page_size]
        unseen = cursor.unseen(read)
        # the GET returns most of them; one may be missing this time
        got = [r for r in unseen if not (step % 3 == 0 and r is unseen[-1])]
        emitted += [r.id for r in got]
        cursor = cursor.with_done(got).advanced(read, overlap_ms)
    # a last few quiet polls let everything settle
    for _ in range(3):
        now += 1000
        rows = [
            Row(i, c)
            for i, c, v in orders
            if v <= now and (cursor.query_from_ms() is None or c >= cursor.query_from_ms())
        ]
        unseen = cursor.unseen(rows)
        emitted += [r.id for r in unseen]
        cursor = cursor.with_done(unseen).advanced(rows, overlap_ms)
    expected = sorted(i for i, c, _ in orders if i not in existing and (registered_at is None or c >= registered_at))
    assert len(emitted) == len(set(emitted)), "an order was emitted twice"
    assert sorted(emitted) == expected, "an order was missed"


def test_open_records_survive_a_json_round_trip() -> None:
    cursor = StampCursor(1_000, {7: 1_000}).with_open([Row(7, 1_000), Row(9, 1_500)])
    again = StampCursor.from_json(cursor.to_json())
    assert again == cursor
    assert again.open_rows() == [Row(7, 1_000), Row(9, 1_500)]
    assert StampCursor.from_json(StampCursor(5).to_json()).open == {}  # cursors stored before: none open


def test_an_incomplete_read_in_stamp_order_moves_since_to_its_last_stamp() -> None:
    cursor = StampCursor(1_000)
    read = [Row(1, 1_000), Row(2, 2_000), Row(3, 3_000), Row(4, 3_000)]
    done = cursor.with_done(read)
    moved = done.advanced_partly(read)
    assert moved.since_ms == 3_000
    assert moved.seen == {3: 3_000, 4: 3_000}  # the rest of that stamp is read next time, these are not again
    assert not moved.is_new(Row(4, 3_000))
    assert moved.is_new(Row(5, 3_000))


def test_an_incomplete_read_never_moves_past_a_waiting_row_or_trusts_an_unsorted_answer() -> None:
    read = [Row(1, 1_000), Row(2, 2_000), Row(3, 3_000)]
    waiting_on_two = StampCursor(1_000).with_done([Row(1, 1_000), Row(3, 3_000)])
    assert waiting_on_two.advanced_partly(read).since_ms == 2_000
    unsorted = [Row(3, 3_000), Row(1, 1_000)]
    assert StampCursor(500).with_done(unsorted).advanced_partly(unsorted).since_ms == 500


def test_a_skip_survives_a_json_round_trip() -> None:
    cursor = StampCursor(1_000, {1: 1_000}).skipping(10_000)
    assert StampCursor.from_json(cursor.to_json()).skip == 10_000
