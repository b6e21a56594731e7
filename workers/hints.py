"""Brightpearl's native webhooks as hints: which ones the relay subscribes, and what a thin hint names. Pure.

Brightpearl's webhooks carry ids only, are unsigned, are not guaranteed, and some are refused on real accounts
(API.md section 7). The relay uses them as hints: a hint names ids to read now; the read goes through the same
detectors as a poll, so the events are the ones polling would give, under the same ids. This module knows the
names: which ``subscribeTo`` values serve which watched resource (:func:`wanted_events`), which resources a
hint is for (:func:`resources_of`), which resources the subscribed events cover (:func:`covered_resources`),
and how a hint's body reads (:func:`parse_hint`).
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from subscriptions.core.errors import RelayError
from workers.brightpearl.idset import IdSetError, IdSetTooLarge, parse_id_set

MAX_HINT_BYTES = 64 * 1024  # a larger body is refused (413) before it is read
MAX_HINT_IDS = 1_000  # ids one hint may name; a hint naming more asks for a poll of its resource instead
MAX_COALESCE_MS = 1_000  # the longest hints wait for others, when the account's budget is nearly spent

# What the relay subscribes for each watched resource. Orders: order.created is refused on real accounts, and
# order.modified fires on creation too (R-MCP; both UNCONFIRMED), so both are asked for; whether order.modified
# covers order.modified.order-status as a prefix is not known, so that is asked for as well. Products: the
# ``product`` prefix (every product event, the stock one included). Stock alone: only the stock event.
SUBSCRIBE: Mapping[str, tuple[str, ...]] = {
    "orders": ("order.created", "order.modified", "order.modified.order-status"),
    "stock": ("product.modified.on-hand-modified",),
    "goods-out-notes": ("goods-out-note",),
    "products": ("product",),
    "contacts": ("contact.created", "contact.modified"),
}
STOCK_EVENT = "product.modified.on-hand-modified"


class HintError(RelayError, ValueError):
    """A hint's body that is not what the relay's body template makes: it is answered 400."""


@dataclass(frozen=True)
class Hint:
    """What one thin webhook says: which kind of resource, the event, and the ids (``overflow`` when it named
    more than :data:`MAX_HINT_IDS`, which are not listed)."""

    resource_type: str
    full_event: str
    ids: tuple[int, ...]
    overflow: bool = False


def coalesce_ms(used: int, per_minute: int, base_ms: int) -> int:
    """How long hinted ids wait for more before they are read: ``base_ms`` while less than half the account's
    budget was used in the last minute, then longer as it fills, up to :data:`MAX_COALESCE_MS` when it is spent.
    A burst of hints (an import, 50 orders in 10 s) is then read in fewer requests of more ids each, instead of
    one request a hint until the budget runs dry and every read waits for the minute to pass."""
    fill = used / max(1, per_minute)
    if fill <= 0.5:
        return base_ms
    longest = max(base_ms, MAX_COALESCE_MS)
    return round(base_ms + (longest - base_ms) * min(1.0, (fill - 0.5) / 0.5))


def wanted_events(resources: Iterable[str]) -> list[str]:
    """The ``subscribeTo`` values the relay wants for ``resources``, sorted, none that a resource's prefix (such as
    ``product``, documented as a prefix) already covers. Whether an event's name is a prefix of its specified ones
    (``order.modified`` of ``order.modified.order-status``) is not documented, so both are kept."""
    wanted = {name for resource in resources for name in SUBSCRIBE.get(resource, ())}
    prefixes = {name for name in wanted if "." not in name}
    return sorted(name for name in wanted if name in prefixes or not any(_covers(p, name) for p in prefixes))


def _covers(subscription: str, event: str) -> bool:
    """Whether subscribing ``subscription`` (an exact name or a prefix ending at a dot) receives ``event``."""
    return event == subscription or event.startswith(subscription + ".")


def resources_of(hint: Hint, watched: Sequence[str]) -> list[str]:
    """The watched resources a hint asks to look at (none when it is for nothing the account watches)."""
    kind, event = hint.resource_type, hint.full_event
    if kind == "order" or event.startswith("order."):
        found = ["orders"]
    elif kind == "product" or event.startswith("product."):
        found = ["stock"] if event == STOCK_EVENT else ["products"]
    elif kind == "goods-out-note" or event.startswith("goods-out-note."):
        found = ["goods-out-notes"]
    elif kind == "contact" or event.startswith("contact."):
        found = ["contacts"]
    else:
        found = []
    return [resource for resource in found if resource in watched]


def covered_resources(subscribed: Iterable[str], watched: Sequence[str]) -> list[str]:
    """The watched resources some subscribed event announces changes of, in ``watched``'s order. Orders count as
    covered by ``order.modified`` alone (it fires on creation on real accounts); if it does not, the polls find
    new orders no hint announced, and hints of orders are judged degraded."""
    subscribed = list(subscribed)

    def received(event: str) -> bool:
        return any(_covers(name, event) for name in subscribed)

    covers = {
        "orders": received("order.modified") or received("order.created"),
        "stock": received(STOCK_EVENT),
        "goods-out-notes": received("goods-out-note.created") and received("goods-out-note.modified.shipped"),
        "products": received("product.modified") and received("product.created"),
        "contacts": received("contact.modified") and received("contact.created"),
    }
    return [resource for resource in watched if covers.get(resource)]


def body_template() -> str:
    """The ``bodyTemplate`` the relay subscribes with: JSON whose every value is a template variable (so a string)."""
    fields = {
        "accountCode": "${account-code}",
        "resourceType": "${resource-type}",
        "id": "${resource-id}",
        "lifecycleEvent": "${lifecycle-event}",
        "fullEvent": "${full-event}",
        "raisedOn": "${raised-on}",
    }
    return json.dumps(fields, separators=(", ", ": "))


def parse_hint(body: bytes) -> Hint:
    """A hint's body as the relay's template makes it: every value a string, ``id`` an ID set (``"1-5,99"``).
    Raises :class:`HintError` naming what is wrong."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise HintError(f"the body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise HintError("the body is not a JSON object")
    resource_type, full_event, ids = value.get("resourceType"), value.get("fullEvent"), value.get("id")
    if not isinstance(full_event, str) or not full_event:
        raise HintError("fullEvent is missing or not a string")
    if not isinstance(resource_type, str):
        resource_type = full_event.split(".", 1)[0]
    if isinstance(ids, int) and not isinstance(ids, bool):
        ids = str(ids)
    if not isinstance(ids, str) or not ids.strip():
        raise HintError('id is missing or not an ID set string such as "1-5,99"')
    try:
        parsed = parse_id_set(ids, max_ids=MAX_HINT_IDS)
    except IdSetTooLarge:
        return Hint(resource_type.lower(), full_event.lower(), (), overflow=True)
    except IdSetError as error:
        raise HintError(f"id: {error}") from None
    return Hint(resource_type.lower(), full_event.lower(), tuple(parsed))
