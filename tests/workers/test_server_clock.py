"""Brightpearl's clock as its answers show it (the ``Date`` header), and when it has passed a stamp's second."""

from datetime import UTC, datetime

import pytest

from workers.brightpearl.client import parse_date_header
from workers.cursor import second_over

T = int(datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC).timestamp() * 1000)  # a stamp at 10:00:05.000


@pytest.mark.parametrize(
    ("headers", "parsed"),
    [
        ({"date": "Mon, 26 Sep 2022 14:51:37 GMT"}, datetime(2022, 9, 26, 14, 51, 37, tzinfo=UTC)),  # as recorded
        ({"date": "Thu, 26 Nov 2026 04:00:05 -0600"}, datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)),  # an offset
        ({"date": "Thu, 26 Nov 2026 10:00:05"}, datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)),  # no zone: UTC
        ({}, None),
        ({"date": ""}, None),
        ({"date": "yesterday"}, None),
    ],
)
def test_parse_date_header(headers: dict[str, str], parsed: datetime | None) -> None:
    assert parse_date_header(headers) == parsed


@pytest.mark.parametrize(
    ("stamp_ms", "clock_ms", "over"),
    [
        (T, T, False),  # the second is running
        (T, T + 1_000, False),  # just over, but within the margin
        (T, T + 2_000, True),  # over by the margin: no later change can carry 10:00:05
        (T + 999, T + 2_000, True),  # a millisecond stamp: its whole second counts
        (T + 999, T + 1_999, False),
        (T, T - 20_000, False),  # a clock stepped back: the second is in its future again
    ],
)
def test_second_over(stamp_ms: int, clock_ms: int, over: bool) -> None:
    assert second_over(stamp_ms, clock_ms) is over
