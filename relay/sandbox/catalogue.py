"""The fixed data of a sandbox account: order types, order statuses, the names search ``reference`` maps give,
and the parties of an order. Values are those seen in recorded Brightpearl answers; where a
recording showed only some of them (order-status objects other than status 1), the rest follow their shape.
"""

from dataclasses import dataclass
from typing import Any, Literal, get_args

OrderTypeCode = Literal["SO", "PO", "SC", "PC"]  # in the order of their ids, 1 to 4
ORDER_TYPE_IDS: dict[str, int] = {code: type_id for type_id, code in enumerate(get_args(OrderTypeCode), start=1)}
ORDER_TYPE_NAMES = {1: "SALES_ORDER", 2: "PURCHASE_ORDER", 3: "SALES_CREDIT", 4: "PURCHASE_CREDIT"}
SUPPLIER_ORDER_TYPES = frozenset({"PO", "PC"})  # these have parties.supplier instead of parties.customer
STAFF_ID = 4  # the staff id the sandbox acts as: orders' createdById, goods-out notes' createdBy and events

STOCK_STATUS_UNSET = 13
PAYMENT_STATUS_NOT_APPLICABLE = 5
SHIPPING_STATUS_NONE_TRACKED = 1
SHIPPING_STATUS_NOT_SHIPPED = 2
SHIPPING_STATUS_PART_SHIPPED = 3
SHIPPING_STATUS_ALL_SHIPPED = 4
ORDER_STOCK_STATUS_NAMES = {STOCK_STATUS_UNSET: "Unset"}
ORDER_PAYMENT_STATUS_NAMES = {PAYMENT_STATUS_NOT_APPLICABLE: "NOT_APPLICABLE"}
ORDER_SHIPPING_STATUS_NAMES = {
    1: "No stock tracked products on order",
    2: "Stock not shipped",
    3: "Stock part shipped",
    4: "All stock shipped",
}
SHIPPING_STATUS_CODES = {1: "NST", 2: "SNS", 3: "SPS", 4: "ASS"}


@dataclass(frozen=True)
class OrderStatus:
    """One order status, as ``GET /order-service/order-status`` describes it."""

    status_id: int
    name: str
    order_type_code: str
    state: str
    color: str = "#E7E6E4"
    sort_order: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "statusId": self.status_id,
            "name": self.name,
            "orderTypeCode": self.order_type_code,
            "sortOrder": self.sort_order,
            "disabled": False,
            "visible": self.status_id != 1,  # recorded: "Draft / Quote" is not visible
            "color": self.color,
            "remindAfterDays": 10,
            "alertEmails": [],
            "emailContent": "",
            "batchProcess": False,
            "state": self.state,
        }


def default_statuses() -> dict[int, OrderStatus]:
    """The statuses every sandbox account starts with, by id (the ids and names seen in recordings)."""
    statuses = [
        OrderStatus(1, "Draft / Quote", "SO", "draft", "#E7E6E4", 0),
        OrderStatus(2, "New web order", "SO", "new", "#60A0FF", 1),
        OrderStatus(3, "New phone order", "SO", "new", "#60A0FF", 2),
        OrderStatus(4, "Invoiced", "SO", "invoiced", "#3CB371", 3),
        OrderStatus(5, "Cancelled", "SO", "cancelled", "#FF6347", 4),
        OrderStatus(6, "Pending PO", "PO", "new", "#60A0FF", 0),
        OrderStatus(7, "Placed with supplier", "PO", "placed", "#3CB371", 1),
        OrderStatus(10, "Sales credit", "SC", "new", "#60A0FF", 0),
        OrderStatus(12, "Purchase credit", "PC", "new", "#60A0FF", 0),
    ]
    return {status.status_id: status for status in statuses}


# The status an order of each type has when created through the API (recorded: SO 3, PO 6, SC 10, PC 12).
DEFAULT_STATUS_BY_TYPE = {"SO": 3, "PO": 6, "SC": 10, "PC": 12}

CUSTOMER_CONTACT_ID = 200
SUPPLIER_CONTACT_ID = 418

_CUSTOMER_ADDRESS = {
    "addressFullName": "Demo Customer",
    "companyName": "Customer Company Ltd.",
    "addressLine1": "34 Lime St",
    "addressLine2": "Barton",
    "addressLine3": "Sheffield",
    "addressLine4": "South Yorkshire",
    "postalCode": "S1 4RT",
    "country": "United Kingdom",
    "telephone": "01245 845632",
    "mobileTelephone": "",
    "fax": "",
    "email": "demo@test.com",
    "countryId": 222,
    "countryIsoCode": "GB",
    "countryIsoCode3": "GBR",
}
_SUPPLIER_ADDRESS = {
    "addressFullName": "Hori Seller",
    "companyName": "Test Seller Hori",
    "addressLine1": "Some super address",
    "addressLine2": "",
    "addressLine3": "",
    "addressLine4": "",
    "postalCode": "",
    "telephone": "888889",
    "mobileTelephone": "",
    "fax": "",
    "email": "hori@seller.com",
    "countryId": 0,
}
_OWN_ADDRESS = {
    "addressFullName": "Sandbox",
    "companyName": "Sandbox",
    "addressLine1": "",
    "addressLine2": "",
    "addressLine3": "",
    "addressLine4": "",
    "postalCode": "",
    "country": "Costa Rica",
    "telephone": "",
    "mobileTelephone": "",
    "fax": "",
    "email": "",
    "countryId": 282,
    "countryIsoCode": "CR",
    "countryIsoCode3": "CRI",
}


def parties(order_type: str, contact_id: int) -> dict[str, Any]:
    """``parties`` of an order: the customer (or supplier, for PO and PC), delivery and billing."""
    if order_type in SUPPLIER_ORDER_TYPES:
        return {
            "supplier": {"contactId": contact_id, **_SUPPLIER_ADDRESS},
            "delivery": dict(_OWN_ADDRESS),
            "billing": {"contactId": contact_id, **_OWN_ADDRESS},
        }
    return {
        "customer": {"contactId": contact_id, **_CUSTOMER_ADDRESS},
        "delivery": dict(_CUSTOMER_ADDRESS),
        "billing": {"contactId": contact_id, **_CUSTOMER_ADDRESS},
    }
