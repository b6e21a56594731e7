"""Goods-out notes: ``created``; each stage reached, undone and reached again; other edits; ``destroyed``.

Notes have no ``updatedOn``. New ones come from a ``createdOn`` stream on ``goods-out-search``; the notes not
shipped yet are followed by id, read 500 a request (their stages come from the notes themselves, so the search's
columns, which Brightpearl does not document in full, are not relied on). What a note's old and new state give
is :mod:`workers.note_changes`; here is the reading. A shipped note, or one Brightpearl no longer returns
(deleted: the GET leaves unknown ids out, and answers 404 when it knows none), is followed no further.

Which notes a poll reads: the newest 500 followed every poll, and of the older ones (stale notes never shipped
pile up on real accounts) the next 500 in rotation, so each is read within a bounded number of polls and a
quiet account costs its search and one GET. What is kept: the followed notes' counts (position
``goods-out-notes.open``), where the rotation stands (``goods-out-notes.rotation``), and each followed note as
last seen (a snapshot, for the ``before`` of an edit and the data of ``destroyed``).
"""

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent
from subscriptions.store import keyspace
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.timestamps import to_ms
from workers.changes import happened_at
from workers.context import PollContext
from workers.cursor import Row, StampCursor
from workers.note_changes import (
    NOTE,
    STAGES,
    Followed,
    created_event,
    destroyed_event,
    digest,
    note_change,
)
from workers.snapshots import Snapshots
from workers.stream import Derived, Stream, Write, follow

__all__ = ["CREATED", "NOTE", "OPEN_KEY", "STAGES", "open_json", "open_notes_now", "poll_notes", "read_hinted_notes"]

log = logging.getLogger(__name__)

SEARCH = "warehouse-service/goods-note/goods-out-search"
GET = "warehouse-service/order/*/goods-note/goods-out/"
MAX_IDS = 500  # goods-out notes allow 500 ids a request
FOLLOW_BATCH = MAX_IDS  # followed notes read a poll: the newest this many, and this many older ones in rotation
OPEN_KEY = "goods-out-notes.open"
ROTATION_KEY = "goods-out-notes.rotation"
SNAPSHOTS = "goods-out-notes"
CREATED = Stream("goods-out-notes.created", SEARCH, "goodsOutNoteId", "createdOn")
MAX_BASELINE_PAGES = 20  # the newest 10,000 notes at 500 a page; older ones not shipped are not followed

Open = dict[int, Followed]  # note id -> what is kept of it


def open_json(notes: Open) -> str:
    """The followed notes as kept: ``{"v": 2, "notes": {id: Followed.to_json()}}``."""
    return json.dumps(
        {"v": 2, "notes": {str(note_id): notes[note_id].to_json() for note_id in sorted(notes)}},
        separators=(",", ":"),
    )


def read_open(text: str) -> Open:
    """The followed notes from :func:`open_json`, or from the format before stages could go back,
    ``{"id": stages reached}``: an upgrade loses no note and reports no stage twice."""
    value = json.loads(text)
    notes = value["notes"] if isinstance(value, dict) and "v" in value else value
    return {int(note_id): Followed.from_json(kept) for note_id, kept in notes.items()}


def save_open(code: str, notes: Open) -> Write:
    """A write keeping the followed notes as they stand now (committed with the events derived from them)."""
    text, key = open_json(notes), keyspace.position(code, OPEN_KEY)

    def apply(pipe: Pipeline) -> None:
        pipe.set(key, text)

    return apply


def to_read(followed: Sequence[int], after: int | None, batch: int) -> tuple[list[int], list[int], int | None]:
    """Which followed notes a poll reads: the newest ``batch`` (ids grow with time), and the next ``batch`` of
    the older ones, newest first, from below ``after`` (the lowest read by the poll before; from the top again
    when none is below). Also the new ``after``. Pure."""
    newest_first = sorted(followed, reverse=True)
    newest, older = newest_first[:batch], newest_first[batch:]
    if not older:
        return newest, [], None
    start = 0 if after is None else next((i for i, note_id in enumerate(older) if note_id < after), 0)
    chunk = older[start : start + batch]
    return newest, chunk, chunk[-1]


async def open_notes_now(client: BrightpearlClient) -> Open:
    """The notes not shipped yet and where each stands: the baseline of an account being registered.

    Read newest first, the ``shipped`` column filtered here rather than in the search (whether Brightpearl
    filters on it is not known; only what its columns accept is sent), so a cap leaves out only the oldest; the
    stages come from the notes themselves."""
    params = {"columns": "goodsOutNoteId,shipped", "sort": "createdOn.DESC", "pageSize": str(client.page_size)}
    ids: dict[int, None] = {}  # in order, without the repeats a note made while paging causes
    first = 1
    for page_number in range(MAX_BASELINE_PAGES):
        page = await client.search(SEARCH, {**params, "firstResult": str(first)})
        for row in page.rows:
            if row.get("goodsOutNoteId") is not None and row.get("shipped") not in (True, "true"):
                ids[int(row["goodsOutNoteId"])] = None
        if not page.more_pages or not page.rows:
            break
        first = page.last_result + 1
        if page_number == MAX_BASELINE_PAGES - 1:
            log.warning("goods-out notes: more than %d pages; older ones not shipped are not followed", page_number + 1)
    found = await client.get_keyed(GET, list(ids), max_per_request=MAX_IDS) if ids else {}
    kept = {note_id: Followed.first_seen(note) for note_id, note in found.items()}
    return {note_id: followed for note_id, followed in kept.items() if not followed.shipped}


async def poll_notes(ctx: PollContext) -> None:
    """One poll: new notes, then the notes followed."""
    code = ctx.account.code
    stored = await ctx.position(OPEN_KEY)
    notes = read_open(stored) if stored else await open_notes_now(ctx.client)
    snapshots = Snapshots(ctx.redis, code, SNAPSHOTS)
    read_now: set[int] = set()

    def keep_open() -> Write:
        return save_open(code, notes)

    async def derive_created(rows: list[Row], _: Mapping[int, dict[str, Any]]) -> Derived:
        found = await ctx.client.get_keyed(GET, [row.id for row in rows], max_per_request=MAX_IDS)
        events, writes = _take_new(code, notes, snapshots, found, ctx.clock(), read_now)
        return Derived(events, [keep_open(), *writes], set(found))

    await follow(
        ctx.client,
        CREATED,
        await ctx.cursor(CREATED),
        overlap_ms=ctx.overlap_ms,
        derive=derive_created,
        commit=ctx.commit_for(CREATED),
    )
    await _follow_open(ctx, notes, snapshots, read_now, keep_open)


def _take_new(
    code: str,
    notes: Open,
    snapshots: Snapshots,
    found: Mapping[int, dict[str, Any]],
    seen: datetime,
    read_now: set[int],
) -> tuple[list[NewEvent], list[Write]]:
    """New notes read (by the ``createdOn`` stream, or by id for a hint): a ``created`` event each, the stages
    they reached already, and the notes not shipped followed from now on (``notes`` and ``read_now`` updated)."""
    events: list[NewEvent] = []
    writes: list[Write] = []
    for note_id in sorted(found):
        if note_id in notes:
            continue  # already followed (seen open at registration, or read through a hint)
        note = found[note_id]
        change = note_change(code, note_id, Followed(), None, note, seen)
        events += [created_event(code, note_id, note, seen), *change.events]
        if not change.after.shipped:
            notes[note_id] = change.after
            writes.append(snapshots.write(note_id, note, None))
            read_now.add(note_id)
    return events, writes


async def read_hinted_notes(ctx: PollContext, ids: Sequence[int]) -> None:
    """The notes a hint named, read as a poll reads them: those followed as :func:`_read_batch` reads them
    (stages, undoings, edits; destroyed when the GET no longer returns them), those not followed whose
    ``createdOn`` the ``createdOn`` stream's cursor has not passed as new ones (its cursor is not moved: the stream
    finds them followed already). Others the poll would ignore too. Nothing, before the first poll."""
    code = ctx.account.code
    stored = await ctx.position(OPEN_KEY)
    stored_cursor = await ctx.position(CREATED.key)
    if stored is None or stored_cursor is None:
        return
    notes = read_open(stored)
    snapshots = Snapshots(ctx.redis, code, SNAPSHOTS)

    def keep_open() -> Write:
        return save_open(code, notes)

    followed = sorted(i for i in set(ids) if i in notes)
    for start in range(0, len(followed), MAX_IDS):
        await _read_batch(ctx, notes, snapshots, followed[start : start + MAX_IDS], keep_open)
    others = sorted(i for i in set(ids) if i not in notes)
    if not others:
        return
    cursor = StampCursor.from_json(stored_cursor)
    found = await ctx.client.get_keyed(GET, others, max_per_request=MAX_IDS)  # a 404: none of them exists
    new = {i: note for i, note in found.items() if cursor.is_new(Row(i, _created_ms(note)))}
    events, writes = _take_new(code, notes, snapshots, new, ctx.clock(), set())
    if events or writes:
        await ctx.commit(events, [keep_open(), *writes])


def _created_ms(note: Mapping[str, Any]) -> int:
    at = happened_at(note.get("createdOn"))
    return to_ms(at) if at else 0


async def _follow_open(
    ctx: PollContext, notes: Open, snapshots: Snapshots, read_now: set[int], keep_open: Callable[[], Write]
) -> None:
    """Read the followed notes due this poll (not those just read as new) and report what changed."""
    code = ctx.account.code
    rotation_text = await ctx.position(ROTATION_KEY)
    after = json.loads(rotation_text).get("after") if rotation_text else None
    newest, older, new_after = to_read([i for i in notes if i not in read_now], after, FOLLOW_BATCH)
    for batch in (newest, older):
        if batch:
            await _read_batch(ctx, notes, snapshots, batch, keep_open)
    if new_after != after:
        await ctx.commit([], [_save_rotation(code, new_after)])


async def _read_batch(
    ctx: PollContext, notes: Open, snapshots: Snapshots, batch: list[int], keep_open: Callable[[], Write]
) -> None:
    code = ctx.account.code
    found = await ctx.client.get_keyed(GET, batch, max_per_request=MAX_IDS)  # 404: none of them exists any more
    seen = ctx.clock()
    looked_at = [i for i in batch if i not in found or digest(found[i]) != notes[i].digest]
    if not looked_at:
        return  # nothing changed: no Redis write either
    last_seen = await snapshots.load(looked_at)
    events, writes = [], []
    for note_id in looked_at:
        note = found.get(note_id)
        if note is None:
            events.append(destroyed_event(code, note_id, last_seen.get(note_id, {}), seen))
            del notes[note_id]
            writes.append(_forget(snapshots, note_id))
            continue
        change = note_change(code, note_id, notes[note_id], last_seen.get(note_id), note, seen)
        events += change.events
        if change.after.shipped:
            del notes[note_id]
            writes.append(_forget(snapshots, note_id))
        else:
            notes[note_id] = change.after
            writes.append(snapshots.write(note_id, note, None))
    await ctx.commit(events, [keep_open(), *writes])


def _forget(snapshots: Snapshots, note_id: int) -> Write:
    key = snapshots.key(note_id)

    def apply(pipe: Pipeline) -> None:
        pipe.delete(key)

    return apply


def _save_rotation(code: str, after: int | None) -> Write:
    key, text = keyspace.position(code, ROTATION_KEY), json.dumps({"after": after})

    def apply(pipe: Pipeline) -> None:
        pipe.set(key, text)

    return apply
