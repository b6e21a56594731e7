"""The rolling-window throttle, with explicit times: 200 requests per rolling 60 s."""

import pytest

from relay.sandbox.throttle import RollingWindowThrottle, ThrottleDecision


@pytest.mark.parametrize(
    ("earlier_ms", "now_ms", "expected"),
    [
        ([], 0, ThrottleDecision(True, 199, 59_999)),  # the oldest is this one: a whole minute, shown as 59 999
        ([0], 1_000, ThrottleDecision(True, 198, 59_000)),
        ([0, 30_000], 45_000, ThrottleDecision(True, 197, 15_000)),
        ([0], 59_999, ThrottleDecision(True, 198, 1)),  # still inside the window
        ([0], 60_000, ThrottleDecision(True, 199, 59_999)),  # left it exactly a minute later
        ([0] * 199, 10, ThrottleDecision(True, 0, 59_990)),  # the 200th request: allowed, none left
        ([0] * 200, 10, ThrottleDecision(False, 0, 59_990)),  # the 201st: refused
        ([0] * 100 + [20_000] * 100, 40_000, ThrottleDecision(False, 0, 20_000)),
        ([0] * 100 + [20_000] * 100, 60_000, ThrottleDecision(True, 99, 20_000)),  # the first 100 left
    ],
)
def test_record(earlier_ms: list[int], now_ms: int, expected: ThrottleDecision) -> None:
    throttle = RollingWindowThrottle()
    for at in earlier_ms:
        assert throttle.record(at).allowed
    assert throttle.record(now_ms) == expected


def test_refused_requests_do_not_count() -> None:
    throttle = RollingWindowThrottle(limit=2, window_ms=1_000)
    assert throttle.record(0).allowed
    assert throttle.record(0).allowed
    for at in range(100, 1_000, 100):  # a client hammering while throttled
        assert not throttle.record(at).allowed
    assert throttle.record(1_000) == ThrottleDecision(True, 1, 999)


@pytest.mark.parametrize(
    ("spent", "expected_remaining", "then_allowed"),
    [(0, 199, True), (150, 50, True), (199, 1, True), (200, 0, False), (5_000, 0, False)],
)
def test_spend(spent: int, expected_remaining: int, then_allowed: bool) -> None:
    throttle = RollingWindowThrottle()
    decision = throttle.spend(0, spent)
    assert decision.requests_remaining == expected_remaining
    assert throttle.in_window(0) == min(spent, 200)
    assert throttle.record(1).allowed is then_allowed


def test_peek_counts_nothing() -> None:
    throttle = RollingWindowThrottle()
    assert throttle.peek(0) == ThrottleDecision(True, 199, 59_999)
    throttle.record(0)
    assert throttle.peek(10_000) == ThrottleDecision(True, 199, 50_000)
    assert throttle.in_window(10_000) == 1


def test_the_period_is_always_under_a_minute_and_positive() -> None:
    throttle = RollingWindowThrottle()
    for at in range(0, 300_000, 997):
        decision = throttle.record(at)
        assert 0 < decision.next_throttle_period_ms < 60_000
        assert 0 <= decision.requests_remaining <= 199


def test_reset() -> None:
    throttle = RollingWindowThrottle()
    throttle.spend(0, 200)
    throttle.reset()
    assert throttle.record(1).allowed


@pytest.mark.parametrize(("limit", "window_ms"), [(0, 60_000), (200, 1)])
def test_nonsense_limits_are_refused(limit: int, window_ms: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        RollingWindowThrottle(limit, window_ms)


def test_negative_spend_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RollingWindowThrottle().spend(0, -1)
