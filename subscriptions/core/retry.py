"""When a failed delivery is tried again: a schedule of delays, with jitter, and no clock or randomness inside."""

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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


RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
GONE = 410  # the receiver says the endpoint is gone for good: the subscription is disabled at once


def retry_after_s(status: int | None, header: str | None, now: datetime, max_s: float) -> float | None:
    """The wait a receiver asked for with ``Retry-After`` (seconds or an HTTP date), bounded to
    ``[0, max_s]``; ``None`` when the answer's status does not carry one we honour or the header is unusable.

    Only 429, 502, 503 and 504 are honoured: those are the statuses where a receiver asks for time.
    """
    if status not in RETRY_AFTER_STATUSES or not header:
        return None
    value = header.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, max_s))
