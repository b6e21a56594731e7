"""Stock arithmetic and the movement ledger, pure: what each change does to the figures, and which log a movement."""

from datetime import UTC, datetime

import pytest

from relay.sandbox.stock import BadQuantity, GoodsNoteType, StockLedger, StockLevel, availability

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "change", "quantity", "expected"),
    [
        (StockLevel(), "after_receipt", 5, StockLevel(on_hand=5)),
        (StockLevel(on_hand=5), "after_allocation", 2, StockLevel(on_hand=3, allocated=2)),
        (StockLevel(on_hand=1), "after_allocation", 3, StockLevel(on_hand=-2, allocated=3)),  # not capped
        (StockLevel(on_hand=3, allocated=2), "after_shipment", 2, StockLevel(on_hand=3)),
        (StockLevel(on_hand=3, allocated=2), "after_correction", -4, StockLevel(on_hand=-1, allocated=2)),
        (StockLevel(on_hand=3, in_transit=7), "after_correction", 4, StockLevel(on_hand=7, in_transit=7)),
    ],
)
def test_each_change_moves_the_figures(start: StockLevel, change: str, quantity: int, expected: StockLevel) -> None:
    after = getattr(start, change)(quantity)
    assert after == expected
    assert after.in_stock == after.on_hand + after.allocated


@pytest.mark.parametrize(
    ("change", "quantity", "in_stock_delta", "on_hand_delta", "allocated_delta"),
    [
        ("after_receipt", 4, 4, 4, 0),
        ("after_allocation", 4, 0, -4, 4),  # in stock unchanged: the goods have not left
        ("after_shipment", 4, -4, 0, -4),
        ("after_correction", -3, -3, -3, 0),
    ],
)
def test_what_each_change_does_to_in_stock(
    change: str, quantity: int, in_stock_delta: int, on_hand_delta: int, allocated_delta: int
) -> None:
    start = StockLevel(on_hand=10, allocated=5)
    after = getattr(start, change)(quantity)
    assert (after.in_stock - start.in_stock, after.on_hand - start.on_hand) == (in_stock_delta, on_hand_delta)
    assert after.allocated - start.allocated == allocated_delta


@pytest.mark.parametrize(
    ("change", "quantity"),
    [
        ("after_receipt", 0),
        ("after_receipt", -1),
        ("after_allocation", 0),
        ("after_shipment", -2),
        ("after_correction", 0),
    ],
)
def test_quantities_that_move_nothing_are_refused(change: str, quantity: int) -> None:
    with pytest.raises(BadQuantity):
        getattr(StockLevel(on_hand=5, allocated=5), change)(quantity)


def test_describe_is_the_recorded_figures_in_order() -> None:
    assert list(StockLevel(48, 12).describe().items()) == [
        ("inStock", 60),
        ("onHand", 48),
        ("allocated", 12),
        ("inTransit", 0),
    ]


def test_availability_totals_the_warehouses_that_held_the_product() -> None:
    entry = availability({3: StockLevel(1, 2), 2: StockLevel(48, 12)})
    assert entry["total"] == {"inStock": 63, "onHand": 49, "allocated": 14, "inTransit": 0}
    assert list(entry["warehouses"]) == ["2", "3"]
    assert availability({}) == {"total": StockLevel().describe(), "warehouses": {}}


def test_the_ledger_logs_receipts_shipments_and_corrections_but_not_allocations() -> None:
    ledger = StockLedger()
    ledger.stock_existing([7, 8], {2: 10})
    assert (ledger.level(7, 2), ledger.level(8, 2), ledger.level(7, 3)) == (
        StockLevel(10),
        StockLevel(10),
        StockLevel(),
    )
    assert ledger.movements == {}  # existing stock was there before the sandbox

    received = ledger.receive(7, 2, 5, note_id=1, now=NOW)
    ledger.allocate(7, 2, 3)
    shipped = ledger.ship(7, 2, 3, note_id=2, now=NOW)
    corrected = ledger.correct(7, 3, -1, note_id=3, now=NOW)
    assert [(m.id, m.note_type, m.quantity, m.note_id, m.warehouse_id) for m in ledger.movements.values()] == [
        (1, GoodsNoteType.GOODS_IN, 5, 1, 2),
        (2, GoodsNoteType.GOODS_OUT, -3, 2, 2),
        (3, GoodsNoteType.STOCK_CORRECTION, -1, 3, 3),
    ]
    assert [received.id, shipped.id, corrected.id] == [1, 2, 3]
    assert ledger.level(7, 2) == StockLevel(on_hand=12)  # 10 + 5 - 3 allocated, then the 3 shipped
    assert ledger.level(7, 3) == StockLevel(on_hand=-1)
    assert ledger.movement_rows[2] == {
        "goodsMovementId": 2,
        "goodsNoteId": 2,
        "goodsNoteTypeCode": "GO",
        "productId": 7,
        "warehouseId": 2,
        "quantity": -3,
        "createdOn": NOW,
        "updatedOn": NOW,  # a movement never changes
    }
    assert list(ledger.availability([8, 7, 99])) == ["8", "7", "99"]


def test_existing_stock_cannot_be_negative() -> None:
    with pytest.raises(BadQuantity):
        StockLedger().stock_existing([1], {2: -1})
