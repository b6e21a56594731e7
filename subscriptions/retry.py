"""When a failed delivery is tried again: a schedule of delays, with jitter, and no clock or randomness inside."""

from collections.abc import Sequence

DEFAULT_RETRY_SCHEDULE_S: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER_RATIO = 0.2


def next_attempt_delay_s(failed_attempts: int, schedule_s: Sequence[float], jitter: float) -> float | None:
    """Seconds to wait before the next attempt after ``failed_attempts`` failures, or ``None`` when the schedule
    is exhausted and the delivery has failed for good.

    ``jitter`` is a number in [-1, 1] (the caller draws it, so tests can pass any); the delay moves by up to
    ``JITTER_RATIO`` of itself, so that deliveries that failed together do not all come back together.
    """
    if failed_attempts < 1:
        raise ValueError("a retry follows at least one failed attempt")
    if failed_attempts > len(schedule_s):
        return None
    base = float(schedule_s[failed_attempts - 1])
    return max(0.0, base * (1.0 + JITTER_RATIO * max(-1.0, min(1.0, jitter))))


def max_attempts(schedule_s: Sequence[float]) -> int:
    """Attempts a delivery gets in all: the first, then one per scheduled delay."""
    return 1 + len(schedule_s)
