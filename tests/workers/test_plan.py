import pytest

from workers.plan import average_cost, effective_intervals, next_due_ms


def test_within_budget_every_interval_is_kept() -> None:
    asked = {"orders": 5.0, "stock": 10.0, "goods-out-notes": 30.0, "products": 60.0, "contacts": 60.0}
    # orders 24/min, stock 6, notes 4, products 2, contacts 2: 38 of the 75 not held back
    assert effective_intervals(asked, 100) == asked


def test_over_budget_the_lowest_priorities_stretch_first() -> None:
    asked = dict.fromkeys(["orders", "stock", "goods-out-notes", "products", "contacts"], 2.0)
    got = effective_intervals(asked, 100)
    # 75 of the 100 a minute are for polls: orders take 60 (2 searches every 2 s); stock wants 30 and gets the
    # 15 left, every 4 s; the rest keep only the floor (2 a minute): 2 searches a minute each
    assert got == {"orders": 2.0, "stock": 4.0, "goods-out-notes": 60.0, "products": 60.0, "contacts": 60.0}


@pytest.mark.parametrize("per_minute", [1, 10, 100, 200])
def test_never_faster_than_asked(per_minute: int) -> None:
    asked = {"orders": 1.0, "contacts": 30.0}
    got = effective_intervals(asked, per_minute)
    assert all(got[r] >= asked[r] for r in asked)


def test_stock_without_orders_costs_more() -> None:
    with_orders = effective_intervals({"orders": 60.0, "stock": 1.0}, 20)
    alone = effective_intervals({"stock": 1.0}, 20)
    assert alone["stock"] > 1.0
    assert with_orders["stock"] >= 1.0


def test_measured_costs_count() -> None:
    asked = {"orders": 5.0}
    assert effective_intervals(asked, 100, {"orders": 40.0})["orders"] == 32.0  # 40 requests a poll, 75 a minute


@pytest.mark.parametrize(
    ("due_ms", "now_ms", "interval_ms", "next_ms"),
    [
        (10_000, 10_200, 1_000, 11_000),  # picked up 200 ms late: the cadence holds
        (10_000, 10_999, 1_000, 11_000),
        (10_000, 11_000, 1_000, 12_000),  # a whole interval late: from now
        (0, 50_000, 5_000, 55_000),  # never polled before
    ],
)
def test_next_due_keeps_the_cadence(due_ms: int, now_ms: int, interval_ms: int, next_ms: int) -> None:
    assert next_due_ms(due_ms, now_ms, interval_ms) == next_ms


@pytest.mark.parametrize(
    ("previous", "requests", "average"),
    [
        (None, 4, 4.0),  # the first poll: what it cost
        (10.0, 0, 7.0),  # 0.3 of the new, 0.7 of the old
        (2.0, 2, 2.0),
        (1.0, 2, 1.3),
        (0.333, 1, 0.53),  # kept to two decimals
    ],
)
def test_the_cost_average_leans_on_what_it_knew(previous: float | None, requests: int, average: float) -> None:
    assert average_cost(previous, requests) == average
