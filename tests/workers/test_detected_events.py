"""What each detector makes of a change: the same ids, timestamps and bodies as before issue 13.

``tests/fixtures/events_before_issue_13.json`` holds, by case, ``[id, type, account, resource id, timestamp,
body]`` as the detectors built them by hand before :mod:`subscriptions.core.envelope` took the job over; the cases
below rebuild them from the same inputs. A change here would make receivers see old changes again as new ones.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from subscriptions.core.envelope import NewEvent, format_timestamp, ping_event
from subscriptions.core.events import EVENT_TYPES
from workers import note_changes, records, stock
from workers.note_changes import Followed, Occurrence

BEFORE = json.loads((Path(__file__).parents[1] / "fixtures" / "events_before_issue_13.json").read_text())
ORDER = {
    "id": 7,
    "orderStatus": {"orderStatusId": 4},
    "createdOn": "2026-11-26T04:15:02.000-06:00",
    "updatedOn": "2026-11-26T10:20:00.250Z",
    "version": 3,
    "reference": "caf\u00e9",
}
OLD_ORDER = ORDER | {"orderStatus": {"orderStatusId": 2}, "reference": "old", "version": 2}
PRODUCT = {"id": 12, "createdOn": "2026-11-26T10:15:02Z", "updatedOn": "2026-11-26T11:00:00Z", "name": "Mug"}
CONTACT = {"contactId": 205, "createdOn": "2026-11-26T10:15:02+01:00", "updatedOn": None, "firstName": "Ann"}
NOTE: dict[str, Any] = {
    "createdOn": "2026-11-26T09:00:00.000+00:00",
    "status": {"printed": True, "printedOn": "2026-11-26T09:30:00.500+00:00", "picked": "true", "pickedOn": None},
}
LOG = [{"eventCode": code} for code in ("PLA", "PRI", "UPR", "SHW", "PRI", "PIC", "PAC")]
STAGES = ("printed", "picked", "packed", "shipped")
FIGURES = {"total": {"onHand": 5}, "warehouses": {"2": {"onHand": 5}}}
SEEN = datetime(2026, 11, 26, 10, 15, 2, 970_000, tzinfo=UTC)


def detected() -> dict[str, NewEvent]:
    cases = {
        "order.created": records.record_event("acme", records.ORDERS, "created", ORDER, seen_at=SEEN),
        "order.created.no-createdOn": records.record_event("acme", records.ORDERS, "created", {"id": 8}, seen_at=SEEN),
        "order.created.bad-createdOn": records.record_event(
            "acme", records.ORDERS, "created", {"id": 9, "createdOn": "yesterday"}, seen_at=SEEN
        ),
        "order.modified.no-old": records.modified_events("acme", records.ORDERS, None, ORDER, seen_at=SEEN)[0],
        "product.created": records.record_event("acme", records.PRODUCTS, "created", PRODUCT, seen_at=SEEN),
        "product.modified": records.modified_events(
            "acme", records.PRODUCTS, PRODUCT | {"name": "Cup"}, PRODUCT, seen_at=SEEN
        )[0],
        "contact.created": records.record_event("beta", records.CONTACTS, "created", CONTACT, seen_at=SEEN),
        "contact.modified.null-updatedOn": records.modified_events(
            "beta", records.CONTACTS, CONTACT | {"firstName": "Anne"}, CONTACT, seen_at=SEEN
        )[0],
        "goods-out-note.created": note_changes.created_event("acme", 31, NOTE, SEEN),
        "goods-out-note.created.no-createdOn": note_changes.created_event("acme", 32, {"status": {}}, SEEN),
        "goods-out-note.modified.packed.status-not-dict": note_changes.stage_events(
            "acme", 33, {"status": "odd"}, Followed({"PAC": 1}), [Occurrence("PAC", 1)], SEEN
        )[0],
        "stock.first": stock.stock_event("acme", 44, None, FIGURES, 1, SEEN),
        "stock.second": stock.stock_event(
            "acme", 44, {"total": {"onHand": 4}}, FIGURES, 2, datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)
        ),
    }
    split = records.modified_events("acme", records.ORDERS, OLD_ORDER, ORDER, seen_at=SEEN)
    cases |= {f"order.modified.split{n}": event for n, event in enumerate(split)}
    every_stage = Followed({"PRI": 1, "PIC": 1, "PAC": 1, "SHW": 1})
    firsts = [Occurrence(code, 1) for code in ("PRI", "PIC", "PAC", "SHW")]
    cases |= {event.type: event for event in note_changes.stage_events("acme", 31, NOTE, every_stage, firsts, SEEN)}
    known = {45: stock.Known({"total": 1, "warehouses": None}, 3)}
    moved, _ = stock.compare("acme", known, {45: {"total": 2, "warehouses": {}, "other": 1}, 46: {"total": 0}}, SEEN)
    cases |= {f"stock.compare.{event.resource_id}": event for event in moved}
    return cases


DETECTED = detected()


@pytest.mark.parametrize("case", sorted(name for name in BEFORE if name != "ping"))
def test_detectors_make_the_events_they_always_made(case: str) -> None:
    event_id, event_type, account, resource_id, timestamp, body = BEFORE[case]
    if timestamp == "":
        # Issue 14: no empty timestamp. Where Brightpearl gives no time, the time the relay read the record;
        # the id and everything else stay as they were.
        timestamp = format_timestamp(SEEN)
        body = body.replace('"timestamp":""', f'"timestamp":"{timestamp}"', 1)
    assert DETECTED[case] == NewEvent(event_id, event_type, account, resource_id, timestamp, body)


def test_every_case_is_checked() -> None:
    assert set(DETECTED) == set(BEFORE) - {"ping"}  # the ping is checked in tests/subscriptions/test_envelope.py


def test_the_events_detectors_make_are_the_events_the_relay_lists() -> None:
    """Every name a detector (or the ping) can make is in ``EVENT_TYPES``, which the API checks patterns
    against, and every name there is made by something."""
    made = {ping_event("acme", "sub_acme", SEEN, "evt_x").type, stock.stock_event("acme", 1, None, {}, 1, SEEN).type}
    for kind in records.KINDS.values():
        record = {kind.id_field: 1, "orderStatus": 2, "name": "new"}
        made.add(records.record_event("acme", kind, "created", record, seen_at=SEEN).type)
        before = record | {"orderStatus": 1, "name": "old"}
        made |= {event.type for event in records.modified_events("acme", kind, before, record, seen_at=SEEN)}
    made.add(note_changes.created_event("acme", 1, NOTE, SEEN).type)
    made.add(note_changes.destroyed_event("acme", 1, NOTE, SEEN).type)
    shipped = note_changes.progress_events("acme", 1, Followed(), NOTE | {"events": LOG}, SEEN)
    unset = {"status": dict.fromkeys(STAGES, False)}
    undone = note_changes.progress_events("acme", 1, Followed.from_json(3), unset, SEEN)
    edited = note_changes.note_change("acme", 1, Followed(), {"priority": False}, {"priority": True}, SEEN).events
    made |= {event.type for event in [*shipped, *undone, *edited]}
    assert sorted(made) == sorted(EVENT_TYPES)
