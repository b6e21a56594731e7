import pytest

from workers.plan import average_cost, effective_intervals, fill, interval_warnings, next_due_ms


def test_within_budget_every_interval_is_kept() -> None:
    asked = {"orders": 5.0, "stock": 10.0, "goods-out-notes": 30.0, "products": 60.0, "contacts": 60.0}
    # orders 24/min, stock 6, notes 4, products 2, contacts 2: 38 of the 75 not held back
    assert effective_intervals(asked, 100) == asked


ALL = ("orders", "stock", "goods-out-notes", "products", "contacts")


@pytest.mark.parametrize(
    ("asked", "per_minute", "effective"),
    [
        # the defaults (poll_interval_s 5, RELAY_BUDGET_SHARE 0.5): 96 requests a minute wanted, 75 not held back;
        # orders, stock and notes keep 5 s, products and contacts wait a little, well within twice 5 s
        (
            dict.fromkeys(ALL, 5.0),
            100,
            {"orders": 5.0, "stock": 5.0, "goods-out-notes": 5.0, "products": 8.889, "contacts": 8.889},
        ),
        # 1 s asked of everything: orders wait most briefly, stock and notes are not starved to a minute
        (
            dict.fromkeys(ALL, 1.0),
            100,
            {"orders": 2.1, "stock": 8.4, "goods-out-notes": 16.8, "products": 33.6, "contacts": 33.6},
        ),
        # what contacts do not need (every 300 s) goes to the others
        (
            {**dict.fromkeys(ALL, 5.0), "contacts": 300.0},
            50,
            {"orders": 5.0, "stock": 9.16, "goods-out-notes": 18.321, "products": 36.641, "contacts": 300.0},
        ),
        # a small budget (15 a minute for polls): everyone waits, orders least (weights 16:4:2:1:1), nobody stops
        (
            dict.fromkeys(ALL, 5.0),
            20,
            {"orders": 10.5, "stock": 42.0, "goods-out-notes": 84.0, "products": 168.0, "contacts": 168.0},
        ),
        # stock alone follows orders itself: 3 searches a poll
        ({"stock": 1.0}, 100, {"stock": 2.4}),
    ],
    ids=["defaults", "1 s asked", "contacts slow", "small budget", "stock alone"],
)
def test_the_budget_is_shared_by_weight(asked: dict[str, float], per_minute: int, effective: dict[str, float]) -> None:
    assert effective_intervals(asked, per_minute) == effective


def test_at_the_defaults_an_idle_account_polls_everything_within_twice_its_interval() -> None:
    asked = dict.fromkeys(ALL, 5.0)
    assert all(interval <= 2 * 5.0 for interval in effective_intervals(asked, 100).values())


def test_with_1_s_asked_nothing_is_starved_to_a_minute() -> None:
    got = effective_intervals(dict.fromkeys(ALL, 1.0), 100)
    assert got["orders"] == min(got.values())
    assert got["orders"] < 2.4  # what orders got when they took everything (measured before weights)
    assert got["stock"] < 10  # measured before: 39 s
    assert got["goods-out-notes"] < 20  # measured before: 60 s
    assert max(got.values()) < 60


@pytest.mark.parametrize(
    ("wanted", "budget", "rates"),
    [
        ({"a": 10.0, "b": 10.0}, 100.0, {"a": 10.0, "b": 10.0}),  # enough for all
        ({"a": 100.0, "b": 100.0}, 30.0, {"a": 20.0, "b": 10.0}),  # short: by weight 2 to 1
        ({"a": 100.0, "b": 1.0}, 30.0, {"a": 29.0, "b": 1.0}),  # b wants less than its share: a gets the rest
        ({"a": 0.5, "b": 100.0}, 30.0, {"a": 0.5, "b": 29.5}),
    ],
)
def test_fill(wanted: dict[str, float], budget: float, rates: dict[str, float]) -> None:
    assert fill(wanted, {"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 1.0}, budget) == rates


def test_warnings_name_each_stretched_resource_and_what_to_do() -> None:
    asked = dict.fromkeys(ALL, 5.0)
    warnings = interval_warnings(asked, effective_intervals(asked, 100), 100)
    assert [w.split(" ")[0] for w in warnings] == ["products", "contacts"]
    assert warnings[0].startswith("products is polled every 8.889 s, not every 5 s as asked")
    assert "RELAY_BUDGET_SHARE" in warnings[0]
    assert interval_warnings({"orders": 5.0}, effective_intervals({"orders": 5.0}, 100), 100) == []


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
