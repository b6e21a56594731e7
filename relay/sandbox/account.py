"""One sandbox Brightpearl account: its credentials, clock, orders, statuses, throttle, faults and request log.

Everything here is in memory and synchronous; the HTTP layers (the Brightpearl gateway and the control API)
act on it, and in-process tests may act on it directly. The account's clock is the account's idea of now: real
time by default, with a skew to test a Brightpearl whose clock differs from ours.
"""

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.sandbox import catalogue
from relay.sandbox.catalogue import OrderStatus
from relay.sandbox.faults import FaultBook
from relay.sandbox.orders import SandboxOrder, whole_second
from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.errors import InvalidInput, NotFound

DEFAULT_OFFSET_MINUTES = -360  # the recorded account renders times at -06:00


class UnknownOrder(NotFound):
    """An order id the account does not have."""


class UnknownStatus(InvalidInput):
    """An order-status id the account does not have."""


class UnknownOrderType(InvalidInput):
    """An order type other than SO, PO, SC and PC."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class RequestLog:
    """The Brightpearl requests an account answered, for tests and benchmarks that count them."""

    total: int = 0
    throttled: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)

    def record(self, path: str, route: str | None) -> None:
        self.total += 1
        self.by_path[path] += 1
        self.by_route[route or "(no such resource)"] += 1

    def describe(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_route": dict(self.by_route),
            "throttled": self.throttled,
        }

    def reset(self) -> None:
        self.total = self.throttled = 0
        self.by_path.clear()
        self.by_route.clear()


@dataclass(eq=False)
class SandboxAccount:
    """A Brightpearl account as the sandbox serves it at ``/public-api/{code}/``."""

    code: str
    app_ref: str = ""  # ``{code}_relay`` unless given
    account_token: str = field(default_factory=new_token)
    staff_token: str = field(default_factory=new_token)
    offset_minutes: int = DEFAULT_OFFSET_MINUTES
    clock: Callable[[], datetime] = utc_now
    clock_skew_s: float = 0.0
    monotonic_ms: Callable[[], int] = monotonic_ms  # the throttle's and the faults' clock
    first_order_id: int = 1
    statuses: dict[int, OrderStatus] = field(default_factory=catalogue.default_statuses)
    throttle: RollingWindowThrottle = field(default_factory=RollingWindowThrottle)
    faults: FaultBook = field(default_factory=FaultBook)
    requests: RequestLog = field(default_factory=RequestLog)
    orders: dict[int, SandboxOrder] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app_ref = self.app_ref or f"{self.code}_relay"
        self._next_order_id = self.first_order_id
        self._next_row_id = 1

    def now(self) -> datetime:
        """The account's current time: its clock plus its skew."""
        return self.clock() + timedelta(seconds=self.clock_skew_s)

    def status(self, status_id: int) -> OrderStatus:
        """The status with this id; :class:`UnknownStatus` if there is none."""
        try:
            return self.statuses[status_id]
        except KeyError:
            raise UnknownStatus(f"order status {status_id} does not exist in account {self.code}") from None

    def order(self, order_id: int) -> SandboxOrder:
        """The order with this id; :class:`UnknownOrder` if there is none."""
        try:
            return self.orders[order_id]
        except KeyError:
            raise UnknownOrder(f"order {order_id} does not exist in account {self.code}") from None

    def find_orders(self, ids: Iterable[int]) -> list[SandboxOrder]:
        """The orders among ``ids`` that exist, in ascending id order; the others are silently left out."""
        return [self.orders[order_id] for order_id in sorted(set(ids)) if order_id in self.orders]

    def order_ids(self) -> list[int]:
        return sorted(self.orders)

    def create_orders(
        self,
        count: int = 1,
        order_type: str = "SO",
        *,
        status_id: int | None = None,
        created_on: datetime | None = None,
        reference: str = "",
        contact_id: int | None = None,
    ) -> list[SandboxOrder]:
        """``count`` new orders sharing one ``createdOn`` second (now, or ``created_on`` for a late arrival)."""
        if order_type not in catalogue.ORDER_TYPE_IDS:
            raise UnknownOrderType(f"order type {order_type!r} is not one of {', '.join(catalogue.ORDER_TYPE_IDS)}")
        status = self.status(status_id if status_id is not None else catalogue.DEFAULT_STATUS_BY_TYPE[order_type])
        if contact_id is None:
            supplier_side = order_type in catalogue.SUPPLIER_ORDER_TYPES
            contact_id = catalogue.SUPPLIER_CONTACT_ID if supplier_side else catalogue.CUSTOMER_CONTACT_ID
        created = whole_second(created_on if created_on is not None else self.now())
        made = []
        for _ in range(count):
            order = SandboxOrder(
                id=self._next_order_id,
                order_type=order_type,
                status_id=status.status_id,
                contact_id=contact_id,
                created_on=created,
                row_id=self._next_row_id,
                reference=reference,
            )
            self.orders[order.id] = order
            self._next_order_id += 1
            self._next_row_id += 1
            made.append(order)
        return made

    def set_status(self, order_id: int, status_id: int) -> SandboxOrder:
        """Change an order's status: a new version, ``updatedOn`` now."""
        order = self.order(order_id)
        order.change_status(self.status(status_id).status_id, self.now())
        return order

    def describe(self, base_url: str) -> dict[str, Any]:
        """The account as the control API lists it; ``base_url`` is where its Brightpearl API answers."""
        return {
            "code": self.code,
            "base_url": base_url,
            "app_ref": self.app_ref,
            "account_token": self.account_token,
            "staff_token": self.staff_token,
            "offset_minutes": self.offset_minutes,
            "clock_skew_s": self.clock_skew_s,
        }
