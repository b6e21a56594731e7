"""Brightpearl's request cap: 200 requests per rolling minute per account.

Pure arithmetic over request times in milliseconds; the caller passes ``now_ms`` (the sandbox uses a monotonic
clock, tests pass numbers). Every request the account answers counts, whatever its status, except those refused
for being over the cap: counting refusals would keep a client that retries promptly locked out for ever, and
Brightpearl's own advice ("wait the throttle period, then retry") would not work.
"""

from collections import deque
from dataclasses import dataclass

REQUESTS_PER_WINDOW = 200
WINDOW_MS = 60_000


@dataclass(frozen=True)
class ThrottleDecision:
    """What one request learns: whether it may proceed, and the two headers every answer carries."""

    allowed: bool
    requests_remaining: int  # 0..limit-1, what is left after this request
    next_throttle_period_ms: int  # until the oldest request in the window leaves it; always < window


class RollingWindowThrottle:
    """The times of the requests in the last ``window_ms``, oldest first.

    ``record`` answers one request; ``spend`` uses up budget as another integration on the same account would
    (Brightpearl shares the cap between all private apps of an account).
    """

    def __init__(self, limit: int = REQUESTS_PER_WINDOW, window_ms: int = WINDOW_MS) -> None:
        if limit < 1 or window_ms < 2:
            raise ValueError("a throttle needs a limit of at least 1 and a window of at least 2 ms")
        self.limit = limit
        self.window_ms = window_ms
        self._times: deque[int] = deque()

    def _expire(self, now_ms: int) -> None:
        while self._times and self._times[0] <= now_ms - self.window_ms:
            self._times.popleft()

    def _period_ms(self, now_ms: int) -> int:
        # Brightpearl's recorded periods are 2 381 .. 58 151 ms: never the whole minute, never zero.
        if not self._times:
            return self.window_ms - 1
        return max(1, min(self.window_ms - 1, self._times[0] + self.window_ms - now_ms))

    def in_window(self, now_ms: int) -> int:
        """How many requests the window holds at ``now_ms``."""
        self._expire(now_ms)
        return len(self._times)

    def peek(self, now_ms: int) -> ThrottleDecision:
        """The headers an answer would carry now, without counting a request."""
        self._expire(now_ms)
        remaining = self.limit - len(self._times)
        return ThrottleDecision(remaining > 0, max(0, min(self.limit - 1, remaining)), self._period_ms(now_ms))

    def record(self, now_ms: int) -> ThrottleDecision:
        """Count one request at ``now_ms``; ``allowed`` is false (and nothing counted) when the cap is reached."""
        self._expire(now_ms)
        if len(self._times) >= self.limit:
            return ThrottleDecision(False, 0, self._period_ms(now_ms))
        self._times.append(now_ms)
        return ThrottleDecision(True, self.limit - len(self._times), self._period_ms(now_ms))

    def spend(self, now_ms: int, requests: int) -> ThrottleDecision:
        """Use up ``requests`` of the budget at ``now_ms`` (never more than the cap); the headers after it."""
        if requests < 0:
            raise ValueError("cannot spend a negative number of requests")
        self._expire(now_ms)
        for _ in range(min(requests, self.limit - len(self._times))):
            self._times.append(now_ms)
        return self.peek(now_ms)

    def reset(self) -> None:
        """Forget every request, as a minute of silence would."""
        self._times.clear()
