"""A sandbox account's products and their stock: looking products up, making and changing them, receiving and
correcting stock (each a goods note of its own, with its goods movement), and ``product-availability``."""

from collections.abc import Iterable, Mapping
from typing import Any

from relay.sandbox.account_errors import NotStockTracked, UnknownProduct
from relay.sandbox.account_state import AccountState
from relay.sandbox.orders import CustomValue, whole_second
from relay.sandbox.products import SandboxProduct, new_products
from relay.sandbox.stock import GoodsMovement
from subscriptions.core.errors import InvalidInput

ON_HAND_MODIFIED = "product.modified.on-hand-modified"  # any change of a product's stock figures


class AccountProducts(AccountState):
    """What an account does with its products and stock."""

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
        self._hint("product.created", (product.id for product in made))
        return made

    def change_product(
        self,
        product_id: int,
        *,
        name: str | None = None,
        sku: str | None = None,
        barcode: str | None = None,
        status: str | None = None,
        custom_fields: Mapping[str, CustomValue] | None = None,
    ) -> SandboxProduct:
        """Change a product's fields and custom fields (null unsets one): ``updatedOn`` now, a new ``version``."""
        product = self.product(product_id)
        product.change(self.now(), name=name, sku=sku, barcode=barcode, status=status, custom_fields=custom_fields)
        self._hint("product.modified", [product_id])
        return product

    def _tracked(self, product_id: int, warehouse_id: int) -> SandboxProduct:
        product = self.product(product_id)
        self.warehouse(warehouse_id)
        if not product.stock_tracked:
            raise NotStockTracked(f"product {product_id} is not stock-tracked")
        return product

    def receive_stock(self, product_id: int, warehouse_id: int, quantity: int) -> GoodsMovement:
        """Goods in (a goods-in note of its own): on hand rises; a ``GI`` movement."""
        self._tracked(product_id, warehouse_id)
        movement = self.stock.receive(
            product_id, warehouse_id, quantity, self._new_goods_note_id(), whole_second(self.now())
        )
        self._hint(ON_HAND_MODIFIED, [product_id])
        return movement

    def correct_stock(self, product_id: int, warehouse_id: int, quantity: int) -> GoodsMovement:
        """A stock correction by a signed quantity: on hand moves; an ``SC`` movement."""
        self._tracked(product_id, warehouse_id)
        movement = self.stock.correct(
            product_id, warehouse_id, quantity, self._new_goods_note_id(), whole_second(self.now())
        )
        self._hint(ON_HAND_MODIFIED, [product_id])
        return movement

    def delete_product(self, product_id: int) -> None:
        """Delete a product: gone from product GET and search and from availability; an availability request
        naming it is refused when the account rejects bad ids."""
        self.product(product_id)
        del self.products[product_id]
        self.deleted_product_ids.add(product_id)
        self._hint("product.destroyed", [product_id])

    def bad_availability_ids(self, product_ids: Iterable[int]) -> list[int]:
        """The ids among ``product_ids`` for which an availability request answers 400 when the account rejects
        bad ids: deleted products and products whose stock is not tracked. An id the account never had is not
        among them (orders made without rows name product 1007, which the sandbox does not hold)."""
        if self.availability_bad_ids == "ignore":
            return []
        return sorted(
            pid
            for pid in set(product_ids)
            if pid in self.deleted_product_ids or (pid in self.products and not self.products[pid].stock_tracked)
        )

    def availability(self, product_ids: Iterable[int]) -> dict[str, Any]:
        """``product-availability`` for the stock-tracked products among ``product_ids``, in the order given."""
        tracked = [pid for pid in product_ids if pid in self.products and self.products[pid].stock_tracked]
        return self.stock.availability(tracked)
