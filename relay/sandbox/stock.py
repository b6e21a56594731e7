"""Stock: the figures a product has in a warehouse, how each kind of change moves them, and the goods movements
Brightpearl logs for the changes that move goods.

The figures follow the recorded ``product-availability`` answers, where ``inStock = onHand + allocated``:
``onHand`` is what can still be sold, ``allocated`` what orders have claimed, ``inTransit`` apart. Receiving
goods raises ``onHand`` (and so ``inStock``); allocating an order moves quantity from ``onHand`` to
``allocated`` *without a goods movement* (Brightpearl logs none: a relay learns of allocations from the changed
order); shipping a goods-out note lowers ``allocated`` (and so ``inStock``); a stock correction changes
``onHand``. Allocation is not limited by what is on hand (``onHand`` may go negative): Brightpearl's partial
allocation is not modelled.

Movements are append-only, one per receipt, shipped note line and correction, each with a signed quantity and
the goods note it belongs to (``GI`` goods-in, ``GO`` goods-out, ``SC`` stock correction); ``createdOn`` and
``updatedOn`` are the same instant because a movement never changes.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from relay.sandbox.search import Column, DataType, SearchTable
from subscriptions.core.errors import InvalidInput

GOODS_MOVEMENT_SEARCH_TABLE = SearchTable(
    columns=(
        Column("goodsMovementId", DataType.IDSET, filter_confirmed=False),
        Column("goodsNoteId", DataType.IDSET),  # types as documented (API.md 8.1)
        Column("goodsNoteTypeCode", DataType.STRING),
        Column("productId", DataType.INTEGER),
        Column("warehouseId", DataType.INTEGER),
        Column("quantity", DataType.INTEGER, filter_confirmed=False),
        Column("createdOn", DataType.PERIOD, filter_confirmed=False),
        Column("updatedOn", DataType.PERIOD),
    ),
    id_column="goodsMovementId",
)


class GoodsNoteType(StrEnum):
    """The kind of goods note a movement belongs to (its ``goodsNoteTypeCode``)."""

    GOODS_IN = "GI"
    GOODS_OUT = "GO"
    STOCK_CORRECTION = "SC"


class BadQuantity(InvalidInput):
    """A quantity that cannot move stock: not positive for a receipt, allocation or shipment, zero for a
    correction."""


def _positive(quantity: int, what: str) -> int:
    if quantity <= 0:
        raise BadQuantity(f"a {what} moves a positive quantity, not {quantity}")
    return quantity


@dataclass(frozen=True, slots=True)
class StockLevel:
    """What one product has in one warehouse."""

    on_hand: int = 0
    allocated: int = 0
    in_transit: int = 0

    @property
    def in_stock(self) -> int:
        return self.on_hand + self.allocated

    def after_receipt(self, quantity: int) -> "StockLevel":
        return replace(self, on_hand=self.on_hand + _positive(quantity, "receipt"))

    def after_allocation(self, quantity: int) -> "StockLevel":
        moved = _positive(quantity, "allocation")
        return replace(self, on_hand=self.on_hand - moved, allocated=self.allocated + moved)

    def after_shipment(self, quantity: int) -> "StockLevel":
        return replace(self, allocated=self.allocated - _positive(quantity, "shipment"))

    def after_correction(self, quantity: int) -> "StockLevel":
        if quantity == 0:
            raise BadQuantity("a stock correction moves a non-zero quantity")
        return replace(self, on_hand=self.on_hand + quantity)

    def __add__(self, other: "StockLevel") -> "StockLevel":
        return StockLevel(
            self.on_hand + other.on_hand, self.allocated + other.allocated, self.in_transit + other.in_transit
        )

    def describe(self) -> dict[str, int]:
        """The figures as ``product-availability`` shows them, in the recorded key order."""
        return {
            "inStock": self.in_stock,
            "onHand": self.on_hand,
            "allocated": self.allocated,
            "inTransit": self.in_transit,
        }


def availability(levels: dict[int, StockLevel]) -> dict[str, Any]:
    """One product's ``product-availability`` entry from its levels by warehouse id: ``total`` and ``warehouses``
    (only the warehouses that have ever held it, as recorded)."""
    total = sum(levels.values(), StockLevel())
    return {
        "total": total.describe(),
        "warehouses": {str(warehouse_id): level.describe() for warehouse_id, level in sorted(levels.items())},
    }


@dataclass(frozen=True, slots=True)
class GoodsMovement:
    """One logged change of stock; never changed once made."""

    id: int
    product_id: int
    warehouse_id: int
    quantity: int  # signed: goods out are negative
    note_type: GoodsNoteType
    note_id: int
    created_on: datetime

    def search_row(self) -> dict[str, Any]:
        """The movement as a ``goods-movement-search`` row, by column name."""
        return {
            "goodsMovementId": self.id,
            "goodsNoteId": self.note_id,
            "goodsNoteTypeCode": self.note_type.value,
            "productId": self.product_id,
            "warehouseId": self.warehouse_id,
            "quantity": self.quantity,
            "createdOn": self.created_on,
            "updatedOn": self.created_on,
        }


class StockLedger:
    """Every product's levels by warehouse, and the movements, each movement's search row made once."""

    def __init__(self, first_movement_id: int = 1) -> None:
        self.levels: dict[int, dict[int, StockLevel]] = {}  # product id -> warehouse id -> level
        self.movements: dict[int, GoodsMovement] = {}
        self.movement_rows: dict[int, dict[str, Any]] = {}
        self._next_movement_id = first_movement_id

    def level(self, product_id: int, warehouse_id: int) -> StockLevel:
        return self.levels.get(product_id, {}).get(warehouse_id, StockLevel())

    def _set(self, product_id: int, warehouse_id: int, level: StockLevel) -> None:
        self.levels.setdefault(product_id, {})[warehouse_id] = level

    def _log(
        self, product_id: int, warehouse_id: int, quantity: int, note_type: GoodsNoteType, note_id: int, now: datetime
    ) -> GoodsMovement:
        movement = GoodsMovement(self._next_movement_id, product_id, warehouse_id, quantity, note_type, note_id, now)
        self._next_movement_id += 1
        self.movements[movement.id] = movement
        self.movement_rows[movement.id] = movement.search_row()
        return movement

    def stock_existing(self, product_ids: Iterable[int], quantities: Mapping[int, int]) -> None:
        """Stock a catalogue had before the sandbox knew it (warehouse id to quantity, the same for each product):
        on hand, without movements."""
        if any(quantity < 0 for quantity in quantities.values()):
            raise BadQuantity("existing stock cannot be negative")
        levels = {warehouse_id: StockLevel(on_hand=quantity) for warehouse_id, quantity in quantities.items()}
        for product_id in product_ids:  # levels are immutable, so products can share them
            self.levels.setdefault(product_id, {}).update(levels)

    def receive(self, product_id: int, warehouse_id: int, quantity: int, note_id: int, now: datetime) -> GoodsMovement:
        """Goods in: ``onHand`` and ``inStock`` rise; a ``GI`` movement."""
        self._set(product_id, warehouse_id, self.level(product_id, warehouse_id).after_receipt(quantity))
        return self._log(product_id, warehouse_id, quantity, GoodsNoteType.GOODS_IN, note_id, now)

    def correct(self, product_id: int, warehouse_id: int, quantity: int, note_id: int, now: datetime) -> GoodsMovement:
        """A stock correction by a signed quantity: ``onHand`` and ``inStock`` move; an ``SC`` movement."""
        self._set(product_id, warehouse_id, self.level(product_id, warehouse_id).after_correction(quantity))
        return self._log(product_id, warehouse_id, quantity, GoodsNoteType.STOCK_CORRECTION, note_id, now)

    def allocate(self, product_id: int, warehouse_id: int, quantity: int) -> None:
        """An order row claims stock: ``onHand`` to ``allocated``; no movement, as in Brightpearl."""
        self._set(product_id, warehouse_id, self.level(product_id, warehouse_id).after_allocation(quantity))

    def ship(self, product_id: int, warehouse_id: int, quantity: int, note_id: int, now: datetime) -> GoodsMovement:
        """Allocated goods leave: ``allocated`` and ``inStock`` fall; a ``GO`` movement of ``-quantity``."""
        self._set(product_id, warehouse_id, self.level(product_id, warehouse_id).after_shipment(quantity))
        return self._log(product_id, warehouse_id, -quantity, GoodsNoteType.GOODS_OUT, note_id, now)

    def availability(self, product_ids: Iterable[int]) -> dict[str, Any]:
        """``product-availability`` entries for ``product_ids`` (keyed by string id, in the order given)."""
        return {str(product_id): availability(self.levels.get(product_id, {})) for product_id in product_ids}
