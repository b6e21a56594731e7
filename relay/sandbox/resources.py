"""The Brightpearl resources the sandbox serves: a route table and one handler per route.

Handlers are plain functions from a :class:`Call` (the account, the query, the path parameters, the body) to an
:class:`~relay.sandbox.envelope.Answer`; refusals are raised as :class:`~relay.sandbox.envelope.ApiError`.
Authentication, throttling, faults and headers are the gateway's business, not theirs. A new searchable
resource adds a :class:`~relay.sandbox.search.SearchTable`, a row function and a route made by
:func:`search_handler`.

Served: orders (search, GET, OPTIONS, POST, status PUT, statuses), products (search, GET), product
availability, goods movements (search), goods-out notes (search, GET), contacts (search, GET) and native
webhooks (:mod:`relay.sandbox.webhook_api`). Containers
follow the recordings: arrays for orders, products and contacts; maps keyed by id for availability and notes.
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from relay.sandbox import catalogue, envelope, goods_out, orders, products
from relay.sandbox.account import SandboxAccount
from relay.sandbox.account_errors import UnknownOrder, UnknownStatus
from relay.sandbox.contacts import CONTACT_SEARCH_TABLE, render_contact
from relay.sandbox.envelope import Answer, ApiError
from relay.sandbox.goods_out import GOODS_OUT_SEARCH_TABLE, render_note
from relay.sandbox.idsets import MAX_EXPANDED_IDS, IdSetError, chunked, parse_id_set
from relay.sandbox.orders import ORDER_SEARCH_TABLE, custom_fields_asked, render_order
from relay.sandbox.products import PRODUCT_SEARCH_TABLE, render_product
from relay.sandbox.search import (
    SearchError,
    SearchTable,
    parse_count,
    parse_query,
    parse_sort,
    run_search,
)
from relay.sandbox.stock import GOODS_MOVEMENT_SEARCH_TABLE
from relay.sandbox.strictness import guarded
from relay.sandbox.webhook_api import delete_webhook, get_webhooks, post_webhook, simulate_webhook

MAX_ORDERS_PER_GET = 200
MAX_PRODUCTS_PER_GET = 200
MAX_AVAILABILITY_IDS = 200  # not recorded: clients use 100-200
MAX_NOTES_PER_GET = 500
MAX_CONTACTS_PER_PAGE = 200  # a contact GET naming more ids answers the first 200 and says more pages exist
SEARCH_MESSAGE_TYPE = "bulk-data-search"  # recorded for every search
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One authenticated request to a resource of ``account``."""

    account: SandboxAccount
    query: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an :class:`ApiError` (400) if it is not one."""
        try:
            value = json.loads(self.body or b"null")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ApiError(400, envelope.BAD_BODY_CODE, "The request body must be a JSON object")
        return value


Handler = Callable[[Call], Answer]


@dataclass(frozen=True)
class Route:
    """``method`` on ``template`` (relative to ``/public-api/{account}/``; ``{name}`` is one path segment)."""

    method: str
    template: str
    message_type: str
    handler: Handler
    error_message_type: str | None = None  # where Brightpearl names a refusal differently (webhooks' 404s)

    def match(self, path: str) -> dict[str, str] | None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template.strip("/")))
        found = re.fullmatch(pattern + "/?", path)
        return found.groupdict() if found else None


def find_route(routes: Sequence[Route], method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """The route for ``method path`` and its parameters; when none, the methods the path does allow."""
    allowed = []
    for route in routes:
        params = route.match(path)
        if params is None:
            continue
        if route.method == method.upper():
            return route, params, [route.method]
        allowed.append(route.method)
    return None, {}, allowed


def request_ids(text: str, max_ids: int | None) -> list[int]:
    """The ids of an ID set in a path: 500 if it does not parse, 400 if it names more than ``max_ids``."""
    try:
        ids = parse_id_set(text, max_ids=MAX_EXPANDED_IDS)
    except IdSetError as error:
        raise ApiError(500, envelope.FILTER_ERROR_CODE, f"The ID set {text} cannot be parsed as: IDSET") from error
    if max_ids is not None and len(ids) > max_ids:
        message = f"You asked for {len(ids)} ids; at most {max_ids} may be requested at once"
        raise ApiError(400, envelope.TOO_MANY_IDS_CODE, message)
    return ids


def unordered(items: Sequence[T]) -> list[T]:
    """``items`` with neighbours swapped pairwise: ids ``1,320,321`` come back ``320,1,321``, as Brightpearl
    answered them. Deterministic, and never id order for two or more, so no client can come to rely on it."""
    swapped = list(items)
    for index in range(0, len(swapped) - 1, 2):
        swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
    return swapped


Rows = Iterable[Mapping[str, Any]]


def _no_reference(account: SandboxAccount) -> Mapping[str, Mapping[int, Any]]:
    return {}


def search_handler(
    table: SearchTable,
    rows: Callable[[SandboxAccount], Rows],
    reference: Callable[[SandboxAccount], Mapping[str, Mapping[int, Any]]] = _no_reference,
    rows_by_id: Callable[[SandboxAccount, Iterable[int]], Rows] | None = None,
) -> Handler:
    """The handler of a ``*-search`` over ``table``, its rows and reference data taken from the account.

    ``rows`` must come in ascending id order (the account's collections do). ``rows_by_id``, when given, looks
    rows up by id for a search filtering the id column, so that ``productId=1-200`` does not walk 100,000."""

    def handle(call: Call) -> Answer:
        account = call.account
        offset = account.offset_minutes
        try:
            query = parse_query(table, call.query, offset, strict=account.strict)
        except SearchError as error:
            raise ApiError(500, error.code, error.message) from error
        ids = query.ids
        found = rows(account) if ids is None or rows_by_id is None else rows_by_id(account, sorted(ids))
        body = run_search(table, found, query, offset_minutes=offset, reference=reference(account), in_id_order=True)
        return Answer(200, body)

    return handle


def get_orders(call: Call) -> Answer:
    """``GET order/{ID-SET}``: the orders that exist, in no particular order; ``[]`` (200) when none do. Custom
    fields only as ``includeOptional`` asks (``customFields``, ``nullCustomFields``)."""
    account = call.account
    found = account.find_orders(request_ids(call.params["ids"], MAX_ORDERS_PER_GET))
    asked = custom_fields_asked(call.query.get("includeOptional"))
    rendered = [render_order(order, account.status(order.status_id), account.offset_minutes, asked) for order in found]
    return envelope.ok(unordered(rendered))


def order_options(call: Call) -> Answer:
    """``OPTIONS order/{ID-SET}``: the fewest GET URIs (each within the id cap) naming the orders that exist."""
    existing = [order.id for order in call.account.find_orders(request_ids(call.params["ids"], None))]
    uris = [f"/order/{id_set}" for id_set in chunked(existing, MAX_ORDERS_PER_GET)]
    return envelope.ok({"getUris": uris})


def _field(value: dict[str, Any], name: str) -> dict[str, Any]:
    """``value[name]`` when it is an object, else an empty one: absent and malformed parts read alike."""
    inner = value.get(name)
    return inner if isinstance(inner, dict) else {}


def post_order(call: Call) -> Answer:
    """``POST order``: a new order from ``orderTypeCode``, ``reference``, ``parties`` and ``statusId``."""
    body = call.json_object()
    order_type = body.get("orderTypeCode")
    if not order_type:
        raise ApiError(400, envelope.NO_ORDER_TYPE_CODE, "You have not supplied an order type code")
    if order_type not in catalogue.ORDER_TYPE_IDS:
        raise ApiError(400, envelope.BAD_ORDER_TYPE_CODE, "You have supplied an invalid order type code")
    party_name = "supplier" if order_type in catalogue.SUPPLIER_ORDER_TYPES else "customer"
    contact_id = _field(_field(body, "parties"), party_name).get("contactId")
    if party_name == "supplier" and not isinstance(contact_id, int):
        raise ApiError(400, envelope.NO_SUPPLIER_CODE, "Suppllier ID Required.")  # sic, as recorded
    status_id = body.get("statusId")
    try:
        (order,) = call.account.create_orders(
            1,
            order_type,
            status_id=status_id if isinstance(status_id, int) else None,
            reference=str(body.get("reference") or ""),
            contact_id=contact_id if isinstance(contact_id, int) else None,
        )
    except UnknownStatus as error:
        raise ApiError(400, envelope.UNKNOWN_STATUS_CODE, f"Order status {status_id} does not exist") from error
    return envelope.ok(order.id)


def put_order_status(call: Call) -> Answer:
    """``PUT order/{id}/status`` with ``{"orderStatusId": n}``: ``{}``, as recorded."""
    status_id = call.json_object().get("orderStatusId")
    if not isinstance(status_id, int) or isinstance(status_id, bool):
        raise ApiError(400, envelope.UNKNOWN_STATUS_CODE, "You have not supplied an order status id")
    text = call.params["id"]
    try:
        call.account.set_status(int(text) if text.isdigit() else -1, status_id)
    except UnknownOrder as error:
        raise ApiError(404, envelope.NOT_FOUND_CODE, f"Order {text} not found") from error
    except UnknownStatus as error:
        raise ApiError(400, envelope.UNKNOWN_STATUS_CODE, f"Order status {status_id} does not exist") from error
    return Answer(200, {})


def get_order_statuses(call: Call) -> Answer:
    """``GET order-status[/{ID-SET}]``: the statuses named (all when none are), in id order."""
    statuses = call.account.statuses
    wanted = request_ids(call.params["ids"], None) if "ids" in call.params else list(statuses)
    return envelope.ok([statuses[i].describe() for i in sorted(set(wanted)) if i in statuses])


def get_products(call: Call) -> Answer:
    """``GET product/{ID-SET}``: the products that exist, in no particular order; 404 when none do (as the
    product service answers for prices; a product GET finding nothing was not recorded). Custom fields only as
    ``includeOptional`` asks."""
    account = call.account
    found = account.find_products(request_ids(call.params["ids"], MAX_PRODUCTS_PER_GET))
    if not found:
        raise ApiError(404, envelope.NOT_FOUND_CODE, "No Products Found")
    asked = custom_fields_asked(call.query.get("includeOptional"))
    rendered = [render_product(product, account.warehouse_ids, account.offset_minutes, asked) for product in found]
    return envelope.ok(unordered(rendered))


def get_availability(call: Call) -> Answer:
    """``GET product-availability/{ID-SET}``: a map of the stock-tracked products that exist, by id. A deleted
    or not stock-tracked product among the ids makes the whole request answer 400 (an account set to "ignore"
    leaves it out instead, as documented; API.md 6.1, 8.1)."""
    ids = sorted(set(request_ids(call.params["ids"], MAX_AVAILABILITY_IDS)))
    bad = call.account.bad_availability_ids(ids)
    if bad:
        named = ", ".join(map(str, bad))
        raise ApiError(400, envelope.BAD_AVAILABILITY_IDS_CODE, f"Invalid or not stock tracked product ids: {named}")
    found = call.account.availability(ids)
    return envelope.ok(dict(unordered(list(found.items()))))


def get_goods_out_notes(call: Call) -> Answer:
    """``GET order/{ORDER-ID-SET or *}/goods-note/goods-out[/{NOTE-ID-SET}]``: a map of the notes, by id, of
    those orders (all notes of them when no note set is given), those that do not exist left out; 404
    ``CMNC-404`` "No goods out notes found" when none match (API.md 8.1: notes get deleted)."""
    account = call.account
    orders_text = call.params["orders"].strip()
    order_ids = None if orders_text == "*" else frozenset(request_ids(orders_text, None))
    if "notes" in call.params:
        wanted = sorted(set(request_ids(call.params["notes"], MAX_NOTES_PER_GET)))
        notes = [account.goods_out_notes[i] for i in wanted if i in account.goods_out_notes]
    else:
        notes = list(account.goods_out_notes.values())
    found = [note for note in notes if order_ids is None or note.order_id in order_ids]
    if not found:
        raise ApiError(404, envelope.NOT_FOUND_CODE, "No goods out notes found")
    offset = account.offset_minutes
    return envelope.ok({str(note.id): render_note(note, offset) for note in unordered(found)})


def get_contacts(call: Call) -> Answer:
    """``GET contact/{ID-SET}``: the contacts that exist, a page at a time (``firstResult``, ``pageSize`` up to
    200, ``sort=contactId.ASC|DESC``), with ``pagination`` and ``sorting`` beside ``response`` as recorded; 404
    ``No Contact Found`` when none exist."""
    account = call.account
    existing = [i for i in sorted(set(request_ids(call.params["ids"], None))) if i in account.contacts]
    if not existing:
        raise ApiError(404, envelope.NOT_FOUND_CODE, "No Contact Found")
    try:
        keys = parse_sort(CONTACT_SEARCH_TABLE, call.query.get("sort") or "contactId.ASC")
        size = parse_count("pageSize", call.query.get("pageSize"), MAX_CONTACTS_PER_PAGE)
        first = max(1, parse_count("firstResult", call.query.get("firstResult"), 1))
    except SearchError as error:
        raise ApiError(500, error.code, error.message) from error
    if [key.column.name for key in keys] != ["contactId"]:
        raise ApiError(500, envelope.COLUMN_ERROR_CODE, "Contacts are sorted by contactId only")
    if keys[0].descending:
        existing.reverse()
    size = max(1, min(MAX_CONTACTS_PER_PAGE, size))
    page = existing[first - 1 : first - 1 + size]
    last = first + len(page) - 1 if page else 0
    body = envelope.response([render_contact(account.contacts[i], account.offset_minutes) for i in page])
    body["pagination"] = {
        "morePagesAvailable": bool(page) and last < len(existing),
        "resultsReturned": len(page),
        "firstResult": first if page else 0,
        "lastResult": last,
    }
    body["sorting"] = [{"field": "contactId", "direction": "DESC" if keys[0].descending else "ASC"}]
    return Answer(200, body)


def _product_rows(account: SandboxAccount, ids: Iterable[int]) -> Rows:
    found = (account.products.get(product_id) for product_id in ids)
    return (product.search_row() for product in found if product is not None)


def _movement_rows(account: SandboxAccount, ids: Iterable[int]) -> Rows:
    rows = account.stock.movement_rows
    return (rows[movement_id] for movement_id in ids if movement_id in rows)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "order-service/order-search",
        SEARCH_MESSAGE_TYPE,
        search_handler(
            ORDER_SEARCH_TABLE,
            lambda account: (orders.search_row(order) for order in account.orders.values()),
            lambda account: orders.search_reference(account.statuses),
        ),
    ),
    Route("GET", "order-service/order/{ids}", "get-order", get_orders),
    Route("OPTIONS", "order-service/order/{ids}", "options-order", order_options),
    Route("POST", "order-service/order", "post-order", post_order),
    Route("PUT", "order-service/order/{id}/status", "put-order-status", put_order_status),
    Route("GET", "order-service/order-status", "get-order-status", get_order_statuses),
    Route("GET", "order-service/order-status/{ids}", "get-order-status", get_order_statuses),
    Route(
        "GET",
        "product-service/product-search",
        SEARCH_MESSAGE_TYPE,
        search_handler(
            PRODUCT_SEARCH_TABLE,
            lambda account: (product.search_row() for product in account.products.values()),
            lambda account: products.search_reference(account.products),
            _product_rows,
        ),
    ),
    Route("GET", "product-service/product/{ids}", "product-get", get_products),  # sic: recorded "product-get"
    Route("GET", "warehouse-service/product-availability/{ids}", "get-product-availability", get_availability),
    Route(
        "GET",
        "warehouse-service/goods-movement-search",
        SEARCH_MESSAGE_TYPE,
        search_handler(
            GOODS_MOVEMENT_SEARCH_TABLE,
            lambda account: account.stock.movement_rows.values(),
            rows_by_id=_movement_rows,
        ),
    ),
    Route(
        "GET",
        "warehouse-service/goods-note/goods-out-search",
        SEARCH_MESSAGE_TYPE,
        search_handler(
            GOODS_OUT_SEARCH_TABLE,
            lambda account: (goods_out.search_row(note) for note in account.goods_out_notes.values()),
        ),
    ),
    Route(
        "GET",
        "warehouse-service/order/{orders}/goods-note/goods-out/{notes}",
        "get-goods-out-note",
        get_goods_out_notes,
    ),
    Route("GET", "warehouse-service/order/{orders}/goods-note/goods-out", "get-goods-out-note", get_goods_out_notes),
    Route(
        "GET",
        "contact-service/contact-search",
        SEARCH_MESSAGE_TYPE,
        search_handler(CONTACT_SEARCH_TABLE, lambda account: (c.search_row() for c in account.contacts.values())),
    ),
    Route("GET", "contact-service/contact/{ids}", "get-contact", get_contacts),
    # native webhooks (relay.sandbox.webhook_api); message types as recorded for their 200s
    Route("POST", "integration-service/webhook", "post-webhook", post_webhook),
    Route("GET", "integration-service/webhook", "webhook-get", get_webhooks, "get-webhook"),
    Route("GET", "integration-service/webhook/{ids}", "webhook-get", get_webhooks, "get-webhook"),
    Route("DELETE", "integration-service/webhook/{id}", "webhook-delete", delete_webhook, "delete-webhook"),
    Route("POST", "integration-service/webhook/{ids}/simulate", "post-webhook-simulate", simulate_webhook),
)
# Every route records its refusals, and a strict account's GETs are checked first (relay.sandbox.strictness).
ROUTES = tuple(replace(route, handler=guarded(route.method, route.template, route.handler)) for route in ROUTES)
