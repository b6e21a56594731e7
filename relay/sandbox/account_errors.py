"""What a sandbox account refuses: ids it does not have, values it cannot take, changes its state forbids.

Each refusal subclasses one of the relay's error kinds (``NotFound``, ``InvalidInput``, ``Conflict`` of
``subscriptions.core.errors``), which the control API maps to 404, 422 and 409; the Brightpearl resources
translate the few they meet into Brightpearl's own error bodies.
"""

from subscriptions.core.errors import Conflict, InvalidInput, NotFound


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
