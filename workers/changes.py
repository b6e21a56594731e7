"""What changed in a record: old snapshot + new snapshot -> changed fields, and when. Pure, no I/O."""

from datetime import datetime
from typing import Any

from workers.brightpearl.timestamps import TimestampError, parse_timestamp

IGNORED_FIELDS = frozenset({"updatedOn", "version"})  # they change with every change: not changes themselves
CUSTOM_FIELDS = "customFields"  # read with includeOptional: each field a change of its own, customFields.{CODE}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": ..., "after": ...}}`` for every top-level field whose value differs, a field
    absent on one side counting as ``None``; ``updatedOn`` and ``version`` are left out.

    ``customFields`` is one entry per custom field that differs, ``customFields.{CODE}`` (an unset field and a
    null one alike). A side without the key at all is not "no custom fields" but unknown (a snapshot taken
    before the relay read them, or a GET that did not ask): nothing is said about them then."""
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted((before.keys() | after.keys()) - IGNORED_FIELDS):
        if name == CUSTOM_FIELDS:
            changes |= _custom_field_changes(before, after)
            continue
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"before": old, "after": new}
    return changes


def _custom_field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if CUSTOM_FIELDS not in before or CUSTOM_FIELDS not in after:
        return {}
    old, new = before[CUSTOM_FIELDS], after[CUSTOM_FIELDS]
    if not isinstance(old, dict) or not isinstance(new, dict):
        return {CUSTOM_FIELDS: {"before": old, "after": new}} if old != new else {}
    return {
        f"{CUSTOM_FIELDS}.{code}": {"before": old.get(code), "after": new.get(code)}
        for code in sorted(old.keys() | new.keys())
        if old.get(code) != new.get(code)
    }


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
