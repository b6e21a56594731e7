"""Goods-out notes: ``created``, then ``printed``, ``picked``, ``packed`` and ``shipped`` as each note gets there.

Notes have no ``updatedOn``. New ones come from a ``createdOn`` stream on ``goods-out-search``; the notes not
shipped yet are followed by id, read 500 a request (their stages come from ``status``, so the search's columns,
which Brightpearl does not document in full, are not relied on). Each stage is reported once, even when
Brightpearl jumps straight to shipped; a shipped note is followed no further.
"""

import json
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio.client import Pipeline

from subscriptions.core.envelope import NewEvent, resource_event
from subscriptions.store import keyspace
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.idset import chunk_id_sets
from workers.changes import happened_at
from workers.context import PollContext
from workers.cursor import Row
from workers.stream import Derived, Stream, Write, follow

SEARCH = "warehouse-service/goods-note/goods-out-search"
GET = "warehouse-service/order/*/goods-note/goods-out/"
STAGES = ("printed", "picked", "packed", "shipped")
NOTE = "goods-out-note"  # the resource in its events' names: goods-out-note.created, goods-out-note.modified.printed
MAX_IDS = 500  # goods-out notes allow 500 ids a request
OPEN_KEY = "goods-out-notes.open"
CREATED = Stream("goods-out-notes.created", SEARCH, "goodsOutNoteId", "createdOn")
MAX_BASELINE_PAGES = 20

Open = dict[int, int]  # note id -> how many stages it has reached (0 printed none, 4 shipped)


def reached(flags: Mapping[str, Any]) -> int:
    """How far along a note is: the last stage whose flag is set (a later stage implies the earlier ones)."""
    level = 0
    for index, stage in enumerate(STAGES, start=1):
        if flags.get(stage) in (True, "true"):
            level = index
    return level


def stage_events(account: str, note_id: int, note: dict[str, Any], before: int, after: int) -> list[NewEvent]:
    """One event per stage from ``before`` to ``after``, in order; each stage's id depends only on the note."""
    status = note.get("status")
    return [
        resource_event(
            account,
            f"{NOTE}.modified.{stage}",
            note_id,
            note,
            happened_at(status.get(f"{stage}On")) if isinstance(status, dict) else None,
        )
        for stage in STAGES[before:after]
    ]


def created_event(account: str, note_id: int, note: dict[str, Any]) -> NewEvent:
    """A note's ``created`` event; its id depends only on the note."""
    return resource_event(account, f"{NOTE}.created", note_id, note, happened_at(note.get("createdOn")))


def open_json(notes: Open) -> str:
    return json.dumps({str(note_id): level for note_id, level in sorted(notes.items())})


def save_open(code: str, notes: Open) -> Write:
    """A write keeping the open notes as they stand now (committed with the events derived from them)."""
    text, key = open_json(notes), keyspace.position(code, OPEN_KEY)

    def apply(pipe: Pipeline) -> None:
        pipe.set(key, text)

    return apply


async def open_notes_now(client: BrightpearlClient) -> Open:
    """The notes not shipped yet and how far each has got: the baseline of an account being registered. The
    stages are read from the notes themselves, not from search columns Brightpearl may not offer."""
    ids: list[int] = []
    first = 1
    for _ in range(MAX_BASELINE_PAGES):
        params = {"shipped": "false", "columns": "goodsOutNoteId", "pageSize": str(client.page_size)}
        page = await client.search(SEARCH, {**params, "firstResult": str(first)})
        ids += [int(row["goodsOutNoteId"]) for row in page.rows if row.get("goodsOutNoteId") is not None]
        if not page.more_pages or not page.rows:
            break
        first = page.last_result + 1
    found = await client.get_keyed(GET, ids, max_per_request=MAX_IDS) if ids else {}
    levels = {note_id: reached(note.get("status") or {}) for note_id, note in found.items()}
    return {note_id: level for note_id, level in levels.items() if level < len(STAGES)}


async def poll_notes(ctx: PollContext) -> None:
    """One poll: new notes, then the stages of the notes still open."""
    code = ctx.account.code
    stored = await ctx.store.get_position(code, OPEN_KEY)
    notes: Open = {int(k): v for k, v in json.loads(stored).items()} if stored else await open_notes_now(ctx.client)

    def keep_open() -> Write:
        return save_open(code, notes)

    async def derive_created(rows: list[Row], _: Mapping[int, dict[str, Any]]) -> Derived:
        found = await ctx.client.get_keyed(GET, [row.id for row in rows], max_per_request=MAX_IDS)
        events = []
        for note_id, note in found.items():
            if note_id in notes:
                continue  # already followed (seen open at registration)
            events.append(created_event(code, note_id, note))
            level = reached(note.get("status") or {})
            events += stage_events(code, note_id, note, 0, level)
            if level < len(STAGES):
                notes[note_id] = level
        return Derived(events, [keep_open()], set(found))

    await follow(
        ctx.client,
        CREATED,
        await ctx.cursor(CREATED),
        overlap_ms=ctx.overlap_ms,
        derive=derive_created,
        commit=ctx.commit_for(CREATED),
    )
    await _follow_open(ctx, notes, keep_open)


async def _follow_open(ctx: PollContext, notes: Open, keep_open: Callable[[], Write]) -> None:
    """Read the open notes, 500 a request, and report the stages each has reached since."""
    code = ctx.account.code
    for id_set in chunk_id_sets(list(notes), MAX_IDS):
        found = await ctx.client.get(GET + id_set)
        events = []
        for key, note in found.items() if isinstance(found, dict) else []:
            note_id = int(key)
            level = reached(note.get("status") or {}) if isinstance(note, dict) else 0
            if note_id not in notes or level <= notes[note_id]:
                continue
            events += stage_events(code, note_id, note, notes[note_id], level)
            if level >= len(STAGES):
                del notes[note_id]
            else:
                notes[note_id] = level
        if events:
            await ctx.commit(events, [keep_open()])
