"""The sandbox's fixed data, each written once: order type codes and their ids, and the staff id it acts as."""

from datetime import UTC, datetime
from typing import get_args

import pytest

from relay.sandbox import catalogue
from relay.sandbox.account import SandboxAccount
from relay.sandbox.goods_out import Stage, render_note
from relay.sandbox.orders import render_order


@pytest.mark.parametrize(("code", "type_id"), [("SO", 1), ("PO", 2), ("SC", 3), ("PC", 4)])
def test_order_type_ids_are_the_recorded_ones(code: str, type_id: int) -> None:
    assert catalogue.ORDER_TYPE_IDS[code] == type_id


def test_the_control_api_takes_exactly_the_order_types_the_account_knows() -> None:
    assert list(get_args(catalogue.OrderTypeCode)) == list(catalogue.ORDER_TYPE_IDS)


def test_orders_and_goods_out_notes_name_the_same_staff_id() -> None:
    account = SandboxAccount("acme", clock=lambda: datetime(2026, 11, 26, 10, tzinfo=UTC))
    (product,) = account.create_products(1, stock={2: 5})
    (order,) = account.create_orders(1, rows=[(product.id, 1)])
    note = account.create_goods_out_note(order.id)
    account.set_note_stage(note.id, Stage.SHIPPED)
    rendered_order = render_order(order, account.status(order.status_id), account.offset_minutes)
    rendered_note = render_note(note, account.offset_minutes)
    assert rendered_order["createdById"] == rendered_note["createdBy"] == catalogue.STAFF_ID == 4
    assert {event["eventOwnerId"] for event in rendered_note["events"]} == {catalogue.STAFF_ID}
    assert rendered_note["status"]["shippedById"] == catalogue.STAFF_ID
