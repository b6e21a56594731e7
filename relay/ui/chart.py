"""The overview's chart: deliveries per hour over the last 24 hours, by creation time, stacked by status.

Pure: hours and counts in, bar geometry out (the template draws it as SVG, so the page needs no script).
Counting them is ``relay.ui.queries``'s job.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HOURS = 24
HOUR = timedelta(hours=1)
# bottom to top; pending and retrying are drawn together as "in progress"
SERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("succeeded", ("succeeded",)),
    ("in progress", ("pending", "retrying")),
    ("failed", ("failed",)),
    ("skipped", ("skipped",)),
)
WIDTH, HEIGHT = 1000.0, 240.0  # about the size it is shown at, so its text is the page's size
LEFT, RIGHT, TOP, BOTTOM = 40.0, 8.0, 10.0, 24.0  # room for the axis labels
GAP = 0.2  # of each slot, between bars


def hour_starts(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The starts of the last ``hours`` whole hours, oldest first; the last one is the hour under way."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - HOUR * (hours - 1 - i) for i in range(hours)]


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 … that is at least ``value``: a round top for the y axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


@dataclass(frozen=True)
class Segment:
    series: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    segments: tuple[Segment, ...]
    title: str  # what a pointer over the bar shows: the hour and its counts
    label: str | None  # the hour under the bar, on every third bar


@dataclass(frozen=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    left: float
    right: float
    baseline: float
    bars: tuple[Bar, ...]
    gridlines: tuple[Gridline, ...]
    total: int
    series_totals: tuple[tuple[str, int], ...]


def series_counts(by_status: Mapping[str, int]) -> dict[str, int]:
    """Counts by delivery status folded into the chart's series."""
    return {name: sum(by_status.get(s, 0) for s in statuses) for name, statuses in SERIES}


def layout(starts: Sequence[datetime], counts: Sequence[Mapping[str, int]]) -> Chart:
    """Bars for ``counts`` (one mapping of status to count per hour in ``starts``), scaled to a round top."""
    folded = [series_counts(c) for c in counts]
    totals = [sum(f.values()) for f in folded]
    top = nice_ceiling(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    slot = (WIDTH - LEFT - RIGHT) / max(len(starts), 1)
    bars = []
    for i, (start, f) in enumerate(zip(starts, folded, strict=True)):
        y = baseline
        segments = []
        for name, _ in SERIES:
            if f[name]:
                height = f[name] / top * plot_h
                y -= height
                segments.append(Segment(name, f[name], round(y, 2), round(height, 2)))
        described = ", ".join(f"{f[name]} {name}" for name, _ in SERIES if f[name]) or "no deliveries"
        end = start + HOUR
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * GAP / 2, 2),
                width=round(slot * (1 - GAP), 2),
                segments=tuple(segments),
                title=f"{start:%H:%M}–{end:%H:%M} UTC: {described}",
                label=f"{start:%H:%M}" if (len(starts) - 1 - i) % 3 == 0 else None,
            )
        )
    values = sorted({0, top // 2, top} if top % 2 == 0 else {0, top})  # whole numbers only: 0, half, top
    gridlines = tuple(Gridline(round(baseline - plot_h * value / top, 2), str(value)) for value in values)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        baseline=baseline,
        bars=tuple(bars),
        gridlines=gridlines,
        total=sum(totals),
        series_totals=tuple((name, sum(f[name] for f in folded)) for name, _ in SERIES),
    )
