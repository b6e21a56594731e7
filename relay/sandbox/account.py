"""One sandbox Brightpearl account: credentials, clock, statuses, orders, products, stock, goods-out notes,
contacts, throttle, faults and request log.

Everything here is in memory and synchronous; the HTTP layers (the Brightpearl gateway and the control API)
act on it, and in-process tests may act on it directly. The account's clock is the account's idea of now: real
time by default, with a skew to test a Brightpearl whose clock differs from ours.

The account is where changes meet: allocating an order moves stock and changes the order; shipping a note sets
its stages, logs goods movements, moves stock and changes the order. The pieces themselves (products, stock,
notes, contacts, orders) live in their own modules.
"""

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.sandbox import catalogue
from relay.sandbox.catalogue import OrderStatus
from relay.sandbox.contacts import SandboxContact, new_contact
from relay.sandbox.faults import FaultBook
from relay.sandbox.goods_out import GoodsOutNote, NoteLine, Stage
from relay.sandbox.orders import OrderRow, SandboxOrder, recorded_row, whole_second
from relay.sandbox.products import SandboxProduct, new_products
from relay.sandbox.stock import GoodsMovement, StockLedger
from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.errors import Conflict, InvalidInput, NotFound

DEFAULT_OFFSET_MINUTES = -360  # the recorded account renders times at -06:00
DEFAULT_WAREHOUSE_IDS = (2, 3)  # the recorded account's warehouses


class UnknownOrder(NotFound):
    """An order id the account does not have."""


class UnknownStatus(InvalidInput):
    """An order-status id the account does not have."""


class UnknownOrderType(InvalidInput):
    """An order type other than SO, PO, SC and PC."""


class UnknownProduct(NotFound):
    """A product id the account does not have."""


class UnknownContact(NotFound):
    """A contact id the account does not have."""


class UnknownGoodsOutNote(NotFound):
    """A goods-out note id the account does not have."""


class UnknownWarehouse(InvalidInput):
    """A warehouse id the account does not have."""


class NotStockTracked(Conflict):
    """A stock change for a product whose stock is not tracked."""


class OrderStateConflict(Conflict):
    """A change the order's type or state does not allow: allocating twice, a note for a purchase order, ..."""


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
    first_product_id: int = 10_001  # well clear of product 1007, which orders made without rows name
    first_contact_id: int = 1_001
    warehouse_ids: tuple[int, ...] = DEFAULT_WAREHOUSE_IDS
    statuses: dict[int, OrderStatus] = field(default_factory=catalogue.default_statuses)
    throttle: RollingWindowThrottle = field(default_factory=RollingWindowThrottle)
    faults: FaultBook = field(default_factory=FaultBook)
    requests: RequestLog = field(default_factory=RequestLog)
    orders: dict[int, SandboxOrder] = field(default_factory=dict)
    products: dict[int, SandboxProduct] = field(default_factory=dict)
    stock: StockLedger = field(default_factory=StockLedger)
    goods_out_notes: dict[int, GoodsOutNote] = field(default_factory=dict)
    contacts: dict[int, SandboxContact] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app_ref = self.app_ref or f"{self.code}_relay"
        self._next_order_id = self.first_order_id
        self._next_row_id = 1
        self._next_product_id = self.first_product_id
        self._next_contact_id = self.first_contact_id
        self._next_address_id = 1
        self._next_goods_note_id = 1  # goods-in, goods-out and stock-correction notes share one numbering
        self._event_version = 0

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

    def warehouse(self, warehouse_id: int) -> int:
        """``warehouse_id`` if the account has it; :class:`UnknownWarehouse` if not."""
        if warehouse_id not in self.warehouse_ids:
            known = ", ".join(map(str, self.warehouse_ids))
            raise UnknownWarehouse(f"warehouse {warehouse_id} does not exist in account {self.code} ({known} do)")
        return warehouse_id

    def create_orders(
        self,
        count: int = 1,
        order_type: str = "SO",
        *,
        status_id: int | None = None,
        created_on: datetime | None = None,
        reference: str = "",
        contact_id: int | None = None,
        rows: Sequence[tuple[int, int]] = (),
        warehouse_id: int | None = None,
        allocate: bool = False,
    ) -> list[SandboxOrder]:
        """``count`` new orders sharing one ``createdOn`` second (now, or ``created_on`` for a late arrival).

        ``rows`` are ``(product id, quantity)`` pairs of the account's products; without them an order has the
        recorded row. ``allocate`` allocates each sales order as it is made (no separate version)."""
        if order_type not in catalogue.ORDER_TYPE_IDS:
            raise UnknownOrderType(f"order type {order_type!r} is not one of {', '.join(catalogue.ORDER_TYPE_IDS)}")
        status = self.status(status_id if status_id is not None else catalogue.DEFAULT_STATUS_BY_TYPE[order_type])
        if contact_id is None:
            supplier_side = order_type in catalogue.SUPPLIER_ORDER_TYPES
            contact_id = catalogue.SUPPLIER_CONTACT_ID if supplier_side else catalogue.CUSTOMER_CONTACT_ID
        warehouse = self.warehouse(warehouse_id if warehouse_id is not None else self.warehouse_ids[0])
        products = [(self._row_product(product_id), quantity) for product_id, quantity in rows]
        if allocate and order_type != "SO":
            raise OrderStateConflict(f"only sales orders are allocated, not {order_type}")
        created = whole_second(created_on if created_on is not None else self.now())
        made = []
        for _ in range(count):
            order = SandboxOrder(
                id=self._next_order_id,
                order_type=order_type,
                status_id=status.status_id,
                contact_id=contact_id,
                created_on=created,
                rows=self._new_rows(products) if products else [recorded_row(self._new_row_id())],
                reference=reference,
                warehouse_id=warehouse,
            )
            self.orders[order.id] = order
            self._next_order_id += 1
            if allocate:
                self._allocate_rows(order, order.rows)
                order.allocated = True
            made.append(order)
        return made

    def _new_row_id(self) -> int:
        self._next_row_id += 1
        return self._next_row_id - 1

    def _row_product(self, product_id: int) -> SandboxProduct:
        try:
            return self.product(product_id)
        except UnknownProduct as error:
            raise InvalidInput(f"an order row names product {product_id}, which does not exist") from error

    def _new_rows(self, products: Iterable[tuple[SandboxProduct, int]], first_sequence: int = 10) -> list[OrderRow]:
        return [
            OrderRow(self._new_row_id(), p.id, p.sku, p.name, quantity, p.stock_tracked, first_sequence + 10 * i)
            for i, (p, quantity) in enumerate(products)
        ]

    def set_status(self, order_id: int, status_id: int) -> SandboxOrder:
        """Change an order's status: a new version, ``updatedOn`` now."""
        order = self.order(order_id)
        order.change_status(self.status(status_id).status_id, self.now())
        return order

    def change_order(
        self,
        order_id: int,
        *,
        reference: str | None = None,
        delivery_date: datetime | None = None,
        add_rows: Sequence[tuple[int, int]] = (),
    ) -> SandboxOrder:
        """Change an order's reference or delivery date, or add rows (allocated at once if the order is): one new
        version. Rows cannot be added once the order has a goods-out note."""
        order = self.order(order_id)
        products = [(self._row_product(product_id), quantity) for product_id, quantity in add_rows]
        if products and order.noted_row_ids:
            raise OrderStateConflict(f"order {order_id} has a goods-out note; its rows can no longer change")
        rows = self._new_rows(products, first_sequence=10 * (len(order.rows) + 1))
        if order.allocated:
            self._allocate_rows(order, rows)
        order.rows.extend(rows)
        order.change(self.now(), reference=reference, delivery_date=delivery_date)
        return order

    def _allocate_rows(self, order: SandboxOrder, rows: Iterable[OrderRow]) -> None:
        for row in rows:
            if row.stock_tracked:
                self.stock.allocate(row.product_id, order.warehouse_id, row.quantity)

    def allocate_order(self, order_id: int) -> SandboxOrder:
        """Allocate all of a sales order's stock-tracked rows: stock moves from on hand to allocated, with no goods
        movement; the order becomes ``AAA`` in a new version."""
        order = self.order(order_id)
        if order.order_type != "SO":
            raise OrderStateConflict(f"order {order_id} is a {order.order_type}; only sales orders are allocated")
        if order.allocated:
            raise OrderStateConflict(f"order {order_id} is already allocated")
        self._allocate_rows(order, order.rows)
        order.mark_allocated(self.now())
        return order

    # Products and stock

    def product(self, product_id: int) -> SandboxProduct:
        """The product with this id; :class:`UnknownProduct` if there is none."""
        try:
            return self.products[product_id]
        except KeyError:
            raise UnknownProduct(f"product {product_id} does not exist in account {self.code}") from None

    def find_products(self, ids: Iterable[int]) -> list[SandboxProduct]:
        """The products among ``ids`` that exist, in ascending id order."""
        return [self.products[product_id] for product_id in sorted(set(ids)) if product_id in self.products]

    def create_products(
        self,
        count: int = 1,
        *,
        stock_tracked: bool = True,
        name: str | None = None,
        sku_prefix: str = "SKU-",
        stock: Mapping[int, int] | None = None,
    ) -> list[SandboxProduct]:
        """``count`` new products made now, named ``name`` (else "Product {id}"), SKU ``{sku_prefix}{id}``;
        ``stock`` (warehouse id to quantity) is on hand from the start, without goods movements, as a
        catalogue that existed before. Fast enough for 100,000 at once."""
        existing = {self.warehouse(warehouse_id): quantity for warehouse_id, quantity in (stock or {}).items()}
        if existing and not stock_tracked:
            raise InvalidInput("a product whose stock is not tracked cannot have stock")
        if any(quantity < 0 for quantity in existing.values()):
            raise InvalidInput("existing stock cannot be negative")
        first = self._next_product_id
        made = new_products(range(first, first + count), sku_prefix, name, self.now(), stock_tracked=stock_tracked)
        self.products.update((product.id, product) for product in made)
        self._next_product_id += count
        if existing:
            self.stock.stock_existing((product.id for product in made), existing)
        return made

    def change_product(
        self,
        product_id: int,
        *,
        name: str | None = None,
        sku: str | None = None,
        barcode: str | None = None,
        status: str | None = None,
    ) -> SandboxProduct:
        """Change a product's fields: ``updatedOn`` now, a new ``version``."""
        product = self.product(product_id)
        product.change(self.now(), name=name, sku=sku, barcode=barcode, status=status)
        return product

    def _tracked(self, product_id: int, warehouse_id: int) -> SandboxProduct:
        product = self.product(product_id)
        self.warehouse(warehouse_id)
        if not product.stock_tracked:
            raise NotStockTracked(f"product {product_id} is not stock-tracked")
        return product

    def _new_goods_note_id(self) -> int:
        self._next_goods_note_id += 1
        return self._next_goods_note_id - 1

    def receive_stock(self, product_id: int, warehouse_id: int, quantity: int) -> GoodsMovement:
        """Goods in (a goods-in note of its own): on hand rises; a ``GI`` movement."""
        self._tracked(product_id, warehouse_id)
        return self.stock.receive(
            product_id, warehouse_id, quantity, self._new_goods_note_id(), whole_second(self.now())
        )

    def correct_stock(self, product_id: int, warehouse_id: int, quantity: int) -> GoodsMovement:
        """A stock correction by a signed quantity: on hand moves; an ``SC`` movement."""
        self._tracked(product_id, warehouse_id)
        return self.stock.correct(
            product_id, warehouse_id, quantity, self._new_goods_note_id(), whole_second(self.now())
        )

    def availability(self, product_ids: Iterable[int]) -> dict[str, Any]:
        """``product-availability`` for the stock-tracked products among ``product_ids``, in the order given."""
        tracked = [pid for pid in product_ids if pid in self.products and self.products[pid].stock_tracked]
        return self.stock.availability(tracked)

    # Goods-out notes

    def goods_out_note(self, note_id: int) -> GoodsOutNote:
        """The goods-out note with this id; :class:`UnknownGoodsOutNote` if there is none."""
        try:
            return self.goods_out_notes[note_id]
        except KeyError:
            raise UnknownGoodsOutNote(f"goods-out note {note_id} does not exist in account {self.code}") from None

    def _next_event_version(self) -> int:
        self._event_version += 1
        return self._event_version

    def create_goods_out_note(self, order_id: int) -> GoodsOutNote:
        """A goods-out note for a sales order's stock-tracked rows not yet on one, allocating the order first if it
        is not (a new order version then); the note starts with a ``PLA`` event."""
        order = self.order(order_id)
        if order.order_type != "SO":
            raise OrderStateConflict(f"order {order_id} is a {order.order_type}; only sales orders are shipped")
        rows = [row for row in order.stock_rows if row.id not in order.noted_row_ids]
        if not rows:
            raise OrderStateConflict(f"order {order_id} has no stock-tracked rows left to put on a goods-out note")
        if not order.allocated:
            self.allocate_order(order_id)
        now = whole_second(self.now())
        note = GoodsOutNote(
            id=self._new_goods_note_id(),
            order_id=order.id,
            warehouse_id=order.warehouse_id,
            created_on=now,
            # The recorded note's location id is its warehouse's; the sandbox keeps one location per warehouse.
            lines=tuple(NoteLine(row.id, row.product_id, row.quantity, order.warehouse_id) for row in rows),
            sequence=1 + sum(1 for other in self.goods_out_notes.values() if other.order_id == order.id),
            last_event_version=self._next_event_version(),
        )
        self.goods_out_notes[note.id] = note
        order.noted_row_ids.update(row.id for row in rows)
        return note

    def set_note_stage(self, note_id: int, stage: Stage) -> tuple[GoodsOutNote, list[GoodsMovement]]:
        """Take a note to ``stage``. Shipping (which sets the earlier stages still missing) logs a ``GO`` movement
        per line, takes the goods out of allocated stock and changes the order's shipping status."""
        note = self.goods_out_note(note_id)
        now = whole_second(self.now())
        newly_set = note.set_stage(stage, now, self._next_event_version)
        if Stage.SHIPPED not in newly_set:
            return note, []
        movements = [
            self.stock.ship(line.product_id, note.warehouse_id, line.quantity, note.id, now) for line in note.lines
        ]
        self.order(note.order_id).mark_shipped((line.row_id for line in note.lines), now)
        return note, movements

    # Contacts

    def contact(self, contact_id: int) -> SandboxContact:
        """The contact with this id; :class:`UnknownContact` if there is none."""
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise UnknownContact(f"contact {contact_id} does not exist in account {self.code}") from None

    def create_contacts(
        self,
        count: int = 1,
        *,
        first_name: str | None = None,
        last_name: str = "Customer",
        email: str | None = None,
        company_name: str = "",
        telephone: str = "",
    ) -> list[SandboxContact]:
        """``count`` new customers made now (``updatedOn`` equal to ``createdOn``), each with two addresses."""
        now = self.now()
        made = []
        for _ in range(count):
            contact_id = self._next_contact_id
            contact = new_contact(
                contact_id,
                first_name or f"Contact {contact_id}",
                last_name,
                email or f"contact{contact_id}@example.com",
                self._next_address_id,
                now,
            )
            contact.company_name, contact.telephone = company_name, telephone
            self.contacts[contact_id] = contact
            self._next_contact_id += 1
            self._next_address_id += 2
            made.append(contact)
        return made

    def change_contact(self, contact_id: int, **fields: str | None) -> SandboxContact:
        """Change a contact's ``first_name``, ``last_name``, ``email``, ``company_name`` or ``telephone``;
        ``updatedOn`` now, to the millisecond."""
        contact = self.contact(contact_id)
        contact.change(self.now(), **fields)
        return contact

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
