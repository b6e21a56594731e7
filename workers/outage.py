"""Telling people that Redis went away, without burying them: one line when it goes, a reminder now and then
while it stays away, one line when it is back.

Every loop of a worker (claiming deliveries, recording them, scheduling polls, the retention sweep, arq's job
loop) retries by itself while Redis is down, a few times a second. Logging a traceback at each try wrote
thousands of lines in a few seconds and hid everything else; a process shares one :class:`RedisOutage`, so
however many loops notice, the operator reads one line. Errors that are not about reaching Redis are not
swallowed here: they are logged in full, every time, by whoever called.
"""

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("relay.redis")

REMIND_EVERY_S = 60.0


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says Redis cannot be reached (refused, reset, timed out, loading, or a replica that
    cannot take writes during a failover), rather than that a command was wrong."""
    return isinstance(error, RedisConnectionError | RedisTimeoutError | ReadOnlyError | OSError)


class RedisOutage:
    """One process's account of Redis being away: :meth:`failed` on every failure, :meth:`ok` on success."""

    def __init__(self, *, remind_every_s: float = REMIND_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.remind_every_s = remind_every_s
        self.clock = clock
        self._since: float | None = None
        self._reminded = 0.0
        self.failures = 0  # failures noticed during the current outage

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException, doing: str) -> bool:
        """Note that ``doing`` failed with ``error``; True if it was Redis being away (said once, then reminded
        every ``remind_every_s``), False if it was something else, which the caller must report itself."""
        if not is_unreachable(error):
            return False
        now = self.clock()
        self.failures += 1
        if self._since is None:
            self._since = self._reminded = now
            log.error(
                "Redis is unreachable (%s) while %s; the worker keeps trying and carries on when it is back",
                describe(error),
                doing,
            )
        elif now - self._reminded >= self.remind_every_s:
            self._reminded = now
            log.error("Redis is still unreachable after %.0f s (%s)", now - self._since, describe(error))
        return True

    def ok(self) -> None:
        """Note that Redis answered; if it had been away, say that it is back."""
        if self._since is not None:
            log.warning("Redis is reachable again after %.0f s", self.clock() - self._since)
            self._since = None
            self.failures = 0


def describe(error: BaseException) -> str:
    """The error in one short line, whatever its type put in its message."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
