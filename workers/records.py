"""Orders, products and contacts: ``created`` from ``createdOn``, ``modified`` from ``updatedOn`` and snapshots.

Each kind of record is followed by two streams. New records come from a ``createdOn`` stream (always set,
unlike ``updatedOn``, which Brightpearl leaves null on new orders). Changed records come from an ``updatedOn``
stream; each is read in full and compared with its snapshot, and ``data.changes`` names every top-level field
that differs. For orders, a change of ``orderStatus`` is its own event, ``order.modified.order-status``; the
other fields of the same change make an ``order.modified``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from subscriptions.envelope import NewEvent, event_body
from subscriptions.ids import event_id
from workers.brightpearl.timestamps import TimestampError, format_utc, parse_timestamp, to_ms
from workers.changes import diff, stamp_of
from workers.context import PollContext
from workers.cursor import Row
from workers.snapshots import Snapshots
from workers.stream import Derived, Stream, Write, follow

DAY_S = 86_400
RECHECK_MS = 1_000  # changes within one second share an updatedOn: read the newest second again

Changes = dict[str, dict[str, Any]]


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
    resource_type: str  # the event prefix and data.resourceType: order, product, contact
    search_path: str
    get_path: str
    id_column: str  # in the search
    id_field: str  # in the record
    split: Callable[[Changes], list[tuple[str, Changes]]] = one_event
    snapshot_ttl_s: Callable[[dict[str, Any]], int | None] = lambda _: None
    products: Callable[[dict[str, Any]], set[int]] | None = None
    emit: bool = True  # False: followed only to learn which products' stock may have moved

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
)
PRODUCTS = RecordKind(
    "products", "product", "product-service/product-search", "product-service/product/", "productId", "id"
)
CONTACTS = RecordKind(
    "contacts", "contact", "contact-service/contact-search", "contact-service/contact/", "contactId", "contactId"
)
KINDS = {kind.resource: kind for kind in (ORDERS, PRODUCTS, CONTACTS)}
# when stock is watched but orders are not, stock follows orders itself, silently, for their allocations
ORDERS_FOR_STOCK = RecordKind(
    "stock.orders",
    "order",
    ORDERS.search_path,
    ORDERS.get_path,
    "orderId",
    "id",
    snapshot_ttl_s=order_snapshot_ttl_s,
    products=order_products,
    emit=False,
)


def _utc(record: dict[str, Any], name: str) -> str:
    try:
        return format_utc(parse_timestamp(str(record[name])))
    except (KeyError, TimestampError):
        return ""


def record_event(
    account: str, kind: RecordKind, lifecycle: str, record: dict[str, Any], changes: Changes | None = None
) -> NewEvent:
    """A ``created`` or ``modified`` event; ``created`` ids depend on the record's id alone, ``modified`` ids
    also on its state after the change."""
    record_id = record[kind.id_field]
    full = f"{kind.resource_type}.{lifecycle}"
    data: dict[str, Any] = {
        "accountCode": account,
        "resourceType": kind.resource_type,
        "id": record_id,
        "lifecycleEvent": lifecycle.split(".", 1)[0],
        "fullEvent": full,
        "resource": record,
    }
    if lifecycle == "created":
        when, identity = _utc(record, "createdOn"), event_id(account, full, record_id)
    else:
        data["changes"] = changes
        when, identity = _utc(record, "updatedOn"), event_id(account, full, record_id, {"state": stamp_of(record)})
    return NewEvent(
        id=identity,
        type=full,
        account=account,
        resource_id=record_id,
        timestamp=when,
        body=event_body(full, when, data),
    )


def modified_events(
    account: str, kind: RecordKind, old: dict[str, Any] | None, record: dict[str, Any]
) -> list[NewEvent]:
    """The events of a change from ``old`` to ``record``; with no ``old`` (a record that existed before the relay
    watched it, and has not changed since), one ``modified`` event whose ``changes`` is null."""
    if old is None:
        return [record_event(account, kind, "modified", record, None)]
    return [
        record_event(account, kind, lifecycle, record, changes) for lifecycle, changes in kind.split(diff(old, record))
    ]


async def poll_records(ctx: PollContext, kind: RecordKind) -> None:
    """One poll of a kind of record: new ones first, then changed ones."""
    created, updated = kind.streams
    snapshots = Snapshots(ctx.redis, ctx.account.code, kind.resource)
    mark_products = kind.products is not None and "stock" in ctx.account.resources
    created_cursor = await ctx.cursor(created)

    async def fetch(rows: list[Row]) -> dict[int, dict[str, Any]]:
        found = await ctx.client.get_many(kind.get_path, [row.id for row in rows])
        return {int(record[kind.id_field]): record for record in found if kind.id_field in record}

    def dirty(*records: dict[str, Any]) -> list[Write]:
        if not mark_products or kind.products is None:
            return []
        return [ctx.mark_stock_dirty(set().union(*(kind.products(r) for r in records)))]

    async def derive_created(rows: list[Row], _: Mapping[int, dict[str, Any]]) -> Derived:
        records = await fetch(rows)
        events, writes = [], []
        for record_id, record in records.items():
            if kind.emit:
                events.append(record_event(ctx.account.code, kind, "created", record))
            writes.append(snapshots.write(record_id, record, kind.snapshot_ttl_s(record)))
            writes += dirty(record)
        return Derived(events, writes, set(records))

    async def derive_updated(rows: list[Row], _: Mapping[int, dict[str, Any]]) -> Derived:
        records = await fetch(rows)
        before = await snapshots.load(list(records))
        stamps = {row.id: row for row in rows}
        derived = Derived()
        for record_id, record in records.items():
            old = before.get(record_id)
            if old is None and created_cursor.is_new(Row(record_id, _created_ms(record))):
                continue  # the created stream has not reached it yet: it will, and snapshot it
            if old is None and not updated_cursor.is_new(stamps[record_id]):
                pass  # read again only to catch a second change in one second: no change known, just remember it
            elif kind.emit:
                derived.events.extend(modified_events(ctx.account.code, kind, old, record))
            derived.writes.append(snapshots.write(record_id, record, kind.snapshot_ttl_s(record)))
            derived.writes.extend(dirty(record, *([old] if old else [])))
            derived.done.add(record_id)
        return derived

    updated_cursor = await ctx.cursor(updated)
    created_cursor = await follow(
        ctx.client,
        created,
        created_cursor,
        overlap_ms=ctx.overlap_ms,
        derive=derive_created,
        commit=ctx.commit_for(created),
    )
    await follow(
        ctx.client,
        updated,
        updated_cursor,
        overlap_ms=ctx.overlap_ms,
        derive=derive_updated,
        commit=ctx.commit_for(updated),
        recheck_ms=RECHECK_MS,
    )


def _created_ms(record: dict[str, Any]) -> int:
    try:
        return to_ms(parse_timestamp(str(record["createdOn"])))
    except (KeyError, TimestampError):
        return 0
