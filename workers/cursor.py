"""Where a poller stands in a stream of records found by a timestamp: pure arithmetic, no I/O.

The stamp is ``createdOn`` for finding new records and ``updatedOn`` for finding changed ones. A
:class:`StampCursor` says: every record stamped before ``since`` is done, and of those stamped at or after
it, exactly the ``(id, stamp)`` pairs in ``seen`` are done (a record changed again has a new stamp, so it is
new again). A poll searches ``stamp >= since - 1 s`` (Brightpearl does not say whether its bounds are
inclusive), drops what is older than ``since`` or already seen, and emits the rest. Then ``since`` moves up to
the newest stamp read minus an *overlap*, never past a record still waiting: a record that becomes visible
late (committed after a later one was already read, or stamped by a clock running behind) is still found if
it is no older than the overlap.

This holds whatever order the search answers in, however many records share one timestamp, wherever a page
boundary falls, and when records are created while the poll pages: ``since`` only moves after a complete
read, and ``seen`` makes re-reading the overlap free of duplicates.
"""

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.brightpearl.idset import compress_ids, parse_id_set

QUERY_SLACK_MS = 1_000
# how far Brightpearl's clock (an answer's Date, whole seconds) must be past a stamp's second before no change
# can carry that stamp any more: room for the host that dates answers and the one that stamps records to differ
CLOSE_MARGIN_MS = 1_000


@dataclass(frozen=True)
class Row:
    """A record as a search lists it: its id and its stamp (``createdOn`` or ``updatedOn``, Unix ms, UTC)."""

    id: int
    stamp_ms: int


@dataclass(frozen=True)
class StampCursor:
    since_ms: int | None  # None: nothing has been seen yet, so every record is new
    seen: dict[int, int] = field(default_factory=dict)  # id -> stamp ms done, for stamps at or after since
    # id -> stamp ms of records read while their stamp's second may still have been running: a second change
    # within that second keeps the stamp, so each is read once more after a later second has been seen
    open: dict[int, int] = field(default_factory=dict)
    # rows of the search from since to skip: a poll that read its limit without getting past one stamp carries
    # on from where it stopped (0 once a read completes or since moves)
    skip: int = 0

    def query_from_ms(self) -> int | None:
        """The lower bound to search from, a little below ``since`` in case Brightpearl's bound is exclusive."""
        return None if self.since_ms is None else self.since_ms - QUERY_SLACK_MS

    def is_new(self, row: Row) -> bool:
        return (self.since_ms is None or row.stamp_ms >= self.since_ms) and self.seen.get(row.id) != row.stamp_ms

    def unseen(self, rows: Iterable[Row]) -> list[Row]:
        """The rows not done yet, oldest first (ties by id), each once."""
        unique = {row.id: row for row in rows if self.is_new(row)}
        return sorted(unique.values(), key=lambda row: (row.stamp_ms, row.id))

    def with_done(self, done: Iterable[Row]) -> "StampCursor":
        """The cursor once ``done`` rows are emitted, ``since`` unchanged (a poll part-way through)."""
        seen = dict(self.seen)
        seen.update((row.id, row.stamp_ms) for row in done)
        return StampCursor(self.since_ms, seen, self.open, self.skip)

    def with_open(self, open_rows: Iterable[Row]) -> "StampCursor":
        """The cursor with ``open_rows`` as the records to read once more."""
        return StampCursor(self.since_ms, self.seen, {row.id: row.stamp_ms for row in open_rows}, self.skip)

    def open_rows(self) -> list[Row]:
        return [Row(row_id, stamp_ms) for row_id, stamp_ms in sorted(self.open.items())]

    def advanced(self, read: Iterable[Row], overlap_ms: int) -> "StampCursor":
        """The cursor after a *complete* read of everything from ``query_from_ms``: ``since`` moves to the newest
        row read minus ``overlap_ms``, but never past a row still waiting (read but not done) and never back."""
        rows = list(read)
        if not rows:
            return self
        candidate = max(row.stamp_ms for row in rows) - overlap_ms
        waiting = [row.stamp_ms for row in rows if self.is_new(row)]
        if waiting:
            candidate = min(candidate, *waiting)
        since = candidate if self.since_ms is None else max(self.since_ms, candidate)
        return StampCursor(since, {i: c for i, c in self.seen.items() if c >= since}, self.open)

    def advanced_partly(self, read: Sequence[Row]) -> "StampCursor":
        """The cursor after an *incomplete* read (the poll stopped at its page limit) whose rows came in stamp
        order: ``since`` moves to the last stamp read, never past a row still waiting and never back. Without
        this, more records inside the overlap than one poll reads would be read again and again, for ever.
        Rows out of stamp order (a server ignoring the sort) say nothing about what is unread: no move then."""
        if not read or any(a.stamp_ms > b.stamp_ms for a, b in itertools.pairwise(read)):
            return self
        candidate = read[-1].stamp_ms
        waiting = [row.stamp_ms for row in read if self.is_new(row)]
        if waiting:
            candidate = min(candidate, *waiting)
        since = candidate if self.since_ms is None else max(self.since_ms, candidate)
        return StampCursor(since, {i: c for i, c in self.seen.items() if c >= since}, self.open)

    def skipping(self, rows: int) -> "StampCursor":
        """The cursor with the next read starting ``rows`` rows into the search."""
        return StampCursor(self.since_ms, self.seen, self.open, rows)

    def to_json(self) -> str:
        """Compact JSON: seen ids grouped by stamp as compressed ID sets."""
        groups: defaultdict[int, list[int]] = defaultdict(list)
        for row_id, created in self.seen.items():
            groups[created].append(row_id)
        document: dict[str, Any] = {
            "since_ms": self.since_ms,
            "seen": {str(created): compress_ids(ids) for created, ids in sorted(groups.items())},
        }
        if self.open:
            document["open"] = {str(row_id): stamp for row_id, stamp in sorted(self.open.items())}
        if self.skip:
            document["skip"] = self.skip
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> "StampCursor":
        data: dict[str, Any] = json.loads(text)
        seen = {
            row_id: int(created) for created, id_set in data.get("seen", {}).items() for row_id in parse_id_set(id_set)
        }
        since = data.get("since_ms")
        open_rows = {int(row_id): int(stamp) for row_id, stamp in data.get("open", {}).items()}
        return cls(int(since) if since is not None else None, seen, open_rows, int(data.get("skip", 0)))


def second_over(stamp_ms: int, clock_ms: int, margin_ms: int = CLOSE_MARGIN_MS) -> bool:
    """Whether Brightpearl's clock at ``clock_ms`` is past the whole second of ``stamp_ms`` by ``margin_ms``: then
    a record read after it is final for that stamp (a later change gets a later stamp, unless the clock steps
    back, which a later ``Date`` shows)."""
    second_end_ms = (stamp_ms // 1000 + 1) * 1000
    return clock_ms >= second_end_ms + margin_ms


def baseline(newest: Iterable[Row]) -> StampCursor:
    """The cursor of an account being registered, from its newest records: nothing that exists now is new.

    ``newest`` must hold every record at the newest stamp (a search sorted newest first gives them). With no
    records at all, every record that appears later is new.
    """
    rows = list(newest)
    if not rows:
        return StampCursor(None)
    since = max(row.stamp_ms for row in rows)
    return StampCursor(since, {row.id: row.stamp_ms for row in rows if row.stamp_ms >= since})
