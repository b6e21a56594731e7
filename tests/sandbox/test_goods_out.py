"""Goods-out note stages, pure: which stages a change sets, the events it logs, and the rendering of unset ones."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from relay.sandbox.goods_out import (
    GOODS_OUT_SEARCH_TABLE,
    GoodsOutNote,
    NoteLine,
    NoteShipped,
    NotUndoable,
    ShippingChange,
    Stage,
    StageAlreadySet,
    StageNotSet,
    render_note,
    search_row,
    stage_to_unset,
    stages_to_set,
)
from relay.sandbox.search import DataType

CREATED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PR, PI, PA, SH = Stage.PRINTED, Stage.PICKED, Stage.PACKED, Stage.SHIPPED


@pytest.mark.parametrize(
    ("done", "stage", "expected"),
    [
        (set(), PR, [PR]),
        (set(), PI, [PI]),  # stages other than shipped need not come in order
        ({PR}, PA, [PA]),
        (set(), SH, [SH, PR, PI, PA]),  # shipped first, then the missing ones, as recorded
        ({PI}, SH, [SH, PR, PA]),
        ({PR, PI, PA}, SH, [SH]),
    ],
)
def test_stages_to_set(done: set[Stage], stage: Stage, expected: list[Stage]) -> None:
    assert stages_to_set(done, stage) == expected


@pytest.mark.parametrize(
    ("done", "stage", "error"),
    [
        ({PR}, PR, StageAlreadySet),
        ({PR, PI, PA, SH}, SH, NoteShipped),
        ({PR, PI, PA, SH}, PR, NoteShipped),
        ({SH}, PA, NoteShipped),
    ],
)
def test_stages_that_cannot_be_set(done: set[Stage], stage: Stage, error: type[Exception]) -> None:
    with pytest.raises(error):
        stages_to_set(done, stage)


def new_note() -> tuple[GoodsOutNote, Callable[[], int]]:
    versions = count(11)
    lines = (NoteLine(5, 10001, 2, 2), NoteLine(6, 10002, 1, 2))
    note = GoodsOutNote(9, 1, 2, CREATED, lines, sequence=1, last_event_version=next(versions))
    return note, lambda: next(versions)


def test_a_new_note_has_one_placed_event_and_no_stage_times() -> None:
    note, _ = new_note()
    rendered = render_note(note, -360)
    assert rendered["status"] == {"shipped": False, "packed": False, "picked": False, "printed": False}
    assert rendered["events"] == [{"occured": "2026-11-26T04:00:00.000-06:00", "eventOwnerId": 4, "eventCode": "PLA"}]
    assert rendered["orderRows"] == {
        "5": [{"productId": 10001, "quantity": 2, "locationId": 2}],
        "6": [{"productId": 10002, "quantity": 1, "locationId": 2}],
    }
    assert "updatedOn" not in rendered
    assert rendered["lastEventVersion"] == 11


def test_shipping_fills_in_the_missing_stages_after_its_own_event() -> None:
    note, versions = new_note()
    assert note.set_stage(PR, CREATED + timedelta(minutes=1), versions) == [PR]
    shipped_at = CREATED + timedelta(minutes=5)
    assert note.set_stage(SH, shipped_at, versions) == [SH, PI, PA]
    rendered = render_note(note, 0)
    assert [event["eventCode"] for event in rendered["events"]] == ["PLA", "PRI", "SHW", "PIC", "PAC"]
    assert list(rendered["status"]) == [
        "shipped",
        "packed",
        "picked",
        "printed",
        "pickedOn",
        "packedOn",
        "shippedOn",
        "printedOn",
        "pickedById",
        "packedById",
        "shippedById",
        "printedById",
    ]
    assert rendered["status"]["printedOn"] == "2026-11-26T10:01:00.000+00:00"
    assert rendered["status"]["shippedOn"] == rendered["status"]["packedOn"] == "2026-11-26T10:05:00.000+00:00"
    assert rendered["lastEventVersion"] == 15
    assert search_row(note) | {"createdOn": None} == {
        "goodsOutNoteId": 9,
        "orderId": 1,
        "warehouseId": 2,
        "transfer": False,
        "printed": True,
        "picked": True,
        "packed": True,
        "shipped": True,
        "createdOn": None,
        "shippedOn": shipped_at,
    }
    with pytest.raises(NoteShipped):
        note.set_stage(PA, shipped_at, versions)
    assert len(note.events) == 5


def test_a_partly_done_note_shows_only_its_stage_times() -> None:
    note, versions = new_note()
    note.set_stage(PI, CREATED, versions)
    status = render_note(note, 0)["status"]
    assert status == {
        "shipped": False,
        "packed": False,
        "picked": True,
        "printed": False,
        "pickedOn": "2026-11-26T10:00:00.000+00:00",
        "pickedById": 4,
    }


@pytest.mark.parametrize(
    ("done", "stage", "expected"),
    [
        ({PR}, PR, PR),
        ({PR, PI, PA}, PI, PI),  # each stage on its own: packed stays
        ({PR}, PI, StageNotSet),
        ({PR}, SH, NotUndoable),
        ({PR, PI, PA, SH}, PR, NoteShipped),
    ],
)
def test_stage_to_unset(done: set[Stage], stage: Stage, expected: Stage | type[Exception]) -> None:
    if isinstance(expected, Stage):
        assert stage_to_unset(done, stage) is expected
    else:
        with pytest.raises(expected):
            stage_to_unset(done, stage)


def test_a_stage_undone_and_reached_again() -> None:
    note, versions = new_note()
    note.set_stage(PI, CREATED, versions)
    note.set_stage(PA, CREATED, versions)
    note.unset_stage(PI, CREATED + timedelta(minutes=1), versions)
    rendered = render_note(note, 0)
    assert rendered["status"] == {
        "shipped": False,
        "packed": True,
        "picked": False,
        "printed": False,
        "packedOn": "2026-11-26T10:00:00.000+00:00",
        "packedById": 4,
    }
    assert search_row(note)["picked"] is False
    note.set_stage(PI, CREATED + timedelta(minutes=2), versions)
    rendered = render_note(note, 0)
    assert [event["eventCode"] for event in rendered["events"]] == ["PLA", "PIC", "PAC", "UPI", "PIC"]
    assert rendered["status"]["pickedOn"] == "2026-11-26T10:02:00.000+00:00"
    assert rendered["lastEventVersion"] == 15
    note.set_stage(SH, CREATED + timedelta(minutes=3), versions)  # printed filled in, picked and packed were set
    assert [e.code for e in note.events][-2:] == ["SHW", "PRI"]
    with pytest.raises(NoteShipped):
        note.unset_stage(PA, CREATED, versions)


def test_an_edited_note_shows_its_shipping_details() -> None:
    note, _ = new_note()
    assert render_note(note, 0)["shipping"] == {"reference": "", "shippingMethodId": 0}  # as recorded
    note.edit(priority=True, shipping=ShippingChange(shipping_method_id=49, boxes=2, label_uri="https://l/1"))
    note.edit(shipping=ShippingChange(reference="BOX-1", weight=1.5))
    rendered = render_note(note, 0)
    assert rendered["priority"] is True
    assert rendered["shipping"] == {
        "reference": "BOX-1",
        "shippingMethodId": 49,
        "boxes": 2,
        "weight": 1.5,
        "labelUri": "https://l/1",
    }
    note.set_stage(SH, CREATED, lambda: 1)
    with pytest.raises(NoteShipped):
        note.edit(priority=False)


def test_the_search_ids_are_integer_columns() -> None:
    """API.md 8.1: one integer each, no ranges or lists."""
    types = {column.name: column.data_type for column in GOODS_OUT_SEARCH_TABLE.columns}
    assert [types[name] for name in ("goodsOutNoteId", "orderId", "warehouseId")] == [DataType.INTEGER] * 3
