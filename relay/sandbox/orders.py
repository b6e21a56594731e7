"""Sandbox orders: what one order holds, and how Brightpearl renders it in a GET and in an ``order-search`` row.

Times are kept as aware UTC datetimes with second precision (Brightpearl's are ``.000``) and rendered in the
account's offset only on the way out. A new order has no ``updatedOn``: a GET omits the key (Brightpearl omits
null fields) and a search row has ``null``, as recorded.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.sandbox import catalogue
from relay.sandbox.search import Column, DataType, SearchTable
from workers.brightpearl.timestamps import format_in_offset

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

CREATED_BY_ID = 4  # the staff id recorded on orders created through the API
PURCHASE_DELIVERY_DAYS = 7  # recorded: a new PO's deliveryDate is a week after it was made


def whole_second(value: datetime) -> datetime:
    """``value`` in UTC without its fraction of a second, as Brightpearl stores times."""
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass
class SandboxOrder:
    """One order of any type (SO, PO, SC, PC) and the little of it that changes."""

    id: int
    order_type: str
    status_id: int
    contact_id: int
    created_on: datetime
    row_id: int
    reference: str = ""
    updated_on: datetime | None = None
    version: int = 1
    warehouse_id: int = 2
    parent_order_id: int = 0

    @property
    def tax_date(self) -> datetime:
        # Recorded search rows put taxDate at midnight UTC of the day the order was made.
        return self.created_on.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    @property
    def delivery_date(self) -> datetime | None:
        if self.order_type != "PO":
            return None
        return self.created_on + timedelta(days=PURCHASE_DELIVERY_DAYS, seconds=1)

    def change_status(self, status_id: int, now: datetime) -> None:
        """A status change: a new version, ``updatedOn`` now."""
        self.status_id = status_id
        self.version += 1
        self.updated_on = whole_second(now)


def search_row(order: SandboxOrder) -> dict[str, Any]:
    """The order as an ``order-search`` row, by column name; times stay datetimes until rendered."""
    return {
        "orderId": order.id,
        "orderTypeId": catalogue.ORDER_TYPE_IDS[order.order_type],
        "contactId": order.contact_id,
        "orderStatusId": order.status_id,
        "orderStockStatusId": catalogue.STOCK_STATUS_UNSET,
        "createdOn": order.created_on,
        "createdById": CREATED_BY_ID,
        "customerRef": order.reference,
        "orderPaymentStatusId": catalogue.PAYMENT_STATUS_NOT_APPLICABLE,
        "updatedOn": order.updated_on,
        "parentOrderId": order.parent_order_id,
        "orderShippingStatusId": catalogue.SHIPPING_STATUS_NONE_TRACKED,
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


def render_order(order: SandboxOrder, status: catalogue.OrderStatus, offset_minutes: int) -> dict[str, Any]:
    """The order as ``GET /order-service/order/{id}`` returns it, key for key in the recorded order."""

    def when(value: datetime) -> str:
        return format_in_offset(value, offset_minutes)

    supplier_side = order.order_type in catalogue.SUPPLIER_ORDER_TYPES
    body: dict[str, Any] = {
        "id": order.id,
        "parentOrderId": order.parent_order_id,
        "orderTypeCode": order.order_type,
        "reference": order.reference,
        "version": order.version,
        "state": {"tax": "READY"},
        "orderStatus": {"orderStatusId": status.status_id, "name": status.name},
        "tax": {"errors": []},
        "orderPaymentStatus": "NOT_APPLICABLE",
        "stockStatusCode": "PON" if supplier_side else "SON",
        "allocationStatusCode": "ANR" if supplier_side else "ANA",
        "shippingStatusCode": catalogue.SHIPPING_STATUS_CODES[catalogue.SHIPPING_STATUS_NONE_TRACKED],
        "placedOn": when(order.created_on),
        "createdOn": when(order.created_on),
    }
    if order.updated_on is not None:
        body["updatedOn"] = when(order.updated_on)
    delivery: dict[str, Any] = {"shippingMethodId": 0}
    if order.delivery_date is not None:
        delivery = {"deliveryDate": when(order.delivery_date), **delivery}
    body |= {
        "createdById": CREATED_BY_ID,
        "priceListId": 1,
        "priceModeCode": "EXC" if supplier_side else "INC",
        "delivery": delivery,
        "invoices": [
            {
                "invoiceReference": "",
                "taxDate": when(order.tax_date),
                "dueDate": when(order.tax_date + timedelta(days=30)),
            }
        ],
        "currency": {
            "accountingCurrencyCode": "USD",
            "orderCurrencyCode": "USD",
            "exchangeRate": "1.000000",
            "fixedExchangeRate": supplier_side,
        },
        "totalValue": dict(catalogue.ORDER_TOTAL_VALUE),
        "assignment": {
            "current": {"staffOwnerContactId": 0, "projectId": 0, "channelId": 0, "leadSourceId": 0, "teamId": 0}
        },
        "parties": catalogue.parties(order.order_type, order.contact_id),
        "orderRows": {str(order.row_id): catalogue.order_row()},
        "warehouseId": order.warehouse_id,
        "acknowledged": 0,
        "costPriceListId": 0 if supplier_side else 1,
        "historicalOrder": False,
    }
    if supplier_side:
        body["isDropship"] = False
    body["orderWeighting"] = 100
    return body
