"""What changed in a record: old snapshot + new snapshot -> changed fields, and when. Pure, no I/O."""

from datetime import datetime
from typing import Any

from workers.brightpearl.timestamps import TimestampError, parse_timestamp

IGNORED_FIELDS = frozenset({"updatedOn", "version"})  # they change with every change: not changes themselves


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": ..., "after": ...}}`` for every top-level field whose value differs, a field
    absent on one side counting as ``None``; ``updatedOn`` and ``version`` are left out."""
    changes = {}
    for name in sorted((before.keys() | after.keys()) - IGNORED_FIELDS):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"before": old, "after": new}
    return changes


def stamp_of(record: dict[str, Any]) -> object:
    """What identifies a record's state after a change: its ``version`` where it has one, else its
    ``updatedOn`` (two changes to one record never share both)."""
    return record.get("version", record.get("updatedOn"))


def happened_at(value: object) -> datetime | None:
    """When Brightpearl says a change happened (a record's ``createdOn`` or ``updatedOn``, a note's
    ``printedOn``…), or ``None`` when the field is missing or holds no date-time: the event's timestamp is then
    empty rather than a guess."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(str(value))
    except TimestampError:
        return None
