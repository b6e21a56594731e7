"""Sandbox orders: what one order holds, and how Brightpearl renders it in a GET and in an ``order-search`` row.

Times are kept as aware UTC datetimes with second precision (Brightpearl's are ``.000``) and rendered in the
account's offset only on the way out. A new order has no ``updatedOn``: a GET omits the key (Brightpearl omits
null fields) and a search row has ``null``, as recorded. Every change (status, allocation, reference, delivery
date, rows, shipping, custom fields) is a new ``version`` and stamps ``updatedOn``, except a status change on an
account whose ``status_moves_updated_on`` is off (API.md 8: unconfirmed either way). Custom fields are rendered
only when ``includeOptional`` asks for them (API.md 6.1, 8.1).

An order made without rows has the recorded order's one row (product 1007, a shirt at 10.00 including 10 %
tax), which no sandbox product backs: it is not stock-tracked, so such orders keep the recorded "no stock
tracked products" shipping status. Rows made from sandbox products remember whether the product was
stock-tracked; only those rows are allocated and go on goods-out notes.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from relay.sandbox import catalogue
from relay.sandbox.search import Column, DataType, SearchTable
from relay.sandbox.times import format_in_offset
from subscriptions.core.errors import InvalidInput

ORDER_SEARCH_TABLE = SearchTable(
    columns=(
        Column("orderId", DataType.IDSET),
        Column("orderTypeId", DataType.IDSET, "orderTypeNames"),
        Column("contactId", DataType.INTEGER),
        Column("orderStatusId", DataType.INTEGER, "orderStatusNames"),
        Column("orderStockStatusId", DataType.INTEGER, "orderStockStatusNames"),
        Column("createdOn", DataType.PERIOD),
        Column("createdById", DataType.INTEGER),
        Column("customerRef", DataType.STRING),
        Column("orderPaymentStatusId", DataType.INTEGER, "orderPaymentStatusNames"),
        Column("updatedOn", DataType.PERIOD),
        Column("parentOrderId", DataType.IDSET),
        Column("orderShippingStatusId", DataType.INTEGER, "orderShippingStatusNames"),
        Column("externalRef", DataType.STRING),
        Column("installedIntegrationInstanceId", DataType.INTEGER),
        Column("warehouseId", DataType.IDSET),
        Column("staffOwnerContactId", DataType.INTEGER),
        Column("taxDate", DataType.PERIOD),
        Column("departmentId", DataType.INTEGER),
        Column("deliveryDate", DataType.PERIOD),
    ),
    id_column="orderId",
)

ORDER_CUSTOM_FIELDS = ("PCF_GIFTWRAP", "PCF_DELIVNOTE")  # the order custom fields every sandbox account defines
CustomFieldsAsked = Literal["none", "set", "all"]  # none: no customFields key; set: the set ones; all: with nulls
CustomValue = bool | int | float | str | None


def custom_fields_asked(include_optional: str | None) -> CustomFieldsAsked:
    """What ``includeOptional`` asks of an order's or product's custom fields (API.md 6.1, 8.1): ``customFields``
    adds the set ones, ``nullCustomFields`` with it the unset ones as null; without it there is no key at all."""
    asked = {part.strip() for part in (include_optional or "").split(",")}
    if "customFields" not in asked:
        return "none"
    return "all" if "nullCustomFields" in asked else "set"


def render_custom_fields(
    defined: Iterable[str], values: Mapping[str, CustomValue], asked: CustomFieldsAsked
) -> dict[str, CustomValue]:
    """``customFields`` as asked: ``{"PCF_CODE": value}`` of the set fields, and the unset ones as null for "all"."""
    if asked == "all":
        return {code: values.get(code) for code in defined}
    return {code: values[code] for code in defined if values.get(code) is not None}


def check_custom_fields(defined: Iterable[str], changes: Mapping[str, CustomValue]) -> None:
    """:class:`InvalidInput` for a custom field code that is not defined."""
    known = tuple(defined)
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise InvalidInput(f"no custom field {', '.join(unknown)}: the account defines {', '.join(known)}")


def set_custom_fields(
    defined: Iterable[str], values: dict[str, CustomValue], changes: Mapping[str, CustomValue]
) -> None:
    """Set (or, with null, unset) custom fields in ``values``; :class:`InvalidInput` for a code not defined."""
    check_custom_fields(defined, changes)
    for code, value in changes.items():
        if value is None:
            values.pop(code, None)
        else:
            values[code] = value


PURCHASE_DELIVERY_DAYS = 7  # recorded: a new PO's deliveryDate is a week after it was made
UNIT_PRICE = Decimal("10.00")  # including tax, as the recorded row
ITEM_COST = Decimal("5.0000")
CURRENCY = "USD"  # the recorded account's, for every order
TAX_RATE = Decimal("0.10")


def whole_second(value: datetime) -> datetime:
    """``value`` in UTC without its fraction of a second, as Brightpearl stores times."""
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One row of an order: a product (as it was named when the row was made) and a quantity."""

    id: int
    product_id: int
    sku: str
    name: str
    quantity: int
    stock_tracked: bool
    sequence: int = 10  # orderRowSequence: 10, 20, ...

    def net(self) -> Decimal:
        return (UNIT_PRICE * self.quantity / (1 + TAX_RATE)).quantize(Decimal("0.0001"))

    def tax(self) -> Decimal:
        return (UNIT_PRICE * self.quantity - self.net()).quantize(Decimal("0.01"))


def recorded_row(row_id: int) -> OrderRow:
    """The recorded order's row, which every order made without rows has: product 1007, not a sandbox product."""
    return OrderRow(row_id, 1007, "TEST001", "Nice Shirt for Summer", 1, stock_tracked=False)


@dataclass
class SandboxOrder:
    """One order of any type (SO, PO, SC, PC) and what of it changes."""

    id: int
    order_type: str
    status_id: int
    contact_id: int
    created_on: datetime
    rows: list[OrderRow]
    reference: str = ""
    updated_on: datetime | None = None
    version: int = 1
    warehouse_id: int = 2
    parent_order_id: int = 0
    allocated: bool = False
    delivery_date_set: datetime | None = None  # a delivery date given after the order was made
    noted_row_ids: set[int] = field(default_factory=set)  # rows on a goods-out note
    shipped_row_ids: set[int] = field(default_factory=set)
    custom_fields: dict[str, CustomValue] = field(default_factory=dict)  # the set ones, by code

    @property
    def supplier_side(self) -> bool:
        return self.order_type in catalogue.SUPPLIER_ORDER_TYPES

    @property
    def tax_date(self) -> datetime:
        # Recorded search rows put taxDate at midnight UTC of the day the order was made.
        return self.created_on.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    @property
    def delivery_date(self) -> datetime | None:
        if self.delivery_date_set is not None:
            return self.delivery_date_set
        if self.order_type != "PO":
            return None
        return self.created_on + timedelta(days=PURCHASE_DELIVERY_DAYS, seconds=1)

    @property
    def stock_rows(self) -> list[OrderRow]:
        """The rows of stock-tracked products: the ones allocated, put on notes and shipped."""
        return [row for row in self.rows if row.stock_tracked]

    @property
    def shipping_status_id(self) -> int:
        stock_rows = {row.id for row in self.stock_rows}
        if not stock_rows:
            return catalogue.SHIPPING_STATUS_NONE_TRACKED
        if stock_rows <= self.shipped_row_ids:
            return catalogue.SHIPPING_STATUS_ALL_SHIPPED
        if self.shipped_row_ids:
            return catalogue.SHIPPING_STATUS_PART_SHIPPED
        return catalogue.SHIPPING_STATUS_NOT_SHIPPED

    @property
    def allocation_status_code(self) -> str:
        if self.supplier_side:
            return "ANR"  # recorded on POs: allocation not required
        return "AAA" if self.allocated else "ANA"

    def touch(self, now: datetime) -> None:
        """Any change: a new version, ``updatedOn`` now."""
        self.version += 1
        self.updated_on = whole_second(now)

    def change_status(self, status_id: int, now: datetime, *, moves_updated_on: bool = True) -> None:
        """A status change: a new version, ``updatedOn`` now; or, on an account where status changes do not move
        them (whether Brightpearl's do is unconfirmed, API.md 8), the status alone."""
        self.status_id = status_id
        if moves_updated_on:
            self.touch(now)

    def change(
        self,
        now: datetime,
        *,
        reference: str | None = None,
        delivery_date: datetime | None = None,
        custom_fields: Mapping[str, CustomValue] | None = None,
    ) -> None:
        """Change the reference, delivery date and/or custom fields (null unsets one): like any edit, a new
        version and ``updatedOn`` now."""
        set_custom_fields(ORDER_CUSTOM_FIELDS, self.custom_fields, custom_fields or {})
        self.reference = self.reference if reference is None else reference
        self.delivery_date_set = self.delivery_date_set if delivery_date is None else whole_second(delivery_date)
        self.touch(now)

    def mark_allocated(self, now: datetime) -> None:
        self.allocated = True
        self.touch(now)

    def mark_shipped(self, row_ids: Iterable[int], now: datetime) -> None:
        self.shipped_row_ids.update(row_ids)
        self.touch(now)


def search_row(order: SandboxOrder) -> dict[str, Any]:
    """The order as an ``order-search`` row, by column name; times stay datetimes until rendered."""
    return {
        "orderId": order.id,
        "orderTypeId": catalogue.ORDER_TYPE_IDS[order.order_type],
        "contactId": order.contact_id,
        "orderStatusId": order.status_id,
        "orderStockStatusId": catalogue.STOCK_STATUS_UNSET,
        "createdOn": order.created_on,
        "createdById": catalogue.STAFF_ID,
        "customerRef": order.reference,
        "orderPaymentStatusId": catalogue.PAYMENT_STATUS_NOT_APPLICABLE,
        "updatedOn": order.updated_on,
        "parentOrderId": order.parent_order_id,
        "orderShippingStatusId": order.shipping_status_id,
        "externalRef": None,
        "installedIntegrationInstanceId": None,
        "warehouseId": order.warehouse_id,
        "staffOwnerContactId": 0,
        "taxDate": order.tax_date,
        "departmentId": 0,
        "deliveryDate": order.delivery_date,
    }


def search_reference(statuses: Mapping[int, catalogue.OrderStatus]) -> dict[str, Mapping[int, str]]:
    """The names ``order-search`` puts in ``reference``, by reference-data name."""
    return {
        "orderTypeNames": catalogue.ORDER_TYPE_NAMES,
        "orderStatusNames": {status_id: status.name for status_id, status in statuses.items()},
        "orderStockStatusNames": catalogue.ORDER_STOCK_STATUS_NAMES,
        "orderPaymentStatusNames": catalogue.ORDER_PAYMENT_STATUS_NAMES,
        "orderShippingStatusNames": catalogue.ORDER_SHIPPING_STATUS_NAMES,
    }


def _money(value: Decimal, currency: str = CURRENCY) -> dict[str, str]:
    return {"currencyCode": currency, "value": str(value)}


def render_row(row: OrderRow, currency: str = CURRENCY) -> dict[str, Any]:
    """One of ``orderRows``, key for key as recorded; money and quantities are strings."""
    return {
        "orderRowSequence": str(row.sequence),
        "productId": row.product_id,
        "productName": row.name,
        "productSku": row.sku,
        "quantity": {"magnitude": f"{row.quantity}.0000"},
        "itemCost": _money(ITEM_COST, currency),
        "productPrice": _money(UNIT_PRICE.quantize(Decimal("0.0001")), currency),
        "discountPercentage": "0.00",
        "rowValue": {
            "taxRate": str((TAX_RATE * 100).quantize(Decimal("0.0001"))),
            "taxCode": "T",
            "taxCalculator": "brightpearl",
            "rowNet": _money(row.net(), currency),
            "rowTax": _money(row.tax(), currency),
            "taxClassId": 2,
        },
        "nominalCode": "4000",
        "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
        "clonedFromId": 0,
    }


def total_value(rows: Iterable[OrderRow]) -> dict[str, str]:
    """``totalValue`` of rows: for the recorded row, net 9.09 and tax 0.91 of a 10.00 total."""
    cents = Decimal("0.01")
    rows = list(rows)
    net = sum((row.net() for row in rows), Decimal(0)).quantize(cents)
    tax = sum((row.tax() for row in rows), Decimal(0)).quantize(cents)
    total = net + tax
    return {
        "net": str(net),
        "taxAmount": str(tax),
        "baseNet": str(net),
        "baseTaxAmount": str(tax),
        "baseTotal": str(total),
        "total": str(total),
    }


def render_order(
    order: SandboxOrder,
    status: catalogue.OrderStatus,
    offset_minutes: int,
    custom_fields: CustomFieldsAsked = "none",
) -> dict[str, Any]:
    """The order as ``GET /order-service/order/{id}`` returns it, key for key in the recorded order; with
    ``customFields`` last when ``includeOptional`` asked for them."""

    def when(value: datetime) -> str:
        return format_in_offset(value, offset_minutes)

    supplier_side = order.supplier_side
    body = _order_state(order, status, when)
    body |= {
        "createdById": catalogue.STAFF_ID,
        "priceListId": 1,
        "priceModeCode": "EXC" if supplier_side else "INC",
        "delivery": _delivery(order, when),
        "invoices": [
            {
                "invoiceReference": "",
                "taxDate": when(order.tax_date),
                "dueDate": when(order.tax_date + timedelta(days=30)),
            }
        ],
        "currency": {
            "accountingCurrencyCode": CURRENCY,
            "orderCurrencyCode": CURRENCY,
            "exchangeRate": "1.000000",
            "fixedExchangeRate": supplier_side,
        },
        "totalValue": total_value(order.rows),
        "assignment": {
            "current": {"staffOwnerContactId": 0, "projectId": 0, "channelId": 0, "leadSourceId": 0, "teamId": 0}
        },
        "parties": catalogue.parties(order.order_type, order.contact_id),
        "orderRows": {str(row.id): render_row(row) for row in order.rows},
        "warehouseId": order.warehouse_id,
        "acknowledged": 0,
        "costPriceListId": 0 if supplier_side else 1,
        "historicalOrder": False,
    }
    if supplier_side:
        body["isDropship"] = False
    body["orderWeighting"] = 100
    if custom_fields != "none":
        body["customFields"] = render_custom_fields(ORDER_CUSTOM_FIELDS, order.custom_fields, custom_fields)
    return body


def _order_state(order: SandboxOrder, status: catalogue.OrderStatus, when: Callable[[datetime], str]) -> dict[str, Any]:
    """The start of an order's GET: what it is, its version, its status codes and its times."""
    state: dict[str, Any] = {
        "id": order.id,
        "parentOrderId": order.parent_order_id,
        "orderTypeCode": order.order_type,
        "reference": order.reference,
        "version": order.version,
        "state": {"tax": "READY"},
        "orderStatus": {"orderStatusId": status.status_id, "name": status.name},
        "tax": {"errors": []},
        "orderPaymentStatus": "NOT_APPLICABLE",
        "stockStatusCode": "PON" if order.supplier_side else "SON",
        "allocationStatusCode": order.allocation_status_code,
        "shippingStatusCode": catalogue.SHIPPING_STATUS_CODES[order.shipping_status_id],
        "placedOn": when(order.created_on),
        "createdOn": when(order.created_on),
    }
    if order.updated_on is not None:
        state["updatedOn"] = when(order.updated_on)
    return state


def _delivery(order: SandboxOrder, when: Callable[[datetime], str]) -> dict[str, Any]:
    """An order's ``delivery``: its date first, when it has one."""
    if order.delivery_date is None:
        return {"shippingMethodId": 0}
    return {"deliveryDate": when(order.delivery_date), "shippingMethodId": 0}
