"""Following a Brightpearl search in the order of one timestamp: the loop every detector shares.

A :class:`Stream` names a search and the two columns that matter, the record's id and its stamp
(``createdOn`` for new records, ``updatedOn`` for changed ones). :func:`follow` reads everything from the
cursor's bound, hands the records not done yet to a detector's ``derive`` in batches of 200 (the size of one
multi-id GET), and commits each batch's events, side writes and the cursor that covers them in one transaction,
so a crash repeats at most one batch and the events of a batch are never half-written.
"""

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.search import SearchPage
from workers.brightpearl.timestamps import TimestampError, format_utc, from_ms, parse_timestamp, to_ms
from workers.cursor import Row, StampCursor, baseline, second_over

log = logging.getLogger(__name__)

BATCH = 200  # ids per multi-id GET
MAX_PAGES_PER_POLL = 20  # 10,000 records a poll; more waits for the next poll
MAX_BASELINE_PAGES = 10

Write = Callable[[Pipeline], None]


@dataclass(frozen=True)
class Derived:
    """What a detector made of a batch: events, writes to commit with them, and the ids now done."""

    events: list[NewEvent] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    done: set[int] = field(default_factory=set)


Derive = Callable[[list[Row], Mapping[int, dict[str, Any]]], Awaitable[Derived]]  # rows, their search rows
Commit = Callable[[list[NewEvent], StampCursor, list[Write]], Awaitable[None]]


@dataclass(frozen=True)
class Stream:
    """Records listed by a search in the order of a timestamp column."""

    key: str  # names the cursor: "orders.created", "products.updated", ...
    search_path: str
    id_column: str
    stamp_column: str
    filters: Mapping[str, str] = field(default_factory=dict)
    more_columns: tuple[str, ...] = ()  # read with id and stamp, handed to derive

    @property
    def columns(self) -> str:
        return ",".join((self.id_column, self.stamp_column, *self.more_columns))


def rows_of(page: SearchPage, stream: Stream) -> list[Row]:
    """The ``(id, stamp)`` of each row. A null stamp (``updatedOn`` of a record never changed) is no row;
    a stamp that cannot be read is skipped loudly."""
    rows = []
    for raw in page.rows:
        stamp = raw.get(stream.stamp_column)
        if stamp is None:
            continue
        try:
            rows.append(Row(int(raw[stream.id_column]), to_ms(parse_timestamp(str(stamp)))))
        except (KeyError, TypeError, ValueError, TimestampError) as error:
            log.warning("skipping %s row %r: %s", stream.search_path, raw, error)
    return rows


async def read(
    client: BrightpearlClient, stream: Stream, cursor: StampCursor, *, max_pages: int
) -> tuple[list[Row], dict[int, dict[str, Any]], int | None]:
    """Every record stamped from the cursor's query bound (from its ``skip``), its search row, and ``None`` if
    the read was complete, else the number of rows of the search read so far (where the next read may go on)."""
    params = {
        **stream.filters,
        "columns": stream.columns,
        "sort": f"{stream.stamp_column}.ASC",
        "pageSize": str(client.page_size),
    }
    start = cursor.query_from_ms()
    if start is not None:
        params[stream.stamp_column] = format_utc(from_ms(start)) + "/"
    rows: list[Row] = []
    raw: dict[int, dict[str, Any]] = {}
    first = 1 + cursor.skip
    for _ in range(max_pages):
        page = await client.search(stream.search_path, {**params, "firstResult": str(first)})
        rows += rows_of(page, stream)
        if stream.more_columns:
            raw.update((int(r[stream.id_column]), r) for r in page.rows if r.get(stream.id_column) is not None)
        if not page.more_pages or not page.rows:
            return rows, raw, None
        first = page.last_result + 1
    return rows, raw, first - 1


async def follow(
    client: BrightpearlClient,
    stream: Stream,
    cursor: StampCursor,
    *,
    overlap_ms: int,
    derive: Derive,
    commit: Commit,
    recheck_ms: int = 0,
    max_pages: int = MAX_PAGES_PER_POLL,
) -> StampCursor:
    """One poll of a stream.

    ``recheck_ms`` > 0 reads again the records stamped within that long of the newest stamp read: a record
    changed twice within one stamp's precision keeps its stamp, and only reading it again (and diffing) shows the
    second change. Such records stay *open* in the cursor: each record changed since the last poll is read once
    more, and then again at every poll until a record changed since the poll before shows a later stamp (or, on a
    poll that finds no change, until a later stamp is read at all). Stamps read before are no evidence that a
    second is over, nor is one read in the same poll: Brightpearl's clock may have stepped back between them.

    Brightpearl's own clock is better evidence, when the answers carry it (the ``Date`` header, see
    :func:`~workers.cursor.second_over`): a record read after a search whose ``Date`` is past its stamp's second
    (by :data:`~workers.cursor.CLOSE_MARGIN_MS`) was read in its final state for that stamp, and is closed. Then
    the records read again are those still open and those whose second the clock has not passed, and an idle
    account's poll makes only its searches. A clock stepped back shows in the ``Date`` too: the records it has
    not passed again are read again, until it has.
    """
    rows, raw, stopped_at = await read(client, stream, cursor, max_pages=max_pages)
    clock_ms = _clock_ms(client)  # Brightpearl's clock at the search (or later), before any GET below
    committed = cursor
    waiting = cursor.unseen(rows)
    fresh = {row.id for row in waiting}  # changed since the last poll
    newest = max((row.stamp_ms for row in waiting), default=None)  # a stamp Brightpearl's clock has passed
    if newest is None:  # no change: the newest stamp read is the best evidence there is
        newest = max((row.stamp_ms for row in rows), default=None)
    recheck: list[Row] = []
    if recheck_ms:
        pending = {row.id for row in waiting}
        again = {row.id: row for row in cursor.open_rows()}
        if clock_ms is not None:  # what Brightpearl's clock has not yet passed may still change within its stamp
            again.update((row.id, row) for row in _latest(rows) if not second_over(row.stamp_ms, clock_ms))
        elif newest is not None:
            again.update((row.id, row) for row in _latest(rows) if row.stamp_ms >= newest - recheck_ms)
        recheck = [row for row in again.values() if row.id not in pending]
        waiting += recheck
    done: set[int] = set()
    for start in range(0, len(waiting), BATCH):
        batch = waiting[start : start + BATCH]
        derived = await derive(batch, raw)
        done |= derived.done
        # a record listed but not derived (not returned by its GET yet) stays waiting for the next poll
        cursor = cursor.with_done([row for row in batch if row.id in derived.done])
        await commit(derived.events, cursor, derived.writes)
        committed = cursor
    if recheck_ms:
        still_open = [
            row
            for row in waiting
            if (row.id in done and _may_change_again(row, clock_ms, fresh, newest, recheck_ms))
            or (row.id not in done and row.id in cursor.open)
        ]
        cursor = cursor.with_open(still_open)
    if stopped_at is None:
        cursor = cursor.advanced(rows, overlap_ms).skipping(0)
    else:  # more than one poll reads: carry on from the last stamp read, or from where it stopped within one
        moved = cursor.advanced_partly(rows)
        stuck = moved.since_ms == cursor.since_ms and not cursor.unseen(rows)  # nothing read waits for a GET
        cursor = moved.skipping(stopped_at if stuck else 0)
        log.warning("%s: more records than one poll reads; the next poll carries on", stream.key)
    if cursor != committed:
        await commit([], cursor, [])
    return cursor


def _may_change_again(row: Row, clock_ms: int | None, fresh: set[int], newest: int | None, recheck_ms: int) -> bool:
    """Whether a record just read may yet change within its stamp: by Brightpearl's clock when known, else (no
    ``Date``) unless a record changed since the last poll shows a later stamp."""
    if clock_ms is not None:
        return not second_over(row.stamp_ms, clock_ms)
    return row.id in fresh or newest is None or row.stamp_ms >= newest - recheck_ms


def _clock_ms(client: BrightpearlClient) -> int | None:
    """Brightpearl's clock (Unix ms) as the last answer's ``Date`` showed it, ``None`` without one."""
    server_time = client.rate.server_time
    return None if server_time is None else to_ms(server_time)


def _latest(rows: Sequence[Row]) -> list[Row]:
    latest: dict[int, Row] = {}
    for row in rows:
        if row.id not in latest or row.stamp_ms > latest[row.id].stamp_ms:
            latest[row.id] = row
    return list(latest.values())


async def take_baseline(client: BrightpearlClient, stream: Stream) -> StampCursor:
    """Where a stream stands now: its newest records (all those sharing the newest stamp)."""
    # the period filter leaves out records whose stamp is null (never updated), wherever nulls sort
    params = {
        **stream.filters,
        "columns": f"{stream.id_column},{stream.stamp_column}",
        "sort": f"{stream.stamp_column}.DESC",
        "pageSize": str(client.page_size),
        stream.stamp_column: "2000-01-01T00:00:00Z/",
    }
    rows: list[Row] = []
    first = 1
    for _ in range(MAX_BASELINE_PAGES):
        page = await client.search(stream.search_path, {**params, "firstResult": str(first)})
        page_rows = rows_of(page, stream)
        rows += page_rows
        if not page.more_pages or not page.rows:
            return baseline(rows)
        if any(a.stamp_ms < b.stamp_ms for a, b in itertools.pairwise(page_rows)):
            # The server ignored the sort. Its default order is by id, so the newest are on the last page.
            last_first = max(first + len(page.rows), page.results_available - client.page_size + 1)
            last_page = await client.search(stream.search_path, {**params, "firstResult": str(last_first)})
            return baseline(rows + rows_of(last_page, stream))
        if page_rows and page_rows[-1].stamp_ms < max(row.stamp_ms for row in rows):
            return baseline(rows)  # the run of the newest stamp ended on this page
        first = page.last_result + 1
    log.warning(
        "%s baseline read %d pages without reaching the end; using the newest of those", stream.key, MAX_BASELINE_PAGES
    )
    return baseline(rows)
