"""What one sandbox account holds: credentials (a private app's and an OAuth app's), clock, statuses, warehouses,
throttle, faults, request log, and its orders, products, stock, goods-out notes and contacts, with the counters
that number new ones.

:class:`AccountState` is the data; what the account does with each resource is added by the classes built on
it (:mod:`relay.sandbox.account_products`, :mod:`~relay.sandbox.account_orders`,
:mod:`~relay.sandbox.account_goods_out`, :mod:`~relay.sandbox.account_contacts`), which
:class:`~relay.sandbox.account.SandboxAccount` puts together. The account's clock is the account's idea of now:
real time by default, with a skew to test a Brightpearl whose clock differs from ours.
"""

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from relay.sandbox import catalogue
from relay.sandbox.account_errors import UnknownStatus, UnknownWarehouse
from relay.sandbox.catalogue import OrderStatus
from relay.sandbox.contacts import SandboxContact
from relay.sandbox.faults import FaultBook
from relay.sandbox.goods_out import GoodsOutNote
from relay.sandbox.hints import Hint, HintSender
from relay.sandbox.oauth import OAuthServer
from relay.sandbox.orders import SandboxOrder
from relay.sandbox.products import SandboxProduct
from relay.sandbox.request_log import RequestLog
from relay.sandbox.stock import StockLedger
from relay.sandbox.throttle import RollingWindowThrottle
from relay.sandbox.webhook_events import DEFAULT_REFUSED_EVENTS
from relay.sandbox.webhooks import WebhookBook

DEFAULT_OFFSET_MINUTES = -360  # the recorded account renders times at -06:00
DEFAULT_WAREHOUSE_IDS = (2, 3)  # the recorded account's warehouses
# What product-availability does with a deleted or not stock-tracked product among its ids (API.md 6.1, 8.1,
# UNCONFIRMED): "reject" answers 400 for the whole request, as a production integration observed (R-MCP);
# "ignore" leaves it out, as the documentation says.
BadIds = Literal["reject", "ignore"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(eq=False)
class AccountState:
    """A Brightpearl account's data as the sandbox serves it at ``/public-api/{code}/``."""

    code: str
    app_ref: str = ""  # ``{code}_relay`` unless given
    account_token: str = field(default_factory=new_token)
    staff_token: str = field(default_factory=new_token)
    offset_minutes: int = DEFAULT_OFFSET_MINUTES
    # refuse everything doubtful the way Brightpearl refuses (relay.sandbox.strictness), not only what is known
    # to be refused: a relay that passes a strict account sends only what Brightpearl is known to take
    strict: bool = False
    clock: Callable[[], datetime] = utc_now
    clock_skew_s: float = 0.0
    status_moves_updated_on: bool = True  # False: a status change leaves updatedOn and version as they were
    sends_date: bool = True  # every recorded answer has a Date header; False: a proxy stripped it
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
    availability_bad_ids: BadIds = "reject"
    deleted_product_ids: set[int] = field(default_factory=set)
    # native webhooks (API.md 7): the subscriptions, the calls on their way, and two UNCONFIRMED behaviours
    webhooks: WebhookBook = field(default_factory=WebhookBook)
    hints: HintSender = field(default_factory=HintSender)
    refused_webhook_events: tuple[str, ...] = DEFAULT_REFUSED_EVENTS  # subscribing to one exactly: INTC-064
    order_modified_on_create: bool = True  # R-MCP: order.modified fires on creation too
    # the account's OAuth instance app, its codes and tokens, and its own throttle (API.md 2.1)
    oauth: OAuthServer = field(default_factory=OAuthServer)

    def __post_init__(self) -> None:
        self.app_ref = self.app_ref or f"{self.code}_relay"
        self._next_order_id = self.first_order_id
        self._next_row_id = 1
        self._next_product_id = self.first_product_id
        self._next_contact_id = self.first_contact_id
        self._next_address_id = 1
        self._next_goods_note_id = 1  # goods-in, goods-out and stock-correction notes share one numbering
        self._event_version = 0

    def _hint(self, event: str, ids: Iterable[int]) -> None:
        """Fire ``event`` on ``ids`` to every webhook that hears it (unless the account refuses the event);
        queued, never waited for."""
        if event in self.refused_webhook_events:
            return
        hooks = self.webhooks.covering(event)
        if not hooks:
            return
        named = tuple(sorted(set(ids)))
        if not named:
            return
        when = self.now()
        for hook in hooks:
            self.hints.enqueue(Hint(hook, self.code, event, named, when))

    def now(self) -> datetime:
        """The account's current time: its clock plus its skew."""
        return self.clock() + timedelta(seconds=self.clock_skew_s)

    def status(self, status_id: int) -> OrderStatus:
        """The status with this id; :class:`UnknownStatus` if there is none."""
        try:
            return self.statuses[status_id]
        except KeyError:
            raise UnknownStatus(f"order status {status_id} does not exist in account {self.code}") from None

    def warehouse(self, warehouse_id: int) -> int:
        """``warehouse_id`` if the account has it; :class:`UnknownWarehouse` if not."""
        if warehouse_id not in self.warehouse_ids:
            known = ", ".join(map(str, self.warehouse_ids))
            raise UnknownWarehouse(f"warehouse {warehouse_id} does not exist in account {self.code} ({known} do)")
        return warehouse_id

    def _new_goods_note_id(self) -> int:
        self._next_goods_note_id += 1
        return self._next_goods_note_id - 1

    def describe(self, base_url: str) -> dict[str, Any]:
        """The account as the control API lists it; ``base_url`` is where its Brightpearl API answers."""
        return {
            "code": self.code,
            "base_url": base_url,
            "app_ref": self.app_ref,
            "account_token": self.account_token,
            "staff_token": self.staff_token,
            "oauth": self.oauth.app.describe(),
            "offset_minutes": self.offset_minutes,
            "strict": self.strict,
            "clock_skew_s": self.clock_skew_s,
            "availability_bad_ids": self.availability_bad_ids,
        }
