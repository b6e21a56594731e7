"""One sandbox Brightpearl account: credentials, clock, statuses, orders, products, stock, goods-out notes,
contacts, throttle, faults and request log.

Everything here is in memory and synchronous; the HTTP layers (the Brightpearl gateway and the control API)
act on it, and in-process tests may act on it directly. The account is built in layers, one module each:

account_state.py      what it holds (:class:`~relay.sandbox.account_state.AccountState`), its clock and counters
account_products.py   products and their stock: receipts, corrections, availability
account_orders.py     orders, their rows and allocation (which moves stock)
account_goods_out.py  goods-out notes; shipping one logs movements, moves stock and changes the order
account_contacts.py   contacts
account_errors.py     what the account refuses (unknown ids, changes its state does not allow)

The account is where changes meet: allocating an order moves stock and changes the order; shipping a note sets
its stages, logs goods movements, moves stock and changes the order. The pieces themselves (products, stock,
notes, contacts, orders) and how Brightpearl renders them live in their own modules.
"""

from relay.sandbox.account_contacts import AccountContacts
from relay.sandbox.account_goods_out import AccountGoodsOut


class SandboxAccount(AccountGoodsOut, AccountContacts):
    """A Brightpearl account as the sandbox serves it at ``/public-api/{code}/``: its data
    (:class:`~relay.sandbox.account_state.AccountState`'s fields, which are its constructor's arguments) and what
    it does with each resource."""
