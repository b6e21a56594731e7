"""What a goods-out note's old and new state give, pure: stages reached, undone and reached again (from the events
log or from the flags), back-filled by shipping, other edits; their ids and times; which notes a poll reads."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from subscriptions.core import ids
from subscriptions.core.envelope import format_timestamp
from workers.goods_out import open_json, read_open, to_read
from workers.note_changes import Followed, note_change, progress, progress_events

SEEN = datetime(2026, 12, 3, 18, 0, 5, tzinfo=UTC)
T1, T2, T3 = "2026-12-03T10:00:01.000-06:00", "2026-12-03T10:00:02.000-06:00", "2026-12-03T10:00:03.000-06:00"
ALL = ["PRI1", "PIC1", "PAC1", "SHW1"]
UNSET = {"printed": False, "picked": False, "packed": False, "shipped": False}


def status(*stages: str, **times: str) -> dict[str, Any]:
    return {**UNSET, **dict.fromkeys(stages, True), **times}


def logged(*codes: str, at: str = T1) -> list[dict[str, Any]]:
    return [{"occured": at, "eventOwnerId": 4, "eventCode": code} for code in ("PLA", *codes)]


@pytest.mark.parametrize(
    ("before", "note", "expected"),
    [
        ({}, {"status": status("printed")}, ["PRI1"]),
        ({"PRI": 1}, {"status": status()}, ["UPR1"]),
        ({"PRI": 1, "UPR": 1}, {"status": status("printed")}, ["PRI2"]),
        ({"PRI": 1}, {"status": status("printed")}, []),  # nothing new
        # undone and redone between two polls: the flags show nothing, the log shows both
        ({"PIC": 1}, {"status": status("picked"), "events": logged("PIC", "UPI", "PIC")}, ["UPI1", "PIC2"]),
        # shipped without the earlier stages: Brightpearl logs them after SHW; shipping is reported last
        ({}, {"status": status(*UNSET), "events": logged("SHW", "PRI", "PIC", "PAC")}, ALL),
        ({}, {"status": status(*UNSET)}, ["PRI1", "PIC1", "PAC1", "SHW1"]),  # no log: the flags in stage order
        ({"PRI": 1}, {"status": status(*UNSET), "events": logged("PRI", "SHW")}, ["PIC1", "PAC1", "SHW1"]),
        ({}, {"status": status(*UNSET), "events": logged("SHW")}, ["PRI1", "PIC1", "PAC1", "SHW1"]),  # log lacks them
        ({"PRI": 1, "PIC": 1, "PAC": 1}, {"status": status()}, ["UPA1", "UPI1", "UPR1"]),  # undone: last stage first
        ({"PRI": 2, "UPR": 1}, {"status": status("printed"), "events": logged("PRI")}, []),  # a log that is short
        ({"PRI": 1}, {"status": "odd"}, []),  # no evidence either way
        ({"PRI": 1}, {}, []),
    ],
)
def test_what_a_note_shows_since_last_time(before: dict[str, int], note: dict[str, Any], expected: list[str]) -> None:
    after, found = progress(Followed(before), note)
    assert [f"{o.code}{o.n}" for o in found] == expected
    again, nothing = progress(after, note)  # read again unchanged: nothing more
    assert (again, nothing) == (after, [])


def test_picked_unpicked_and_picked_again_are_three_events_with_three_ids() -> None:
    first = progress_events("acme", 9, Followed(), {"status": status("picked")}, SEEN)
    undone = progress_events("acme", 9, Followed({"PIC": 1}), {"status": status()}, SEEN)
    again = progress_events("acme", 9, Followed({"PIC": 1, "UPI": 1}), {"status": status("picked")}, SEEN)
    assert [e.type for e in first + undone + again] == [
        "goods-out-note.modified.picked",
        "goods-out-note.modified.un-picked",
        "goods-out-note.modified.picked",
    ]
    assert first[0].id == ids.event_id("acme", "goods-out-note.modified.picked", 9)  # the id it always had
    assert len({e.id for e in first + undone + again}) == 3
    # the same reading after a crash: the same ids
    assert again == progress_events("acme", 9, Followed({"PIC": 1, "UPI": 1}), {"status": status("picked")}, SEEN)


@pytest.mark.parametrize(
    ("note_status", "log_at", "expected"),
    [
        (status(*UNSET, pickedOn=T2, shippedOn=T3), T1, T2),  # its own time
        (status(*UNSET, shippedOn=T3), T1, T1),  # else the log's
        (status(*UNSET, shippedOn=T3), None, T3),  # else shipping's
        (status(*UNSET), None, None),  # else when the relay read the note
    ],
)
def test_a_back_filled_stage_has_a_real_time(
    note_status: dict[str, Any], log_at: str | None, expected: str | None
) -> None:
    events = [{"eventCode": code, **({"occured": log_at} if log_at else {})} for code in ("SHW", "PRI", "PIC", "PAC")]
    found = progress_events("acme", 9, Followed(), {"status": note_status, "events": events}, SEEN)
    picked = next(e for e in found if e.type == "goods-out-note.modified.picked")
    want = format_timestamp(datetime.fromisoformat(expected)) if expected else format_timestamp(SEEN)
    assert picked.timestamp == want
    assert all(e.timestamp for e in found)


def test_an_earlier_reaching_has_the_time_of_its_own_log_entry() -> None:
    events = [{"eventCode": code, "occured": at} for code, at in (("PIC", T1), ("UPI", T2), ("PIC", T3))]
    found = progress_events("acme", 9, Followed(), {"status": status("picked", pickedOn=T3), "events": events}, SEEN)
    assert [e.timestamp[11:19] for e in found] == ["16:00:01", "16:00:02", "16:00:03"]


NOTE = {"priority": False, "shipping": {"reference": "", "shippingMethodId": 49}, "status": status()}


@pytest.mark.parametrize(
    ("edit", "changes"),
    [
        ({"priority": True}, {"priority": {"before": False, "after": True}}),
        (
            {"shipping": {"reference": "BOX-1", "shippingMethodId": 49, "boxes": 2}},
            {
                "shipping": {
                    "before": {"reference": "", "shippingMethodId": 49},
                    "after": {"reference": "BOX-1", "shippingMethodId": 49, "boxes": 2},
                }
            },
        ),
        ({"status": status("printed")}, None),  # a stage is not an edit
        ({"orderRows": {}}, None),  # nor is a field Brightpearl's goods-out-note.modified does not name
    ],
)
def test_other_edits(edit: dict[str, Any], changes: dict[str, Any] | None) -> None:
    change = note_change("acme", 9, Followed(), NOTE, NOTE | edit, SEEN)
    modified = [e for e in change.events if e.type == "goods-out-note.modified"]
    if changes is None:
        assert modified == []
        return
    (event,) = modified
    body = json.loads(event.body)
    assert body["data"]["changes"] == changes
    assert body["timestamp"] == format_timestamp(SEEN)
    assert change.after.edits == 1


def test_an_edit_undone_and_redone_is_reported_under_new_ids() -> None:
    there = NOTE | {"priority": True}
    first = note_change("acme", 9, Followed(), NOTE, there, SEEN)
    back = note_change("acme", 9, first.after, there, NOTE, SEEN)
    again = note_change("acme", 9, back.after, NOTE, there, SEEN)
    assert len({e.id for e in first.events + back.events + again.events}) == 3
    assert note_change("acme", 9, Followed(), None, there, SEEN).events == []  # nothing to compare with


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        (0, Followed()),
        (2, Followed({"PRI": 1, "PIC": 1})),  # the format before stages could go back: stages reached
        ([2, 1, 0, 0, 1, 0, 0, 3, "ab"], Followed({"PRI": 2, "UPR": 1, "PAC": 1}, 3, "ab")),
    ],
)
def test_what_is_kept_of_a_note(kept: object, expected: Followed) -> None:
    assert Followed.from_json(kept) == expected
    assert Followed.from_json(expected.to_json()) == expected


def test_the_old_stored_format_is_read() -> None:
    notes = read_open('{"31": 0, "32": 3}')
    assert notes == {31: Followed(), 32: Followed({"PRI": 1, "PIC": 1, "PAC": 1})}
    assert read_open(open_json(notes)) == notes


@pytest.mark.parametrize(
    ("followed", "after", "expected"),
    [
        ([1, 2, 3], None, ([3, 2], [1], 1)),
        ([1, 2], None, ([2, 1], [], None)),  # all in one batch: no rotation
        (list(range(1, 8)), None, ([7, 6], [5, 4], 4)),
        (list(range(1, 8)), 4, ([7, 6], [3, 2], 2)),
        (list(range(1, 8)), 2, ([7, 6], [1], 1)),
        (list(range(1, 8)), 1, ([7, 6], [5, 4], 4)),  # round again
        ([1, 2, 6, 7, 9], 5, ([9, 7], [2, 1], 1)),  # notes gone meanwhile
    ],
)
def test_which_notes_a_poll_reads(
    followed: list[int], after: int | None, expected: tuple[list[int], list[int], int | None]
) -> None:
    assert to_read(followed, after, 2) == expected
