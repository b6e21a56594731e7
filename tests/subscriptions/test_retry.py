from datetime import UTC, datetime

import pytest

from subscriptions.core.retry import DEFAULT_RETRY_SCHEDULE_S, max_attempts, next_attempt_delay_s, retry_after_s

SCHEDULE = (5, 300, 1800)


@pytest.mark.parametrize(
    ("failed", "jitter", "delay"),
    [
        (1, 0.0, 5.0),
        (2, 0.0, 300.0),
        (3, 0.0, 1800.0),
        (4, 0.0, None),  # schedule exhausted: failed for good
        (1, 1.0, 6.0),  # +20 %
        (1, -1.0, 4.0),  # -20 %
        (2, 0.5, 330.0),
        (2, 7.0, 360.0),  # jitter is clamped to [-1, 1]
    ],
)
def test_next_attempt_delay(failed: int, jitter: float, delay: float | None) -> None:
    result = next_attempt_delay_s(failed, SCHEDULE, jitter)
    if delay is None:
        assert result is None
    else:
        assert result == pytest.approx(delay)


def test_no_retry_before_a_failure() -> None:
    with pytest.raises(ValueError, match="at least one failed attempt"):
        next_attempt_delay_s(0, SCHEDULE, 0.0)


def test_default_schedule_is_the_contract() -> None:
    assert DEFAULT_RETRY_SCHEDULE_S == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert max_attempts(DEFAULT_RETRY_SCHEDULE_S) == 10
    assert next_attempt_delay_s(10, DEFAULT_RETRY_SCHEDULE_S, 0.0) is None


def test_empty_schedule_means_one_attempt() -> None:
    assert max_attempts(()) == 1
    assert next_attempt_delay_s(1, (), 0.0) is None


NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "header", "wait_s"),
    [
        (429, "30", 30.0),
        (503, "0", 0.0),
        (502, "120", 120.0),
        (504, "99999", 3600.0),  # bounded
        (429, "Thu, 26 Nov 2026 10:01:00 GMT", 60.0),  # an HTTP date
        (429, "Thu, 26 Nov 2026 09:00:00 GMT", 0.0),  # in the past: at once
        (429, "soon", None),  # unusable: the schedule decides
        (429, None, None),
        (500, "30", None),  # only 429, 502, 503 and 504 ask for time
        (None, "30", None),  # no answer at all
    ],
)
def test_retry_after_is_honoured_within_bounds(status: int | None, header: str | None, wait_s: float | None) -> None:
    assert retry_after_s(status, header, NOW, max_s=3600) == wait_s
