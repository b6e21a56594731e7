"""A sandbox account's orders: looking them up, making them (with rows of the account's products), changing
their status, reference, delivery date and rows, and allocating them, which moves stock from on hand to
allocated."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from relay.sandbox import catalogue
from relay.sandbox.account_errors import OrderStateConflict, UnknownOrder, UnknownOrderType, UnknownProduct
from relay.sandbox.account_products import ON_HAND_MODIFIED, AccountProducts
from relay.sandbox.orders import (
    ORDER_CUSTOM_FIELDS,
    CustomValue,
    OrderRow,
    SandboxOrder,
    check_custom_fields,
    recorded_row,
    whole_second,
)
from relay.sandbox.products import SandboxProduct
from subscriptions.core.errors import InvalidInput


class AccountOrders(AccountProducts):
    """What an account does with its orders; their rows name its products and allocating them moves its stock."""

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
        ids = [order.id for order in made]
        self._hint("order.created", ids)
        if self.order_modified_on_create:
            self._hint("order.modified", ids)
        if allocate:
            self._hint(ON_HAND_MODIFIED, (row.product_id for order in made for row in order.stock_rows))
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
        """Change an order's status: a new version, ``updatedOn`` now (unless the account's status changes do not
        move them)."""
        order = self.order(order_id)
        order.change_status(self.status(status_id).status_id, self.now(), moves_updated_on=self.status_moves_updated_on)
        # fired whether or not the change moved updatedOn: the hint is how a poller hears of such a change
        self._hint("order.modified.order-status", [order_id])
        return order

    def change_order(
        self,
        order_id: int,
        *,
        reference: str | None = None,
        delivery_date: datetime | None = None,
        add_rows: Sequence[tuple[int, int]] = (),
        custom_fields: Mapping[str, CustomValue] | None = None,
    ) -> SandboxOrder:
        """Change an order's reference, delivery date or custom fields (null unsets one), or add rows (allocated
        at once if the order is): one new version. Rows cannot be added once the order has a goods-out note."""
        order = self.order(order_id)
        check_custom_fields(ORDER_CUSTOM_FIELDS, custom_fields or {})
        products = [(self._row_product(product_id), quantity) for product_id, quantity in add_rows]
        if products and order.noted_row_ids:
            raise OrderStateConflict(f"order {order_id} has a goods-out note; its rows can no longer change")
        rows = self._new_rows(products, first_sequence=10 * (len(order.rows) + 1))
        if order.allocated:
            self._allocate_rows(order, rows)
        order.rows.extend(rows)
        order.change(self.now(), reference=reference, delivery_date=delivery_date, custom_fields=custom_fields)
        self._hint("order.modified", [order_id])
        if order.allocated:
            self._hint(ON_HAND_MODIFIED, (row.product_id for row in rows if row.stock_tracked))
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
        self._hint("order.modified", [order_id])
        self._hint(ON_HAND_MODIFIED, (row.product_id for row in order.rows if row.stock_tracked))
        return order
