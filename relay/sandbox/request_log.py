"""The Brightpearl requests a sandbox account answered, counted for tests and benchmarks."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestLog:
    """The Brightpearl requests an account answered, for tests and benchmarks that count them."""

    total: int = 0
    throttled: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)

    def record(self, path: str, route: str | None) -> None:
        self.total += 1
        self.by_path[path] += 1
        self.by_route[route or "(no such resource)"] += 1

    def describe(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_route": dict(self.by_route),
            "throttled": self.throttled,
        }

    def reset(self) -> None:
        self.total = self.throttled = 0
        self.by_path.clear()
        self.by_route.clear()
