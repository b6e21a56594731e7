"""A sandbox account's clock running fast or slow: a Brightpearl whose time drifts away from the relay's.

A skew (``clock_skew_s``) is a constant difference; a drift is one that grows. :class:`DriftingClock` wraps the
account's underlying clock and gains ``drift_s_per_min`` seconds every minute of it (negative: loses them).
Changing the drift keeps the account's time continuous: the new clock starts where the old one stood, so what
has drifted so far stays drifted, as a real clock's would.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

MAX_DRIFT_S_PER_MIN = 30.0  # bounded well under 60 s a minute, so the account's time never runs backwards


@dataclass(frozen=True)
class DriftingClock:
    """``anchor_shown`` at ``anchor_base``, then running ``1 + drift_s_per_min / 60`` times as fast as ``base``."""

    base: Callable[[], datetime]
    anchor_base: datetime
    anchor_shown: datetime
    drift_s_per_min: float

    def __call__(self) -> datetime:
        elapsed = self.base() - self.anchor_base
        return self.anchor_shown + elapsed * (1 + self.drift_s_per_min / 60)


def base_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """The clock under any drift."""
    return clock.base if isinstance(clock, DriftingClock) else clock


def drift_of(clock: Callable[[], datetime]) -> float:
    """Seconds a minute ``clock`` gains (0 for a clock that does not drift)."""
    return clock.drift_s_per_min if isinstance(clock, DriftingClock) else 0.0


def drifting(clock: Callable[[], datetime], drift_s_per_min: float) -> DriftingClock:
    """``clock`` from now on gaining ``drift_s_per_min`` seconds a minute, starting from where it stands now."""
    if abs(drift_s_per_min) > MAX_DRIFT_S_PER_MIN:
        raise ValueError(f"a drift is at most {MAX_DRIFT_S_PER_MIN:g} s a minute either way")
    base = base_clock(clock)
    return DriftingClock(base, base(), clock(), drift_s_per_min)
