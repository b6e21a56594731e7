"""Fault bookkeeping: which requests a fault applies to, and for how long."""

import pytest

from relay.sandbox.faults import FaultBook


def test_a_fault_without_limits_applies_until_cleared() -> None:
    book = FaultBook()
    fault = book.add("error_500", now_ms=0)
    assert [book.take("order-service/order-search", at) for at in (0, 10**9)] == [[fault], [fault]]
    assert book.clear() == 1
    assert book.take("order-service/order-search", 0) == []


def test_count_limits_the_requests() -> None:
    book = FaultBook()
    book.add("unavailable", now_ms=0, count=2)
    assert [len(book.take("x", 0)) for _ in range(4)] == [1, 1, 0, 0]
    assert book.active(0) == ()


def test_duration_limits_the_time() -> None:
    book = FaultBook()
    book.add("throttle", now_ms=1_000, for_ms=500)
    assert len(book.take("x", 1_499)) == 1
    assert book.take("x", 1_500) == []


def test_count_and_duration_whichever_ends_first() -> None:
    book = FaultBook()
    book.add("error_500", now_ms=0, count=5, for_ms=100)
    assert len(book.take("x", 50)) == 1
    assert book.take("x", 100) == []


def test_path_contains_selects_requests_and_only_those_are_charged() -> None:
    book = FaultBook()
    book.add("error_500", now_ms=0, count=1, path_contains="order-service/order/")
    assert book.take("order-service/order-search", 0) == []
    assert len(book.take("order-service/order/1-5", 0)) == 1
    assert book.take("order-service/order/1-5", 0) == []


def test_several_faults_apply_together_in_the_order_added() -> None:
    book = FaultBook()
    slow = book.add("slow", now_ms=0, delay_ms=100)
    broken = book.add("malformed", now_ms=0)
    assert book.take("x", 0) == [slow, broken]
    assert [f.id for f in book.active(0)] == [slow.id, broken.id]
    assert slow.id != broken.id


@pytest.mark.parametrize(
    ("for_ms", "period_ms", "now_ms", "expected"),
    [
        (1_500, None, 0, 1_500),  # the time the fault has left
        (1_500, None, 1_000, 500),
        (600_000, None, 0, 59_999),  # never a whole minute or more
        (None, 2_500, 0, 2_500),
        (600_000, 2_500, 0, 2_500),  # the period given wins over the time left
        (None, None, 0, 1_000),  # bounded by count alone: a second
    ],
)
def test_throttle_period(for_ms: int | None, period_ms: int | None, now_ms: int, expected: int) -> None:
    fault = FaultBook().add("throttle", now_ms=0, for_ms=for_ms, throttle_period_ms=period_ms)
    assert fault.period_ms(now_ms) == expected


def test_describe() -> None:
    fault = FaultBook().add("slow", now_ms=0, count=3, for_ms=1_000, delay_ms=20, path_contains="search")
    assert fault.describe(400) == {
        "id": fault.id,
        "kind": "slow",
        "path_contains": "search",
        "remaining_count": 3,
        "remaining_ms": 600,
        "delay_ms": 20,
    }


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultBook().add("flood", now_ms=0)  # type: ignore[arg-type]
