"""Faults a test or the demo injects into an account: throttling, outages, slowness, bad bodies, expired tokens.

A fault applies to requests whose path (relative to ``/public-api/{account}/``) contains ``path_contains``,
for ``count`` requests and/or ``for_ms`` milliseconds, or until cleared. Pure bookkeeping over ``now_ms`` from
a monotonic clock; what each kind answers is decided by the gateway.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

# malformed: JSON cut short (a 200); html: Cloudflare's HTML error page instead of JSON (API.md 4, 8.1); empty: a
# 200 with no body at all
FaultKind = Literal["throttle", "error_500", "unavailable", "slow", "malformed", "expire_token", "html", "empty"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
# The statuses Cloudflare answers with its own HTML page in front of Brightpearl (API.md 8.1)
HtmlStatus = Literal[403, 502, 520, 521, 522, 523, 524]
HTML_STATUSES: tuple[int, ...] = get_args(HtmlStatus)
DEFAULT_THROTTLE_PERIOD_MS = 1_000  # a throttle fault bounded by count alone says "wait a second"


@dataclass
class Fault:
    """One injected fault and what is left of it."""

    id: str
    kind: FaultKind
    path_contains: str = ""
    remaining_count: int | None = None  # None: any number of requests
    until_ms: int | None = None  # None: until cleared (or the count runs out)
    delay_ms: int = 0  # for "slow"
    throttle_period_ms: int | None = None  # for "throttle": the period to announce when not bounded in time
    status: int = 502  # for "html": the status of the page

    def active(self, now_ms: int) -> bool:
        """Whether the fault still applies at ``now_ms``."""
        if self.remaining_count is not None and self.remaining_count <= 0:
            return False
        return self.until_ms is None or now_ms < self.until_ms

    def matches(self, path: str) -> bool:
        return self.path_contains in path

    def period_ms(self, now_ms: int, window_ms: int = 60_000) -> int:
        """The ``Brightpearl-Next-Throttle-Period`` a throttle fault announces: the period it was given, else the
        fault's time left, else a second."""
        if self.throttle_period_ms is not None:
            left = self.throttle_period_ms
        elif self.until_ms is not None:
            left = self.until_ms - now_ms
        else:
            left = DEFAULT_THROTTLE_PERIOD_MS
        return max(1, min(window_ms - 1, left))

    def describe(self, now_ms: int) -> dict[str, object]:
        """The fault as the control API lists it."""
        described: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "path_contains": self.path_contains,
            "remaining_count": self.remaining_count,
            "remaining_ms": None if self.until_ms is None else max(0, self.until_ms - now_ms),
            "delay_ms": self.delay_ms,
        }
        if self.kind == "html":
            described["status"] = self.status
        return described


class FaultBook:
    """The faults of one account, in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        kind: FaultKind,
        *,
        now_ms: int,
        count: int | None = None,
        for_ms: int | None = None,
        delay_ms: int = 0,
        path_contains: str = "",
        throttle_period_ms: int | None = None,
        status: int = 502,
    ) -> Fault:
        """Add a fault starting at ``now_ms``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == "html" and status not in HTML_STATUSES:
            raise ValueError(f"an html fault answers one of {HTML_STATUSES}, not {status}")
        fault = Fault(
            id=f"fault_{self._next_id}",
            kind=kind,
            path_contains=path_contains,
            remaining_count=count,
            until_ms=None if for_ms is None else now_ms + for_ms,
            delay_ms=delay_ms,
            throttle_period_ms=throttle_period_ms,
            status=status,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, path: str, now_ms: int) -> list[Fault]:
        """The active faults matching ``path``, each charged one request; spent and expired ones are dropped."""
        self._faults = [fault for fault in self._faults if fault.active(now_ms)]
        taken = [fault for fault in self._faults if fault.matches(path)]
        for fault in taken:
            if fault.remaining_count is not None:
                fault.remaining_count -= 1
        return taken

    def active(self, now_ms: int) -> Sequence[Fault]:
        """The faults still in force."""
        self._faults = [fault for fault in self._faults if fault.active(now_ms)]
        return tuple(self._faults)

    def clear(self) -> int:
        """Remove every fault; how many there were."""
        cleared = len(self._faults)
        self._faults.clear()
        return cleared
