"""The control API's orders and goods-out notes: making orders (with rows, allocated or not, late), changing
their status, reference, delivery date, custom fields and rows, allocating them, and making their notes,
taking them through their stages and back, editing and deleting them."""

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from relay.sandbox.catalogue import OrderTypeCode
from relay.sandbox.control_products import CustomFields, movement_summary
from relay.sandbox.control_requests import (
    ControlBody,
    account_of,
    made,
    nothing_to_change,
    path_id,
    read_body,
    timestamp,
    utc_or_none,
)
from relay.sandbox.goods_out import GoodsOutNote, ShippingChange, Stage
from relay.sandbox.orders import SandboxOrder


class NewRow(ControlBody):
    product_id: int
    quantity: int = Field(1, ge=1, le=1_000_000)


Rows = Annotated[list[NewRow], Field(min_length=1, max_length=500)]


def _pairs(rows: list[NewRow] | None) -> list[tuple[int, int]]:
    """``(product id, quantity)`` pairs, as the account takes rows."""
    return [(row.product_id, row.quantity) for row in rows or ()]


class NewOrders(ControlBody):
    count: int = Field(1, ge=1, le=1000)
    order_type: OrderTypeCode = "SO"
    status_id: int | None = None
    created_on: str | None = None  # ISO-8601 with an offset: an order that becomes visible late
    customer_ref: str | None = None
    contact_id: int | None = Field(None, ge=1)
    rows: Rows | None = None
    warehouse_id: int | None = None
    allocate: bool = False


class StatusChange(ControlBody):
    status_id: int


class OrderChange(ControlBody):
    reference: str | None = None
    delivery_date: str | None = None  # ISO-8601 with an offset
    add_rows: Rows | None = None
    custom_fields: CustomFields | None = None  # code -> value; null unsets it


class StageChange(ControlBody):
    stage: Annotated[Stage, Field(strict=False)]  # the stage's name, as JSON gives it


class NoteChange(ControlBody):
    """An edit of a note: its priority and shipping details (each optional; at least one)."""

    priority: bool | None = None
    shipping_method_id: int | None = Field(None, ge=0)
    reference: str | None = Field(None, max_length=200)
    boxes: int | None = Field(None, ge=0, le=10_000)
    weight: float | None = Field(None, ge=0, le=1_000_000)
    label_uri: str | None = Field(None, max_length=2000)


def _order_summary(order: SandboxOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "version": order.version,
        "updated_on": utc_or_none(order.updated_on),
        "reference": order.reference,
        "warehouse_id": order.warehouse_id,
        "row_ids": [row.id for row in order.rows],
        "allocation_status": order.allocation_status_code,
        "shipping_status_id": order.shipping_status_id,
        "custom_fields": dict(order.custom_fields),
    }


def _note_summary(note: GoodsOutNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "order_id": note.order_id,
        "warehouse_id": note.warehouse_id,
        "sequence": note.sequence,
        "stages": [stage.value for stage in Stage if stage in note.stages],
        "shipped": note.shipped,
        "event_codes": [event.code for event in note.events],
        "priority": note.priority,
        "shipping": note.shipping.describe(),
    }


async def create_orders(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, NewOrders)
    orders = account.create_orders(
        body.count,
        body.order_type,
        status_id=body.status_id,
        created_on=timestamp("created_on", body.created_on),
        reference=body.customer_ref or "",
        contact_id=body.contact_id,
        rows=_pairs(body.rows),
        warehouse_id=body.warehouse_id,
        allocate=body.allocate,
    )
    return made(orders)


async def list_orders(request: web.Request) -> web.Response:
    return web.json_response({"ids": account_of(request).order_ids()})


async def change_order_status(request: web.Request) -> web.Response:
    account = account_of(request)
    order_id = path_id(request, "order_id", "order")
    body = await read_body(request, StatusChange)
    order = account.set_status(order_id, body.status_id)
    status = account.status(order.status_id)
    return web.json_response(
        {
            "id": order.id,
            "status_id": status.status_id,
            "name": status.name,
            "version": order.version,
            "updated_on": utc_or_none(order.updated_on),
        }
    )


async def change_order(request: web.Request) -> web.Response:
    account = account_of(request)
    order_id = path_id(request, "order_id", "order")
    body = await read_body(request, OrderChange)
    nothing_to_change(body)
    order = account.change_order(
        order_id,
        reference=body.reference,
        delivery_date=timestamp("delivery_date", body.delivery_date),
        add_rows=_pairs(body.add_rows),
        custom_fields=body.custom_fields,
    )
    return web.json_response(_order_summary(order))


async def allocate_order(request: web.Request) -> web.Response:
    account = account_of(request)
    order = account.allocate_order(path_id(request, "order_id", "order"))
    return web.json_response(_order_summary(order))


async def create_goods_out_note(request: web.Request) -> web.Response:
    account = account_of(request)
    note = account.create_goods_out_note(path_id(request, "order_id", "order"))
    return web.json_response(_note_summary(note), status=201)


async def list_goods_out_notes(request: web.Request) -> web.Response:
    return web.json_response({"ids": sorted(account_of(request).goods_out_notes)})


async def set_note_stage(request: web.Request) -> web.Response:
    account = account_of(request)
    note_id = path_id(request, "note_id", "goods-out note")
    body = await read_body(request, StageChange)
    note, movements = account.set_note_stage(note_id, body.stage)
    return web.json_response({**_note_summary(note), "movements": [movement_summary(account, m) for m in movements]})


async def unset_note_stage(request: web.Request) -> web.Response:
    account = account_of(request)
    note_id = path_id(request, "note_id", "goods-out note")
    body = await read_body(request, StageChange)
    return web.json_response(_note_summary(account.unset_note_stage(note_id, body.stage)))


async def change_goods_out_note(request: web.Request) -> web.Response:
    account = account_of(request)
    note_id = path_id(request, "note_id", "goods-out note")
    body = await read_body(request, NoteChange)
    nothing_to_change(body)
    shipping_fields = body.model_fields_set - {"priority"}
    shipping = (
        ShippingChange(body.shipping_method_id, body.reference, body.boxes, body.weight, body.label_uri)
        if shipping_fields
        else None
    )
    note = account.edit_goods_out_note(note_id, priority=body.priority, shipping=shipping)
    return web.json_response(_note_summary(note))


async def delete_goods_out_note(request: web.Request) -> web.Response:
    account = account_of(request)
    note_id = path_id(request, "note_id", "goods-out note")
    account.delete_goods_out_note(note_id)
    return web.json_response({"id": note_id, "deleted": True})
