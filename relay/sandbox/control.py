"""The control API under ``/_sandbox``: what tests, benchmarks and the demo use to make things happen in the
sandbox.

JSON in and out, no authentication (the sandbox listens on loopback). Bad input is a 4xx with
``{"error": "..."}``, never a 500: bodies are validated with pydantic, and the model's errors are mapped to HTTP
in :func:`control_errors`, the one middleware that inspects them. Unknown things are 404, changes the state
does not allow (allocating twice, a shipped note) 409, values the account cannot take (a warehouse it does not
have) 422.

Under ``/_sandbox/accounts/{code}``: ``orders`` (made, with rows; changed; allocated; given goods-out notes),
``products``, ``stock/receive`` and ``stock/correct``, ``goods-out-notes`` and their stages, ``contacts``,
``faults``, ``spend`` and ``requests``.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, Self, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from relay.sandbox.account import DEFAULT_OFFSET_MINUTES, SandboxAccount
from relay.sandbox.drift import MAX_DRIFT_S_PER_MIN, drift_of, drifting
from relay.sandbox.faults import FaultKind
from relay.sandbox.goods_out import GoodsOutNote, Stage
from relay.sandbox.orders import SandboxOrder
from relay.sandbox.products import ProductStatus
from relay.sandbox.state import SANDBOX_STATE, base_url
from relay.sandbox.stock import GoodsMovement
from subscriptions.errors import Conflict, InvalidInput, NotFound, RelayError
from workers.brightpearl.timestamps import TimestampError, format_utc, parse_timestamp

log = logging.getLogger(__name__)

PREFIX = "/_sandbox"
M = TypeVar("M", bound=BaseModel)


class BadRequest(RelayError):
    """A control request whose body or path cannot be read."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewAccount(_Body):
    code: str
    offset_minutes: int = Field(DEFAULT_OFFSET_MINUTES, ge=-720, le=840)
    app_ref: str | None = Field(None, min_length=1)
    account_token: str | None = Field(None, min_length=1)
    staff_token: str | None = Field(None, min_length=1)


class AccountChange(_Body):
    offset_minutes: int | None = Field(None, ge=-720, le=840)
    clock_skew_s: float | None = Field(None, ge=-366 * 86400, le=366 * 86400)
    # seconds the account's clock gains a minute from now on (negative: loses); 0 stops the drift
    clock_drift_s_per_min: float | None = Field(None, ge=-MAX_DRIFT_S_PER_MIN, le=MAX_DRIFT_S_PER_MIN)
    # a token replaced in Brightpearl: the old one answers 401 from now on
    account_token: str | None = Field(None, min_length=1)
    staff_token: str | None = Field(None, min_length=1)


class NewRow(_Body):
    product_id: int
    quantity: int = Field(1, ge=1, le=1_000_000)


class NewOrders(_Body):
    count: int = Field(1, ge=1, le=1000)
    order_type: Literal["SO", "PO", "SC", "PC"] = "SO"
    status_id: int | None = None
    created_on: str | None = None  # ISO-8601 with an offset: an order that becomes visible late
    customer_ref: str | None = None
    contact_id: int | None = Field(None, ge=1)
    rows: list[NewRow] | None = Field(None, min_length=1, max_length=500)
    warehouse_id: int | None = None
    allocate: bool = False


class StatusChange(_Body):
    status_id: int


class OrderChange(_Body):
    reference: str | None = None
    delivery_date: str | None = None  # ISO-8601 with an offset
    add_rows: list[NewRow] | None = Field(None, min_length=1, max_length=500)


class NewProducts(_Body):
    count: int = Field(1, ge=1, le=200_000)
    stock_tracked: bool = True
    name: str | None = Field(None, min_length=1)
    sku_prefix: str = "SKU-"
    stock: dict[str, int] | None = None  # warehouse id -> quantity on hand from the start, without movements


class ProductChange(_Body):
    name: str | None = Field(None, min_length=1)
    sku: str | None = None
    barcode: str | None = None
    status: ProductStatus | None = None


class StockReceipt(_Body):
    product_id: int
    warehouse_id: int
    quantity: int = Field(ge=1, le=1_000_000_000)


class StockCorrection(_Body):
    product_id: int
    warehouse_id: int
    quantity: int = Field(ge=-1_000_000_000, le=1_000_000_000)

    @model_validator(mode="after")
    def not_zero(self) -> Self:
        if self.quantity == 0:
            raise ValueError("a correction moves a non-zero quantity")
        return self


class StageChange(_Body):
    stage: Literal["printed", "picked", "packed", "shipped"]


class NewContacts(_Body):
    count: int = Field(1, ge=1, le=100_000)
    first_name: str | None = Field(None, min_length=1)
    last_name: str = Field("Customer", min_length=1)
    email: str | None = Field(None, min_length=1)
    company_name: str = ""
    telephone: str = ""


class ContactChange(_Body):
    first_name: str | None = Field(None, min_length=1)
    last_name: str | None = Field(None, min_length=1)
    email: str | None = Field(None, min_length=1)
    company_name: str | None = None
    telephone: str | None = None


class NewFault(_Body):
    kind: FaultKind
    count: int | None = Field(None, ge=1)
    for_s: float | None = Field(None, gt=0, le=86400)
    delay_ms: int = Field(0, ge=0, le=60_000)
    path_contains: str = ""
    next_throttle_period_ms: int | None = Field(None, ge=1, le=59_999)  # a throttle fault's announced period

    @model_validator(mode="after")
    def slow_needs_a_delay(self) -> Self:
        if self.kind == "slow" and self.delay_ms <= 0:
            raise ValueError("a slow fault needs delay_ms > 0")
        return self


class Spend(_Body):
    requests: int = Field(ge=0, le=10_000)


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as error:  # UnicodeDecodeError included
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return model.model_validate(data)


def _account(request: web.Request) -> SandboxAccount:
    return request.app[SANDBOX_STATE].account(request.match_info["code"])


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _path_id(request: web.Request, name: str, what: str) -> int:
    """The id in the path; a :class:`NotFound` naming ``what`` when it is not a number."""
    text = request.match_info[name]
    if not text.isdigit():
        raise NotFound(f"{what} {text} does not exist in account {request.match_info['code']}")
    return int(text)


def _timestamp(name: str, text: str | None) -> datetime | None:
    try:
        return parse_timestamp(text) if text is not None else None
    except TimestampError as error:
        raise BadRequest(f"{name}: {error}") from error


def _nothing_to_change(body: BaseModel) -> None:
    if not body.model_fields_set:
        raise BadRequest("the body names nothing to change")


def _described(request: web.Request, account: SandboxAccount) -> dict[str, Any]:
    """One account as GET and PATCH show it: credentials and clock, with its drift and what time it is there."""
    return account.describe(base_url(_origin(request), account.code)) | {
        "clock_drift_s_per_min": drift_of(account.clock),
        "now": format_utc(account.now()),
    }


def _order_summary(order: SandboxOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "version": order.version,
        "updated_on": format_utc(order.updated_on) if order.updated_on else None,
        "reference": order.reference,
        "warehouse_id": order.warehouse_id,
        "row_ids": [row.id for row in order.rows],
        "allocation_status": order.allocation_status_code,
        "shipping_status_id": order.shipping_status_id,
    }


def _movement(account: SandboxAccount, movement: GoodsMovement) -> dict[str, Any]:
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


def _note(note: GoodsOutNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "order_id": note.order_id,
        "warehouse_id": note.warehouse_id,
        "sequence": note.sequence,
        "stages": [stage.value for stage in Stage if stage in note.stages],
        "shipped": note.shipped,
    }


async def index(request: web.Request) -> web.Response:
    accounts = request.app[SANDBOX_STATE].accounts
    return web.json_response({"accounts": f"{_origin(request)}{PREFIX}/accounts", "codes": sorted(accounts)})


async def list_accounts(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    return web.json_response([a.describe(base_url(_origin(request), a.code)) for a in state.accounts.values()])


async def create_account(request: web.Request) -> web.Response:
    body = await _body(request, NewAccount)
    tokens = {name: value for name in ("app_ref", "account_token", "staff_token") if (value := getattr(body, name))}
    account = SandboxAccount(code=body.code, offset_minutes=body.offset_minutes, **tokens)
    request.app[SANDBOX_STATE].add(account)
    return web.json_response(account.describe(base_url(_origin(request), account.code)), status=201)


async def get_account(request: web.Request) -> web.Response:
    return web.json_response(_described(request, _account(request)))


async def change_account(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, AccountChange)
    if body.offset_minutes is not None:
        account.offset_minutes = body.offset_minutes
    if body.clock_skew_s is not None:
        account.clock_skew_s = body.clock_skew_s
    if body.clock_drift_s_per_min is not None:
        account.clock = drifting(account.clock, body.clock_drift_s_per_min)
    if body.account_token is not None:
        account.account_token = body.account_token
    if body.staff_token is not None:
        account.staff_token = body.staff_token
    return web.json_response(_described(request, account))


async def create_orders(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewOrders)
    orders = account.create_orders(
        body.count,
        body.order_type,
        status_id=body.status_id,
        created_on=_timestamp("created_on", body.created_on),
        reference=body.customer_ref or "",
        contact_id=body.contact_id,
        rows=[(row.product_id, row.quantity) for row in body.rows or ()],
        warehouse_id=body.warehouse_id,
        allocate=body.allocate,
    )
    return web.json_response(
        {"ids": [o.id for o in orders], "created_on": format_utc(orders[0].created_on)}, status=201
    )


async def list_orders(request: web.Request) -> web.Response:
    return web.json_response({"ids": _account(request).order_ids()})


async def change_order_status(request: web.Request) -> web.Response:
    account = _account(request)
    order_id = _path_id(request, "order_id", "order")
    body = await _body(request, StatusChange)
    order = account.set_status(order_id, body.status_id)
    status = account.status(order.status_id)
    updated_on = format_utc(order.updated_on) if order.updated_on else None
    return web.json_response(
        {
            "id": order.id,
            "status_id": status.status_id,
            "name": status.name,
            "version": order.version,
            "updated_on": updated_on,
        }
    )


async def change_order(request: web.Request) -> web.Response:
    account = _account(request)
    order_id = _path_id(request, "order_id", "order")
    body = await _body(request, OrderChange)
    _nothing_to_change(body)
    order = account.change_order(
        order_id,
        reference=body.reference,
        delivery_date=_timestamp("delivery_date", body.delivery_date),
        add_rows=[(row.product_id, row.quantity) for row in body.add_rows or ()],
    )
    return web.json_response(_order_summary(order))


async def allocate_order(request: web.Request) -> web.Response:
    account = _account(request)
    order = account.allocate_order(_path_id(request, "order_id", "order"))
    return web.json_response(_order_summary(order))


async def create_goods_out_note(request: web.Request) -> web.Response:
    account = _account(request)
    note = account.create_goods_out_note(_path_id(request, "order_id", "order"))
    return web.json_response(_note(note), status=201)


async def list_goods_out_notes(request: web.Request) -> web.Response:
    return web.json_response({"ids": sorted(_account(request).goods_out_notes)})


async def set_note_stage(request: web.Request) -> web.Response:
    account = _account(request)
    note_id = _path_id(request, "note_id", "goods-out note")
    body = await _body(request, StageChange)
    note, movements = account.set_note_stage(note_id, Stage(body.stage))
    return web.json_response({**_note(note), "movements": [_movement(account, m) for m in movements]})


async def create_products(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewProducts)
    stock: dict[int, int] = {}
    for warehouse, quantity in (body.stock or {}).items():
        if not warehouse.isdigit():
            raise BadRequest(f"stock: {warehouse!r} is not a warehouse id")
        stock[int(warehouse)] = quantity
    products = account.create_products(
        body.count, stock_tracked=body.stock_tracked, name=body.name, sku_prefix=body.sku_prefix, stock=stock
    )
    return web.json_response(
        {"ids": [p.id for p in products], "created_on": format_utc(products[0].created_on)}, status=201
    )


async def list_products(request: web.Request) -> web.Response:
    return web.json_response({"ids": list(_account(request).products)})


async def change_product(request: web.Request) -> web.Response:
    account = _account(request)
    product_id = _path_id(request, "product_id", "product")
    body = await _body(request, ProductChange)
    _nothing_to_change(body)
    product = account.change_product(product_id, name=body.name, sku=body.sku, barcode=body.barcode, status=body.status)
    return web.json_response(
        {"id": product.id, "version": product.version, "updated_on": format_utc(product.updated_on)}
    )


async def receive_stock(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, StockReceipt)
    movement = account.receive_stock(body.product_id, body.warehouse_id, body.quantity)
    return web.json_response(_movement(account, movement), status=201)


async def correct_stock(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, StockCorrection)
    movement = account.correct_stock(body.product_id, body.warehouse_id, body.quantity)
    return web.json_response(_movement(account, movement), status=201)


async def create_contacts(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewContacts)
    contacts = account.create_contacts(
        body.count,
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email,
        company_name=body.company_name,
        telephone=body.telephone,
    )
    return web.json_response(
        {"ids": [c.id for c in contacts], "created_on": format_utc(contacts[0].created_on)}, status=201
    )


async def list_contacts(request: web.Request) -> web.Response:
    return web.json_response({"ids": list(_account(request).contacts)})


async def change_contact(request: web.Request) -> web.Response:
    account = _account(request)
    contact_id = _path_id(request, "contact_id", "contact")
    body = await _body(request, ContactChange)
    _nothing_to_change(body)
    contact = account.change_contact(contact_id, **body.model_dump(exclude_unset=True))
    return web.json_response({"id": contact.id, "updated_on": format_utc(contact.updated_on)})


async def add_fault(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, NewFault)
    fault = account.faults.add(
        body.kind,
        now_ms=account.monotonic_ms(),
        count=body.count,
        for_ms=None if body.for_s is None else round(body.for_s * 1000),
        delay_ms=body.delay_ms,
        path_contains=body.path_contains,
        throttle_period_ms=body.next_throttle_period_ms,
    )
    return web.json_response({"id": fault.id}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    account = _account(request)
    now_ms = account.monotonic_ms()
    return web.json_response({"faults": [fault.describe(now_ms) for fault in account.faults.active(now_ms)]})


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": _account(request).faults.clear()})


async def spend(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _body(request, Spend)
    now_ms = account.monotonic_ms()
    decision = account.throttle.spend(now_ms, body.requests)
    return web.json_response(
        {
            "requests_remaining": decision.requests_remaining,
            "next_throttle_period_ms": decision.next_throttle_period_ms,
            "in_window": account.throttle.in_window(now_ms),
        }
    )


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(_account(request).requests.describe())


async def reset_requests(request: web.Request) -> web.Response:
    account = _account(request)
    account.requests.reset()
    return web.json_response(account.requests.describe())


def add_control_routes(app: web.Application) -> None:
    """Mount the control API on ``app`` under ``/_sandbox``."""
    account = PREFIX + "/accounts/{code}"
    app.router.add_get(PREFIX, index)
    app.router.add_get(PREFIX + "/accounts", list_accounts)
    app.router.add_post(PREFIX + "/accounts", create_account)
    app.router.add_get(account, get_account)
    app.router.add_patch(account, change_account)
    app.router.add_get(account + "/orders", list_orders)
    app.router.add_post(account + "/orders", create_orders)
    app.router.add_put(account + "/orders/{order_id}/status", change_order_status)
    app.router.add_patch(account + "/orders/{order_id}", change_order)
    app.router.add_post(account + "/orders/{order_id}/allocate", allocate_order)
    app.router.add_post(account + "/orders/{order_id}/goods-out-notes", create_goods_out_note)
    app.router.add_get(account + "/goods-out-notes", list_goods_out_notes)
    app.router.add_post(account + "/goods-out-notes/{note_id}/stage", set_note_stage)
    app.router.add_get(account + "/products", list_products)
    app.router.add_post(account + "/products", create_products)
    app.router.add_patch(account + "/products/{product_id}", change_product)
    app.router.add_post(account + "/stock/receive", receive_stock)
    app.router.add_post(account + "/stock/correct", correct_stock)
    app.router.add_get(account + "/contacts", list_contacts)
    app.router.add_post(account + "/contacts", create_contacts)
    app.router.add_patch(account + "/contacts/{contact_id}", change_contact)
    app.router.add_get(account + "/faults", list_faults)
    app.router.add_post(account + "/faults", add_fault)
    app.router.add_delete(account + "/faults", clear_faults)
    app.router.add_post(account + "/spend", spend)
    app.router.add_get(account + "/requests", get_requests)
    app.router.add_delete(account + "/requests", reset_requests)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _validation_message(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors outside Brightpearl's API (the control API, unknown paths) as ``{"error": ...}`` JSON."""
    try:
        return await handler(request)
    except ValidationError as error:
        return _problem(400, _validation_message(error))
    except BadRequest as error:
        return _problem(400, str(error))
    except NotFound as error:
        return _problem(404, str(error))
    except Conflict as error:
        return _problem(409, str(error))
    except InvalidInput as error:
        return _problem(422, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _problem(error.status, error.reason)
    except Exception as error:  # a sandbox bug: still JSON, and logged with its traceback here, not sent
        log.exception("control request %s %s failed", request.method, request.path)
        return _problem(500, f"the sandbox failed: {type(error).__name__}")
