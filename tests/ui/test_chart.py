"""The chart's arithmetic: which hours, how high, what a pointer over a bar says."""

from datetime import UTC, datetime

import pytest

from relay.ui.chart import HEIGHT, hour_starts, layout, nice_ceiling, series_counts


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (5, 5), (6, 10), (11, 20), (21, 50), (51, 100), (999, 1000), (1001, 2000)],
)
def test_the_y_axis_tops_out_at_a_round_number(value: int, top: int) -> None:
    assert nice_ceiling(value) == top


def test_the_hours_are_the_last_24_ending_with_the_one_under_way() -> None:
    starts = hour_starts(datetime(2026, 11, 26, 10, 42, 7, tzinfo=UTC))
    assert len(starts) == 24
    assert starts[-1] == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert starts[0] == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)


def test_pending_and_retrying_are_one_series() -> None:
    assert series_counts({"pending": 2, "retrying": 3, "failed": 1}) == {
        "succeeded": 0,
        "in progress": 5,
        "failed": 1,
        "skipped": 0,
    }


def test_bars_stack_by_status_and_scale_to_the_tallest() -> None:
    starts = hour_starts(datetime(2026, 11, 26, 10, 42, tzinfo=UTC), hours=3)
    chart = layout(starts, [{}, {"succeeded": 6, "failed": 2}, {"succeeded": 10}])
    assert chart.total == 18
    assert dict(chart.series_totals) == {"succeeded": 16, "in progress": 0, "failed": 2, "skipped": 0}
    empty, mixed, full = chart.bars
    assert empty.segments == ()
    assert empty.title == "08:00–09:00 UTC: no deliveries"
    assert mixed.title == "09:00–10:00 UTC: 6 succeeded, 2 failed"
    assert [s.series for s in mixed.segments] == ["succeeded", "failed"]
    assert mixed.segments[0].y == mixed.segments[1].y + mixed.segments[1].height  # failed sits on succeeded
    [whole] = full.segments
    assert whole.y == pytest.approx(chart.gridlines[-1].y)  # the tallest bar reaches the top line, 10
    assert [g.label for g in chart.gridlines] == ["0", "5", "10"]
    assert all(0 <= s.y <= HEIGHT for bar in chart.bars for s in bar.segments)
    assert [bar.label for bar in chart.bars] == [None, None, "10:00"]  # every third hour, the latest labelled


def test_an_empty_day_still_draws_an_axis() -> None:
    chart = layout(hour_starts(datetime(2026, 11, 26, 10, 0, tzinfo=UTC)), [{}] * 24)
    assert chart.total == 0
    assert [g.label for g in chart.gridlines] == ["0", "1"]
