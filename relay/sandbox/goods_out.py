"""Goods-out notes: what one holds, the stages it goes through, and how Brightpearl renders it in a GET and in a
``goods-out-search`` row.

A note is made for an order's allocated rows, with one ``PLA`` event (recorded on new notes; "placed"). It is
then printed (``PRI``), picked (``PIC``), packed (``PAC``) and shipped (``SHW``), each stage logging an event.
Printed, picked and packed can be undone (``UPR``, ``UPI``, ``UPA``: the flag, its ``*On`` and ``*ById`` are
cleared) and reached again (API.md 6.6, 8.1). Setting *shipped* also sets every earlier stage still missing,
their events logged after ``SHW``, as the recorded note shows; once shipped nothing more can change. Other
fields can be edited: ``priority`` and ``shipping`` (method, reference, boxes, weight, label URI; the fields of
Brightpearl's ``goods-out-note.modified`` webhook, API.md 7.3). Notes have no ``updatedOn``: a relay sees new
notes by ``createdOn`` and progress by re-reading them (or by ``shippedOn``). The stage rules are pure
(:func:`stages_to_set`, :func:`stage_to_unset`); stock and goods movements are the account's business.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from relay.sandbox import catalogue
from relay.sandbox.search import Column, DataType, SearchTable
from relay.sandbox.times import format_in_offset
from subscriptions.core.errors import Conflict

GOODS_OUT_SEARCH_TABLE = SearchTable(
    columns=(
        # INTEGER, not IDSET: one value, no ranges or lists (API.md 8.1, from the goods-out-note search docs)
        Column("goodsOutNoteId", DataType.INTEGER),
        Column("orderId", DataType.INTEGER),
        Column("warehouseId", DataType.INTEGER),
        Column("transfer", DataType.BOOLEAN),
        Column("printed", DataType.BOOLEAN),
        Column("picked", DataType.BOOLEAN),
        Column("packed", DataType.BOOLEAN),
        Column("shipped", DataType.BOOLEAN),
        Column("createdOn", DataType.PERIOD),
        Column("shippedOn", DataType.PERIOD),
    ),
    id_column="goodsOutNoteId",
)

PLACED_EVENT = "PLA"


class Stage(StrEnum):
    """A stage of a goods-out note, in the order a warehouse goes through them."""

    PRINTED = "printed"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"

    @property
    def event_code(self) -> str:
        return _EVENT_CODES[self]

    @property
    def undo_code(self) -> str:
        """The event logged when the stage is undone (shipping cannot be)."""
        return _UNDO_CODES[self]


_EVENT_CODES = {Stage.PRINTED: "PRI", Stage.PICKED: "PIC", Stage.PACKED: "PAC", Stage.SHIPPED: "SHW"}
_UNDO_CODES = {Stage.PRINTED: "UPR", Stage.PICKED: "UPI", Stage.PACKED: "UPA"}
_BEFORE_SHIPPING = (Stage.PRINTED, Stage.PICKED, Stage.PACKED)


class NoteShipped(Conflict):
    """A change to a goods-out note that has shipped: Brightpearl takes no more events."""


class StageAlreadySet(Conflict):
    """A stage the note has already reached."""


class StageNotSet(Conflict):
    """Undoing a stage the note has not reached (or is not at any more)."""


class NotUndoable(Conflict):
    """Undoing shipping: Brightpearl has no event for it."""


def stages_to_set(done: Collection[Stage], stage: Stage) -> list[Stage]:
    """The stages that setting ``stage`` sets on a note that has reached ``done``, in the order their events are
    logged: ``stage`` alone, or for *shipped* also every earlier stage still missing, after it (as recorded)."""
    if Stage.SHIPPED in done:
        raise NoteShipped("the goods-out note has shipped; it cannot change any more")
    if stage in done:
        raise StageAlreadySet(f"the goods-out note is already {stage.value}")
    if stage is Stage.SHIPPED:
        return [Stage.SHIPPED, *(earlier for earlier in _BEFORE_SHIPPING if earlier not in done)]
    return [stage]


def stage_to_unset(done: Collection[Stage], stage: Stage) -> Stage:
    """The stage that undoing ``stage`` clears on a note that has reached ``done``: ``stage`` itself, each stage
    on its own (undoing *picked* leaves *packed* as it is: Brightpearl's flags are independent)."""
    if Stage.SHIPPED in done:
        raise NoteShipped("the goods-out note has shipped; it cannot change any more")
    if stage is Stage.SHIPPED:
        raise NotUndoable("shipping cannot be undone")
    if stage not in done:
        raise StageNotSet(f"the goods-out note is not {stage.value}")
    return stage


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """One event in a note's history (Brightpearl spells the time ``occured``)."""

    occurred: datetime
    code: str
    owner_id: int = catalogue.STAFF_ID

    def describe(self, offset_minutes: int) -> dict[str, Any]:
        return {
            "occured": format_in_offset(self.occurred, offset_minutes),
            "eventOwnerId": self.owner_id,
            "eventCode": self.code,
        }


@dataclass(frozen=True, slots=True)
class NoteLine:
    """What a note ships of one order row."""

    row_id: int
    product_id: int
    quantity: int
    location_id: int


@dataclass(frozen=True, slots=True)
class Shipping:
    """A note's ``shipping``: the recorded note shows ``reference`` and ``shippingMethodId``; the documented
    ``boxes``, ``weight`` and ``labelUri`` appear once set (Brightpearl omits null fields)."""

    shipping_method_id: int = 0
    reference: str = ""
    boxes: int | None = None
    weight: float | None = None
    label_uri: str | None = None

    def describe(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"reference": self.reference, "shippingMethodId": self.shipping_method_id}
        optional = {"boxes": self.boxes, "weight": self.weight, "labelUri": self.label_uri}
        return shown | {name: value for name, value in optional.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ShippingChange:
    """The shipping fields an edit sets; ``None`` leaves a field as it is."""

    shipping_method_id: int | None = None
    reference: str | None = None
    boxes: int | None = None
    weight: float | None = None
    label_uri: str | None = None

    def applied_to(self, shipping: Shipping) -> Shipping:
        return Shipping(
            shipping.shipping_method_id if self.shipping_method_id is None else self.shipping_method_id,
            shipping.reference if self.reference is None else self.reference,
            shipping.boxes if self.boxes is None else self.boxes,
            shipping.weight if self.weight is None else self.weight,
            shipping.label_uri if self.label_uri is None else self.label_uri,
        )


@dataclass
class GoodsOutNote:
    """One goods-out note of an order."""

    id: int
    order_id: int
    warehouse_id: int
    created_on: datetime
    lines: tuple[NoteLine, ...]
    sequence: int  # the note's number among its order's notes, from 1
    last_event_version: int
    stages: dict[Stage, datetime] = field(default_factory=dict)
    events: list[NoteEvent] = field(default_factory=list)
    priority: bool = False
    shipping: Shipping = field(default_factory=Shipping)

    def __post_init__(self) -> None:
        if not self.events:
            self.events.append(NoteEvent(self.created_on, PLACED_EVENT))

    @property
    def shipped(self) -> bool:
        return Stage.SHIPPED in self.stages

    @property
    def shipped_on(self) -> datetime | None:
        return self.stages.get(Stage.SHIPPED)

    def set_stage(self, stage: Stage, now: datetime, next_event_version: Callable[[], int]) -> list[Stage]:
        """Reach ``stage`` (and for *shipped* the earlier stages missing) at ``now``; the stages newly set.
        ``next_event_version`` numbers each event, account-wide, for ``lastEventVersion``."""
        newly_set = stages_to_set(self.stages.keys(), stage)
        for reached in newly_set:
            self.stages[reached] = now
            self.events.append(NoteEvent(now, reached.event_code))
            self.last_event_version = next_event_version()
        return newly_set

    def unset_stage(self, stage: Stage, now: datetime, next_event_version: Callable[[], int]) -> None:
        """Undo ``stage`` at ``now``: its flag and times are cleared and a ``UPR``/``UPI``/``UPA`` is logged."""
        undone = stage_to_unset(self.stages.keys(), stage)
        del self.stages[undone]
        self.events.append(NoteEvent(now, undone.undo_code))
        self.last_event_version = next_event_version()

    def edit(self, *, priority: bool | None = None, shipping: ShippingChange | None = None) -> None:
        """Change the note's priority or shipping details; a shipped note takes no more changes."""
        if self.shipped:
            raise NoteShipped("the goods-out note has shipped; it cannot change any more")
        if priority is not None:
            self.priority = priority
        if shipping is not None:
            self.shipping = shipping.applied_to(self.shipping)


def render_note(note: GoodsOutNote, offset_minutes: int) -> dict[str, Any]:
    """The note as ``GET /warehouse-service/order/*/goods-note/goods-out/{id}`` shows it, keys in recorded order;
    the ``*On`` and ``*ById`` of stages not reached are left out (Brightpearl omits null fields)."""

    def when(value: datetime) -> str:
        return format_in_offset(value, offset_minutes)

    # The recorded order of keys within ``status``: the flags, then the times, then the staff ids.
    flags = (Stage.SHIPPED, Stage.PACKED, Stage.PICKED, Stage.PRINTED)
    detailed = (Stage.PICKED, Stage.PACKED, Stage.SHIPPED, Stage.PRINTED)
    status: dict[str, Any] = {stage.value: stage in note.stages for stage in flags}
    status |= {f"{stage.value}On": when(note.stages[stage]) for stage in detailed if stage in note.stages}
    status |= {f"{stage.value}ById": catalogue.STAFF_ID for stage in detailed if stage in note.stages}
    rows: dict[str, list[dict[str, int]]] = {}
    for line in note.lines:
        rows.setdefault(str(line.row_id), []).append(
            {"productId": line.product_id, "quantity": line.quantity, "locationId": line.location_id}
        )
    return {
        "orderId": note.order_id,
        "warehouseId": note.warehouse_id,
        "transfer": False,
        "priority": note.priority,
        "status": status,
        "shipping": note.shipping.describe(),
        "releaseDate": when(note.created_on),
        "createdOn": when(note.created_on),
        "createdBy": catalogue.STAFF_ID,
        "orderRows": rows,
        "sequence": note.sequence,
        "events": [event.describe(offset_minutes) for event in note.events],
        "lastEventVersion": note.last_event_version,
    }


def search_row(note: GoodsOutNote) -> dict[str, Any]:
    """The note as a ``goods-out-search`` row, by column name."""
    return {
        "goodsOutNoteId": note.id,
        "orderId": note.order_id,
        "warehouseId": note.warehouse_id,
        "transfer": False,
        "printed": Stage.PRINTED in note.stages,
        "picked": Stage.PICKED in note.stages,
        "packed": Stage.PACKED in note.stages,
        "shipped": note.shipped,
        "createdOn": note.created_on,
        "shippedOn": note.shipped_on,
    }
