"""What a strict account refuses of a resource GET, and the record of every refusal in the request log.

A strict account (``strict: true`` through the control API, ``relay sandbox --strict``) refuses whatever
Brightpearl is not known to take, so that a relay tested against it sends only what the documentation and the
recordings show working (API.md 6.1): a query parameter the endpoint does not document, an ``includeOptional``
value it does not know, an ID set with blanks or a range that does not ascend (``5-5``: "first < second"), and
more ids than the endpoint's cap, including the availability cap that is UNCONFIRMED (clients use 100-200, so a
strict account takes 100). Searches are checked by :func:`relay.sandbox.search.parse_query`.

Every refusal, strict or not, is kept in the account's request log with its reason (``GET .../requests``); an
answer that something does not exist (404) is no refusal.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from relay.sandbox.account import SandboxAccount
from relay.sandbox.envelope import Answer, ApiError
from relay.sandbox.idsets import IdSetError, parse_parts
from relay.sandbox.request_log import Refusal

UNKNOWN_PARAMETER_CODE = "CMNC-020"  # not recorded: Brightpearl's code for a parameter it does not take
TOO_MANY_IDS_CODE = "CMNC-029"  # as the lenient cap's refusal (relay.sandbox.envelope)
BAD_ID_SET_CODE = "CMNC-018"  # as an ID set that does not parse
ID_SET_PARAMETERS = ("ids", "orders", "notes")  # path parameters that hold an ID set (``*`` aside)
CUSTOM_FIELDS = frozenset({"customFields", "nullCustomFields"})  # orders and products (API.md 6.1)


@dataclass(frozen=True)
class GetRules:
    """What one GET endpoint is documented to take: query parameters, ``includeOptional`` values, an id cap."""

    parameters: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    max_ids: int | None = None


_WITH_CUSTOM_FIELDS = GetRules(frozenset({"includeOptional"}), CUSTOM_FIELDS, 200)
# The GETs a strict account checks, by route template; an endpoint not listed is checked for its ID sets alone.
GET_RULES: Mapping[str, GetRules] = {
    "order-service/order/{ids}": _WITH_CUSTOM_FIELDS,
    "product-service/product/{ids}": _WITH_CUSTOM_FIELDS,
    "warehouse-service/product-availability/{ids}": GetRules(
        frozenset({"includeOptional"}),
        frozenset({"breakDownByLocation", "allocatedOrders", "allocatedTransfers", "onOrder"}),
        100,
    ),
    "warehouse-service/order/{orders}/goods-note/goods-out/{notes}": GetRules(max_ids=500),
    "warehouse-service/order/{orders}/goods-note/goods-out": GetRules(),
    "contact-service/contact/{ids}": GetRules(frozenset({"firstResult", "pageSize", "sort"})),
    "order-service/order-status": GetRules(),
    "order-service/order-status/{ids}": GetRules(),
    "integration-service/webhook": GetRules(),
    "integration-service/webhook/{ids}": GetRules(),
}


class Request(Protocol):
    """What a handler is given (:class:`relay.sandbox.resources.Call` is one)."""

    @property
    def account(self) -> SandboxAccount: ...

    @property
    def query(self) -> Mapping[str, str]: ...

    @property
    def params(self) -> Mapping[str, str]: ...


R = TypeVar("R", bound=Request)


def _count(text: str) -> int:
    """How many ids a path's ID set names, counted without expanding; refused unless strictly well formed."""
    try:
        parts = parse_parts(text, strict=True)
    except IdSetError as error:
        raise ApiError(500, BAD_ID_SET_CODE, f"The ID set {text} cannot be parsed as: IDSET ({error})") from error
    return sum(part.last - part.first + 1 for part in parts)


def check_get(rules: GetRules | None, request: Request) -> None:
    """:class:`ApiError` for what a strict account refuses of a GET under ``rules``."""
    for name in ID_SET_PARAMETERS:
        text = request.params.get(name)
        if text is None or text == "*":
            continue
        count = _count(text)
        if rules is not None and rules.max_ids is not None and name != "orders" and count > rules.max_ids:
            message = f"You asked for {count} ids; at most {rules.max_ids} may be requested at once"
            raise ApiError(400, TOO_MANY_IDS_CODE, message)
    if rules is None:
        return
    for name, value in request.query.items():
        if name not in rules.parameters:
            raise ApiError(400, UNKNOWN_PARAMETER_CODE, f"The parameter {name} is not known to this resource")
        if name == "includeOptional":
            unknown = [option for option in value.split(",") if option not in rules.optional]
            if unknown:
                raise ApiError(400, UNKNOWN_PARAMETER_CODE, f"includeOptional={','.join(unknown)} is not known here")


def guarded(method: str, template: str, handler: Callable[[R], Answer]) -> Callable[[R], Answer]:
    """``handler`` with a strict account's checks before it (GETs) and every refusal recorded."""
    rules = GET_RULES.get(template) if method == "GET" else None
    checked = method == "GET" and (rules is not None or "-search" not in template)

    def handle(request: R) -> Answer:
        try:
            if checked and request.account.strict:
                check_get(rules, request)
            return handler(request)
        except ApiError as error:
            if error.status != 404:
                path = template.format_map(dict(request.params))
                refusal = Refusal(method, path, dict(request.query), error.status, error.code, error.message)
                request.account.requests.refuse(refusal)
            raise

    return handle
