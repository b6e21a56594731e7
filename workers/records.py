"""Orders, products and contacts: ``created`` from ``createdOn``, ``modified`` from ``updatedOn`` and snapshots.

Each kind of record is followed by two streams. New records come from a ``createdOn`` stream (always set,
unlike ``updatedOn``, which Brightpearl leaves null on new orders). Changed records come from an ``updatedOn``
stream; each is read in full and compared with its snapshot, and ``data.changes`` names every top-level field
that differs (custom fields one by one, ``customFields.{CODE}``: orders and products are read with them). For
orders, a change of ``orderStatus`` is its own event, ``order.modified.order-status``; the other fields of the same
change make an ``order.modified``. Status changes that leave ``updatedOn`` alone are caught by
:mod:`workers.status_sweep`, which reports them through :func:`modified_events` too.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from subscriptions.core.envelope import NewEvent, resource_event
from workers.brightpearl.client import BrightpearlClient
from workers.brightpearl.timestamps import to_ms
from workers.changes import diff, happened_at, stamp_of
from workers.context import PollContext
from workers.cursor import Row, StampCursor
from workers.snapshots import Snapshots
from workers.stream import Derived, Stream, Write, follow

DAY_S = 86_400
RECHECK_MS = 1_000  # changes within one second share an updatedOn: read the newest second again

Changes = dict[str, dict[str, Any]]
# custom fields come only when asked (API.md 6.1, 8.1); with the unset ones as null, a field being unset is a change
WITH_CUSTOM_FIELDS = "customFields,nullCustomFields"


def one_event(changes: Changes) -> list[tuple[str, Changes]]:
    """Any change is one ``modified`` event; no change, none."""
    return [("modified", changes)] if changes else []


def split_order_status(changes: Changes) -> list[tuple[str, Changes]]:
    """An order's status change is ``order.modified.order-status``; its other changes ``order.modified``."""
    parts: list[tuple[str, Changes]] = []
    if "orderStatus" in changes:
        parts.append(("modified.order-status", {"orderStatus": changes["orderStatus"]}))
    rest = {name: change for name, change in changes.items() if name != "orderStatus"}
    if rest:
        parts.append(("modified", rest))
    return parts


def order_snapshot_ttl_s(order: dict[str, Any]) -> int | None:
    """Closed orders' snapshots go after a quiet week; open ones after 90 days without a change."""
    return 7 * DAY_S if order.get("closedOn") else 90 * DAY_S


def order_products(order: dict[str, Any]) -> set[int]:
    """The products on an order's rows: allocating or shipping them moves their stock figures."""
    rows = order.get("orderRows")
    found = set()
    for row in rows.values() if isinstance(rows, dict) else []:
        if isinstance(row, dict) and isinstance(row.get("productId"), int):
            found.add(row["productId"])
    return found


@dataclass(frozen=True)
class RecordKind:
    """How one kind of record is found, read and reported."""

    resource: str  # the account's resource name: orders, products, contacts
    resource_type: str  # what its events' names start with (data.resourceType): order, product, contact
    search_path: str
    get_path: str
    id_column: str  # in the search
    id_field: str  # in the record
    split: Callable[[Changes], list[tuple[str, Changes]]] = one_event
    snapshot_ttl_s: Callable[[dict[str, Any]], int | None] = lambda _: None
    products: Callable[[dict[str, Any]], set[int]] | None = None
    emit: bool = True  # False: followed only to learn which products' stock may have moved
    include_optional: str = ""  # what every GET asks to include (custom fields)

    @property
    def streams(self) -> tuple[Stream, Stream]:
        """The ``createdOn`` stream of new records and the ``updatedOn`` stream of changed ones."""
        return (
            Stream(f"{self.resource}.created", self.search_path, self.id_column, "createdOn"),
            Stream(f"{self.resource}.updated", self.search_path, self.id_column, "updatedOn"),
        )


ORDERS = RecordKind(
    "orders",
    "order",
    "order-service/order-search",
    "order-service/order/",
    "orderId",
    "id",
    split=split_order_status,
    snapshot_ttl_s=order_snapshot_ttl_s,
    products=order_products,
    include_optional=WITH_CUSTOM_FIELDS,
)
PRODUCTS = RecordKind(
    "products",
    "product",
    "product-service/product-search",
    "product-service/product/",
    "productId",
    "id",
    include_optional=WITH_CUSTOM_FIELDS,
)
CONTACTS = RecordKind(
    "contacts", "contact", "contact-service/contact-search", "contact-service/contact/", "contactId", "contactId"
)
KINDS = {kind.resource: kind for kind in (ORDERS, PRODUCTS, CONTACTS)}
# when stock is watched but orders are not, stock follows orders itself, silently, for their allocations
ORDERS_FOR_STOCK = replace(ORDERS, resource="stock.orders", emit=False)


def record_event(
    account: str,
    kind: RecordKind,
    lifecycle: str,
    record: dict[str, Any],
    changes: Changes | None = None,
    *,
    seen_at: datetime,
    silent_status: object = None,
) -> NewEvent:
    """A ``created`` or ``modified`` event; ``created`` ids depend on the record's id alone, ``modified`` ids
    also on its state after the change. The time is Brightpearl's stamp, or ``seen_at`` (when the relay saw the
    change) where there is none. ``silent_status`` is the new status of a change that moved neither ``updatedOn``
    nor ``version``: only it tells this change's id from the last one's, and only then is it part of the id."""
    event_type, record_id = f"{kind.resource_type}.{lifecycle}", record[kind.id_field]
    if lifecycle == "created":
        return resource_event(account, event_type, record_id, record, happened_at(record.get("createdOn")) or seen_at)
    state: dict[str, object] = {"state": stamp_of(record)}
    at = happened_at(record.get("updatedOn"))
    if silent_status is not None:
        state["orderStatus"] = silent_status
        at = seen_at  # updatedOn is the last change's time, not this one's
    return resource_event(
        account, event_type, record_id, record, at or seen_at, state_after=state, more={"changes": changes}
    )


def silent_status_change(old: dict[str, Any], record: dict[str, Any], changes: Changes) -> object:
    """The new ``orderStatus`` of a status change that moved neither ``updatedOn`` nor ``version`` (API.md 8: it
    is unconfirmed that every status change moves them), else ``None``."""
    if "orderStatus" in changes and stamp_of(old) == stamp_of(record):
        return changes["orderStatus"]["after"]
    return None


def modified_events(
    account: str,
    kind: RecordKind,
    old: dict[str, Any] | None,
    record: dict[str, Any],
    *,
    seen_at: datetime,
) -> list[NewEvent]:
    """The events of a change from ``old`` to ``record``; with no ``old`` (a record that existed before the relay
    watched it, and has not changed since), one ``modified`` event whose ``changes`` is null. ``seen_at``: when
    the relay read ``record``, the events' time where Brightpearl gives none."""
    if old is None:
        return [record_event(account, kind, "modified", record, None, seen_at=seen_at)]
    changes = diff(old, record)
    silent = silent_status_change(old, record, changes)
    return [
        record_event(account, kind, lifecycle, record, part, seen_at=seen_at, silent_status=silent)
        for lifecycle, part in kind.split(changes)
    ]


class RecordPoll:
    """One poll of one kind of record: what its ``createdOn`` and ``updatedOn`` streams make of their rows."""

    def __init__(self, ctx: PollContext, kind: RecordKind) -> None:
        self.ctx = ctx
        self.kind = kind
        self.snapshots = Snapshots(ctx.redis, ctx.account.code, kind.resource)
        self.mark_products = kind.products is not None and "stock" in ctx.account.resources

    async def fetch(self, rows: list[Row], client: BrightpearlClient | None = None) -> dict[int, dict[str, Any]]:
        """The records of ``rows``, read in full (by ``client``; the poll's own unless given), by id."""
        client = client or self.ctx.client
        params = {"includeOptional": self.kind.include_optional} if self.kind.include_optional else None
        found = await client.get_many(self.kind.get_path, [row.id for row in rows], params=params)
        return {int(record[self.kind.id_field]): record for record in found if self.kind.id_field in record}

    def remember(self, record_id: int, record: dict[str, Any], old: dict[str, Any] | None = None) -> list[Write]:
        """Writes keeping ``record`` as its snapshot and, when stock is watched, marking the products on it (and
        on its ``old`` state) dirty."""
        writes = [self.snapshots.write(record_id, record, self.kind.snapshot_ttl_s(record))]
        if self.mark_products and self.kind.products is not None:
            records = (record, old) if old else (record,)
            writes.append(self.ctx.mark_stock_dirty(set().union(*(self.kind.products(r) for r in records))))
        return writes

    async def derive_created(self, rows: list[Row], _: Mapping[int, dict[str, Any]]) -> Derived:
        """New records: a ``created`` event each, and their first snapshots. A new record that has a snapshot
        already was read through a hint first (which sent its ``created``): what changed since that read is its
        ``modified`` events, else a change between the hint's read and this one would be lost."""
        records = await self.fetch(rows)
        before = await self.snapshots.load(list(records))
        derived = Derived(done=set(records))
        for record_id, record in records.items():
            old = before.get(record_id)
            if old == record:
                continue  # read through a hint, unchanged since: nothing to send or write
            if self.kind.emit:
                derived.events.extend(self.new_record_events(old, record))
            derived.writes.extend(self.remember(record_id, record, old))
        return derived

    def new_record_events(self, old: dict[str, Any] | None, record: dict[str, Any]) -> list[NewEvent]:
        """The events of a record its ``createdOn`` says is new: ``created`` and, when a snapshot of it exists (a
        hint read it first), its changes since. ``created``'s id depends on the record's id alone, so one a hint
        sent already is stored once."""
        seen_at = self.ctx.clock()
        created = record_event(self.ctx.account.code, self.kind, "created", record, seen_at=seen_at)
        if old is None:
            return [created]
        return [created, *modified_events(self.ctx.account.code, self.kind, old, record, seen_at=seen_at)]

    async def derive_hinted(self, created: StampCursor, updated: StampCursor, ids: list[int]) -> Derived:
        """Records a hint named, read by id (``workers.hint_reads``): the events a poll would make of each. With a
        snapshot, its changes; without one, ``created`` when the ``created`` stream's cursor says the record is
        new (else the stream will say so, and find its snapshot), or, for a record older than the cursor, one
        ``modified`` with ``changes`` null, as :meth:`derive_updated` makes of a record it has no snapshot of, when
        the ``updated`` stream's cursor has not passed its ``updatedOn`` (a hint for a record that did not change
        since makes nothing: nor would the poll)."""
        records = await self.fetch([Row(record_id, 0) for record_id in ids])
        before = await self.snapshots.load(list(records))
        derived = Derived(done=set(records))
        for record_id, record in records.items():
            old = before.get(record_id)
            if old == record:
                continue  # unchanged: no event, no write
            if not self.kind.emit:
                pass
            elif old is None and created.is_new(Row(record_id, _created_ms(record))):
                derived.events.extend(self.new_record_events(None, record))
            elif old is None and not _updated_since(updated, record_id, record):
                continue  # no change the updated stream has not passed: the poll would neither send nor keep it
            else:
                seen_at = self.ctx.clock()
                derived.events.extend(modified_events(self.ctx.account.code, self.kind, old, record, seen_at=seen_at))
            derived.writes.extend(self.remember(record_id, record, old))
        return derived

    async def derive_updated(
        self, created: StampCursor, updated: StampCursor, rows: list[Row], _: Mapping[int, dict[str, Any]]
    ) -> Derived:
        """Changed records: the events of each change from its snapshot, and the new snapshots. ``created`` is
        the created stream's cursor as this poll left it, ``updated`` the updated stream's as this poll found it."""
        records = await self.fetch(rows)
        before = await self.snapshots.load(list(records))
        stamps = {row.id: row for row in rows}
        derived = Derived()
        for record_id, record in records.items():
            old = before.get(record_id)
            if old is None and created.is_new(Row(record_id, _created_ms(record))):
                continue  # the created stream has not reached it yet: it will, and snapshot it
            read_again = not updated.is_new(stamps[record_id])  # only to catch a second change in one second
            if read_again and old == record:
                derived.done.add(record_id)  # unchanged: nothing to write, and its products' stock did not move
                continue
            if old is None and read_again:
                pass  # read again only to catch a second change in one second: no change known, just remember it
            elif self.kind.emit:
                events = modified_events(self.ctx.account.code, self.kind, old, record, seen_at=self.ctx.clock())
                derived.events.extend(events)
            derived.writes.extend(self.remember(record_id, record, old))
            derived.done.add(record_id)
        return derived


async def poll_records(ctx: PollContext, kind: RecordKind) -> None:
    """One poll of a kind of record: new ones first, then changed ones."""
    created, updated = kind.streams
    poll = RecordPoll(ctx, kind)
    created_from, updated_from = await ctx.cursor(created), await ctx.cursor(updated)
    created_now = await follow(
        ctx.client,
        created,
        created_from,
        overlap_ms=ctx.overlap_ms,
        derive=poll.derive_created,
        commit=ctx.commit_for(created),
    )
    await follow(
        ctx.client,
        updated,
        updated_from,
        overlap_ms=ctx.overlap_ms,
        derive=partial(poll.derive_updated, created_now, updated_from),
        commit=ctx.commit_for(updated),
        recheck_ms=RECHECK_MS,
    )


def _updated_since(updated: StampCursor, record_id: int, record: dict[str, Any]) -> bool:
    """Whether the ``updatedOn`` stream has yet to pass the record's ``updatedOn`` (never updated: no)."""
    at = happened_at(record.get("updatedOn"))
    return at is not None and updated.is_new(Row(record_id, to_ms(at)))


def _created_ms(record: dict[str, Any]) -> int:
    at = happened_at(record.get("createdOn"))
    return to_ms(at) if at else 0
