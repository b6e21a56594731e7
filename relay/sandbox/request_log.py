"""The Brightpearl requests a sandbox account answered, counted for tests and benchmarks, and the ones it refused,
each with the reason, so that a test can list what the relay sent that Brightpearl would not take."""

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

MAX_REFUSALS_KEPT = 1000  # the newest; ``refused`` counts them all


@dataclass(frozen=True)
class Refusal:
    """A request the account refused as Brightpearl would, and why."""

    method: str
    path: str  # relative to the account's base URL, ids as sent
    query: dict[str, str]
    status: int
    code: str
    reason: str

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.query.items())
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status} {self.code} {self.reason}"


@dataclass
class RequestLog:
    """The Brightpearl requests an account answered, for tests and benchmarks that count them, and its refusals."""

    total: int = 0
    throttled: int = 0
    refused: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    refusals: deque[Refusal] = field(default_factory=lambda: deque(maxlen=MAX_REFUSALS_KEPT))

    def record(self, path: str, route: str | None) -> None:
        self.total += 1
        self.by_path[path] += 1
        self.by_route[route or "(no such resource)"] += 1

    def refuse(self, refusal: Refusal) -> None:
        self.refused += 1
        self.refusals.append(refusal)

    def describe(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_route": dict(self.by_route),
            "throttled": self.throttled,
            "refused": self.refused,
            "refusals": [refusal.describe() for refusal in self.refusals],
        }

    def reset(self) -> None:
        self.total = self.throttled = self.refused = 0
        self.by_path.clear()
        self.by_route.clear()
        self.refusals.clear()
