"""What a goods-out note's old and new state give: the stage events, the undoings, the other edits. Pure, no I/O.

Brightpearl's stages are independent flags that go back and forth: printed, picked and packed can be undone
(``UPR``, ``UPI``, ``UPA``) and reached again, until the note ships (``SHW``), which also sets the stages still
missing (API.md 6.6, 8.1). A flag read at two polls cannot show a stage undone and redone between them; the
note's ``events[]`` log can. So the relay keeps, per note, how many times each code has happened
(:class:`Followed`), counts the codes in the log when the note has one, makes the flags agree (a log may lack
what a flag shows: its shape is not recorded for every case), and reports each new occurrence:

- ``goods-out-note.modified.{printed,picked,packed,shipped}`` each time a stage is reached. The first time keeps
  the id it always had (from the note alone: receivers dedupe on it); the n-th time, n >= 2, gets an id from
  the note and n.
- ``goods-out-note.modified.un-{printed,picked,packed}`` each time one is undone, its id from the note and n.
- ``goods-out-note.modified`` when ``priority`` or ``shipping`` (method, reference, boxes, weight, label URI)
  changed, with ``changes`` as records have them, its id from the note, the edit's number and the values after.

Counts are committed with the events, so a poll repeated after a crash makes the same ids. Events come in the
log's order, except that shipping comes last: what the log shows after ``SHW`` is what shipping filled in.
Each has a real time: the stage's own ``*On``, else the log's ``occured``, else ``shippedOn``, else the time
the relay read the note; never an empty one.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from subscriptions.core.envelope import NewEvent, resource_event
from workers.changes import diff, happened_at

NOTE = "goods-out-note"  # the resource in its events' names: goods-out-note.created, goods-out-note.modified.printed
STAGES = ("printed", "picked", "packed", "shipped")
UNDOABLE = STAGES[:3]
REACHED = {"printed": "PRI", "picked": "PIC", "packed": "PAC", "shipped": "SHW"}
UNDONE = {"printed": "UPR", "picked": "UPI", "packed": "UPA"}
CODES = ("PRI", "UPR", "PIC", "UPI", "PAC", "UPA", "SHW")  # the order a followed note's counts are kept in
EDITED_FIELDS = ("priority", "shipping")  # what Brightpearl's goods-out-note.modified webhook names
_STAGE_OF = {code: stage for stage, code in REACHED.items()} | {code: stage for stage, code in UNDONE.items()}


@dataclass(frozen=True)
class Followed:
    """What the relay keeps of a note it follows: how many times each code has happened, how many other edits
    it has reported, and a digest of the note as last seen (``None``: not seen whole yet, as after a
    registration or an upgrade; its snapshot is then written at the next read)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    edits: int = 0
    digest: str | None = None

    def count(self, code: str) -> int:
        return self.counts.get(code, 0)

    def is_set(self, stage: str) -> bool:
        """Whether the stage stands now: reached more often than undone."""
        return self.count(REACHED[stage]) > (self.count(UNDONE[stage]) if stage in UNDONE else 0)

    @property
    def shipped(self) -> bool:
        return self.count("SHW") > 0

    def to_json(self) -> list[Any]:
        """``[PRI, UPR, PIC, UPI, PAC, UPA, SHW, edits, digest]``: compact, for thousands of open notes."""
        return [*(self.count(code) for code in CODES), self.edits, self.digest]

    @classmethod
    def from_json(cls, value: object) -> "Followed":
        """From :meth:`to_json`, or from the format kept before stages could go back: the number of stages
        reached (0 to 4), each reached once."""
        if isinstance(value, int):
            return cls({REACHED[stage]: 1 for stage in STAGES[:value]})
        if not isinstance(value, list) or len(value) != len(CODES) + 2:
            raise ValueError(f"not a followed goods-out note: {value!r}")
        *counts, edits, digest = value
        return cls({code: int(n) for code, n in zip(CODES, counts, strict=True) if n}, int(edits), digest)

    @classmethod
    def first_seen(cls, note: Mapping[str, Any]) -> "Followed":
        """A note as it stands when the relay starts following it without reporting its past (registration)."""
        return progress(cls(), note)[0]


@dataclass(frozen=True)
class Occurrence:
    """One new happening of a code on a note: the ``n``-th ``code``, when the log says (``None`` if it does
    not), and where it stands in the log (``None``: known from the flags alone)."""

    code: str
    n: int
    occurred: datetime | None = None
    position: int | None = None


def digest(note: Mapping[str, Any]) -> str:
    """A short fingerprint of the whole note: unchanged means nothing to look at."""
    text = json.dumps(note, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flag(status: Mapping[str, Any], stage: str) -> bool | None:
    value = status.get(stage)
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    return None  # absent or unreadable: no evidence either way


def _log(note: Mapping[str, Any]) -> list[tuple[str, datetime | None]]:
    """The stage codes of the note's ``events[]``, in order, with their times."""
    events = note.get("events")
    if not isinstance(events, list):
        return []
    return [
        (event["eventCode"], happened_at(event.get("occured")))
        for event in events
        if isinstance(event, dict) and event.get("eventCode") in CODES
    ]


def progress(before: Followed, note: Mapping[str, Any]) -> tuple[Followed, list[Occurrence]]:
    """The counts after reading ``note`` and what happened since ``before``, in the order to report it."""
    counts = Counter({code: before.count(code) for code in CODES})
    found: list[Occurrence] = []
    seen: Counter[str] = Counter()
    for position, (code, occurred) in enumerate(_log(note)):
        seen[code] += 1
        if seen[code] > counts[code]:
            counts[code] = seen[code]
            found.append(Occurrence(code, seen[code], occurred, position))
    # The flags have the last word on where each stage stands: a log may lack what they show.
    status = note.get("status")
    flags = status if isinstance(status, dict) else {}
    from_flags: list[Occurrence] = []
    for stage in reversed(UNDOABLE):  # undoings first, the last stage first
        reached, undone = REACHED[stage], UNDONE[stage]
        if _flag(flags, stage) is False and counts[reached] > counts[undone]:
            counts[undone] = counts[reached]
            from_flags.append(Occurrence(undone, counts[undone]))
    for stage in STAGES:
        reached = REACHED[stage]
        undone_count = counts[UNDONE[stage]] if stage in UNDONE else 0
        if _flag(flags, stage) is True and counts[reached] <= undone_count:
            counts[reached] = undone_count + 1
            from_flags.append(Occurrence(reached, counts[reached]))
    ordered = [o for o in found + from_flags if o.code != "SHW"] + [o for o in found + from_flags if o.code == "SHW"]
    after = Followed({code: n for code, n in counts.items() if n}, before.edits, before.digest)
    return after, ordered


def _event_type(code: str) -> str:
    stage = _STAGE_OF[code]
    return f"{NOTE}.modified.{stage}" if code in REACHED.values() else f"{NOTE}.modified.un-{stage}"


def _when(occurrence: Occurrence, after: Followed, status: Mapping[str, Any], seen: datetime) -> datetime:
    """A real time for an occurrence: the stage's ``*On`` (when this is the reaching that stands now), the
    log's ``occured``, ``shippedOn`` for a stage shipping filled in, else when the relay read the note."""
    stage = _STAGE_OF[occurrence.code]
    reaching = occurrence.code == REACHED[stage]
    candidates: list[object] = []
    if reaching and after.is_set(stage) and occurrence.n == after.count(occurrence.code):
        candidates.append(status.get(f"{stage}On"))
    candidates.append(occurrence.occurred)
    if reaching:
        candidates.append(status.get("shippedOn"))
    for candidate in candidates:
        at = candidate if isinstance(candidate, datetime) else happened_at(candidate)
        if at is not None:
            return at
    return seen


def stage_events(
    account: str, note_id: int, note: dict[str, Any], after: Followed, found: list[Occurrence], seen: datetime
) -> list[NewEvent]:
    """One event per occurrence, in order. A stage's first reaching keeps its id from the note alone; every
    later one and every undoing gets its id from the note and its number."""
    status = note.get("status")
    flags = status if isinstance(status, dict) else {}
    return [
        resource_event(
            account,
            _event_type(occurrence.code),
            note_id,
            note,
            _when(occurrence, after, flags, seen),
            state_after=None if occurrence.code in REACHED.values() and occurrence.n == 1 else occurrence.n,
        )
        for occurrence in found
    ]


def progress_events(
    account: str, note_id: int, before: Followed, note: dict[str, Any], seen: datetime
) -> list[NewEvent]:
    """The stage events between ``before`` and ``note`` (no edits: those need the note as last seen)."""
    after, found = progress(before, note)
    return stage_events(account, note_id, note, after, found, seen)


def edited_fields(note: Mapping[str, Any]) -> dict[str, Any]:
    return {name: note.get(name) for name in EDITED_FIELDS}


@dataclass(frozen=True)
class NoteChange:
    """What reading a followed note gave: its events and what to keep of it now."""

    events: list[NewEvent]
    after: Followed


def note_change(
    account: str,
    note_id: int,
    before: Followed,
    last_seen: Mapping[str, Any] | None,
    note: dict[str, Any],
    seen: datetime,
) -> NoteChange:
    """The events between the note as followed (``before``; ``last_seen``, the note as last read, if known) and
    the note read at ``seen``: the stages reached and undone, then another edit if there was one. Without
    ``last_seen`` no edit can be told, and none is reported."""
    after, found = progress(before, note)
    events = stage_events(account, note_id, note, after, found, seen)
    edits = after.edits
    changes = diff(edited_fields(last_seen), edited_fields(note)) if last_seen is not None else {}
    if changes:
        edits += 1
        events.append(
            resource_event(
                account,
                f"{NOTE}.modified",
                note_id,
                note,
                seen,  # Brightpearl says when a stage was reached, not when a note was edited
                state_after={"edit": edits, **edited_fields(note)},
                more={"changes": changes},
            )
        )
    return NoteChange(events, Followed(after.counts, edits, digest(note)))


def created_event(account: str, note_id: int, note: dict[str, Any], seen: datetime) -> NewEvent:
    """A note's ``created`` event, at its ``createdOn`` (else when the relay read it); its id depends only on the
    note."""
    return resource_event(account, f"{NOTE}.created", note_id, note, happened_at(note.get("createdOn")) or seen)


def destroyed_event(account: str, note_id: int, last_seen: dict[str, Any], seen: datetime) -> NewEvent:
    """A note gone from Brightpearl, with the note as last seen; a note is destroyed once, so its id depends only
    on the note. Brightpearl says nothing of when: the time the relay found it gone."""
    return resource_event(account, f"{NOTE}.destroyed", note_id, last_seen, seen)
