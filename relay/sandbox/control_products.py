"""The control API's products and stock: making and changing products, and receiving and correcting stock,
each answered with the goods movement it logged and the stock level after it."""

from typing import Annotated, Any, Self

from aiohttp import web
from pydantic import Field, model_validator

from relay.sandbox.account import SandboxAccount
from relay.sandbox.control_requests import (
    BadRequest,
    ControlBody,
    account_of,
    made,
    nothing_to_change,
    path_id,
    read_body,
)
from relay.sandbox.orders import CustomValue
from relay.sandbox.products import ProductStatus
from relay.sandbox.stock import GoodsMovement
from relay.sandbox.times import format_utc

CustomFields = Annotated[dict[str, CustomValue], Field(min_length=1, max_length=50)]  # code -> value (null: unset)


class NewProducts(ControlBody):
    count: int = Field(1, ge=1, le=200_000)
    stock_tracked: bool = True
    name: str | None = Field(None, min_length=1)
    sku_prefix: str = "SKU-"
    stock: dict[str, int] | None = None  # warehouse id -> quantity on hand from the start, without movements


class ProductChange(ControlBody):
    name: str | None = Field(None, min_length=1)
    sku: str | None = None
    barcode: str | None = None
    status: ProductStatus | None = None
    custom_fields: CustomFields | None = None  # code -> value; null unsets it


class StockReceipt(ControlBody):
    product_id: int
    warehouse_id: int
    quantity: int = Field(ge=1, le=1_000_000_000)


class StockCorrection(ControlBody):
    product_id: int
    warehouse_id: int
    quantity: int = Field(ge=-1_000_000_000, le=1_000_000_000)

    @model_validator(mode="after")
    def not_zero(self) -> Self:
        if self.quantity == 0:
            raise ValueError("a correction moves a non-zero quantity")
        return self


def movement_summary(account: SandboxAccount, movement: GoodsMovement) -> dict[str, Any]:
    """A goods movement as the control API shows it, with its product's stock level in that warehouse now."""
    level = account.stock.level(movement.product_id, movement.warehouse_id)
    return {
        "id": movement.id,
        "product_id": movement.product_id,
        "warehouse_id": movement.warehouse_id,
        "quantity": movement.quantity,
        "goods_note_type": movement.note_type.value,
        "goods_note_id": movement.note_id,
        "created_on": format_utc(movement.created_on),
        "stock": {
            "in_stock": level.in_stock,
            "on_hand": level.on_hand,
            "allocated": level.allocated,
            "in_transit": level.in_transit,
        },
    }


async def create_products(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, NewProducts)
    stock: dict[int, int] = {}
    for warehouse, quantity in (body.stock or {}).items():
        if not warehouse.isdigit():
            raise BadRequest(f"stock: {warehouse!r} is not a warehouse id")
        stock[int(warehouse)] = quantity
    products = account.create_products(
        body.count, stock_tracked=body.stock_tracked, name=body.name, sku_prefix=body.sku_prefix, stock=stock
    )
    return made(products)


async def list_products(request: web.Request) -> web.Response:
    return web.json_response({"ids": list(account_of(request).products)})


async def change_product(request: web.Request) -> web.Response:
    account = account_of(request)
    product_id = path_id(request, "product_id", "product")
    body = await read_body(request, ProductChange)
    nothing_to_change(body)
    product = account.change_product(
        product_id,
        name=body.name,
        sku=body.sku,
        barcode=body.barcode,
        status=body.status,
        custom_fields=body.custom_fields,
    )
    return web.json_response(
        {
            "id": product.id,
            "version": product.version,
            "updated_on": format_utc(product.updated_on),
            "custom_fields": dict(product.custom_fields),
        }
    )


async def delete_product(request: web.Request) -> web.Response:
    account = account_of(request)
    product_id = path_id(request, "product_id", "product")
    account.delete_product(product_id)
    return web.json_response({"deleted": product_id})


async def receive_stock(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, StockReceipt)
    movement = account.receive_stock(body.product_id, body.warehouse_id, body.quantity)
    return web.json_response(movement_summary(account, movement), status=201)


async def correct_stock(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, StockCorrection)
    movement = account.correct_stock(body.product_id, body.warehouse_id, body.quantity)
    return web.json_response(movement_summary(account, movement), status=201)
