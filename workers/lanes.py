"""Deliveries ready to start, queued by the receiver they go to, so that no receiver has more of them under way
than it has connections.

aiohttp keeps at most a set number of connections open to one receiver (host, port and scheme: its *origin*)
and makes every request beyond them wait for one, in a queue of its own. Waiting there costs the client far
more CPU a request than waiting here, and counts against the attempt's timeout and a worker's slots while the
receiver is busy with others. So attempts start only when their origin has a connection free; the rest wait
here, each origin's oldest first, the origins served in the order they began waiting.
"""

from collections import Counter, deque
from collections.abc import Iterator
from functools import lru_cache
from typing import Generic, TypeVar

from yarl import URL

T = TypeVar("T")


@lru_cache(maxsize=4096)
def origin(url: str) -> str:
    """The receiver a URL names: scheme, host and port (``http://hooks.example.com:8080``)."""
    try:
        return str(URL(url).origin())
    except ValueError:  # not an absolute URL: the attempt itself will say what is wrong with it
        return url


class Lanes(Generic[T]):
    """Items waiting to start, by origin, with each origin's items under way counted."""

    def __init__(self, per_origin: int) -> None:
        self.per_origin = per_origin
        self._waiting: dict[str, deque[T]] = {}  # by origin, in the order the origins began waiting
        self._busy: Counter[str] = Counter()  # under way, by origin
        self._count = 0

    def __len__(self) -> int:
        """Items waiting."""
        return self._count

    def __iter__(self) -> Iterator[T]:
        """The items waiting, origin by origin."""
        for queue in self._waiting.values():
            yield from queue

    def busy(self, origin_: str) -> int:
        """Items of ``origin_`` under way."""
        return self._busy[origin_]

    def add(self, origin_: str, item: T) -> None:
        self._waiting.setdefault(origin_, deque()).append(item)
        self._count += 1

    def take(self, room: int) -> list[tuple[str, T]]:
        """Up to ``room`` items that may start now, each counted under way until :meth:`done` is called for it."""
        started: list[tuple[str, T]] = []
        emptied = []
        for origin_, queue in self._waiting.items():
            free = min(self.per_origin - self._busy[origin_], room - len(started), len(queue))
            if free > 0:
                started += [(origin_, queue.popleft()) for _ in range(free)]
                self._busy[origin_] += free
                if not queue:
                    emptied.append(origin_)
            if len(started) >= room:
                break
        for origin_ in emptied:
            del self._waiting[origin_]
        self._count -= len(started)
        return started

    def done(self, origin_: str) -> None:
        """One item of ``origin_`` is no longer under way."""
        self._busy[origin_] -= 1
        if self._busy[origin_] <= 0:
            del self._busy[origin_]

    def clear(self) -> list[T]:
        """Take every waiting item out, returning them."""
        items = list(self)
        self._waiting.clear()
        self._count = 0
        return items
