"""Brightpearl's native webhook events as the sandbox knows them (API.md 7.2, 7.3): their names, which of them a
``subscribeTo`` covers, and a webhook's templates rendered for one call. Pure: no I/O, no clock.

A ``subscribeTo`` is an event's full name or a prefix of it ending at a dot (``product`` covers every
``product.*``; ``order.modified`` covers ``order.modified`` and ``order.modified.order-status``). A prefix that
covers no known event, and a name an account refuses, are 400 ``INTC-064`` (recorded wording, typo included).
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from relay.sandbox.idsets import compressed

BRIGHTPEARL_VERSION = "4.95.2647"  # as in a real delivered body (API.md 7.2)
UNSUBSCRIBABLE_CODE = "INTC-064"

_STAGES = ("printed", "picked", "packed", "shipped", "un-printed", "un-picked", "un-packed")
FIRED_EVENTS: tuple[str, ...] = (
    "order.created",
    "order.modified",
    "order.modified.order-status",
    "order.destroyed",
    "product.created",
    "product.modified",
    "product.destroyed",
    "product.modified.on-hand-modified",
    "goods-out-note.created",
    "goods-out-note.destroyed",
    "goods-out-note.modified",
    *(f"goods-out-note.modified.{stage}" for stage in _STAGES),
    "contact.created",
    "contact.modified",
    "contact.destroyed",
)
# Subscribable, but nothing the sandbox does raises them.
QUIET_EVENTS: tuple[str, ...] = ("sales-order.created", "goods-in-note.created")
KNOWN_EVENTS: frozenset[str] = frozenset(FIRED_EVENTS + QUIET_EVENTS)
# What a production integration reports real accounts refuse (R-MCP, API.md 7.3; UNCONFIRMED).
DEFAULT_REFUSED_EVENTS: tuple[str, ...] = (
    "order.created",
    "order.destroyed",
    "contact.created",
    "contact.modified",
    "contact.destroyed",
)


def covers(subscribe_to: str, event: str) -> bool:
    """Whether a subscription to ``subscribe_to`` hears ``event``: the same name, or a prefix at a dot."""
    return event == subscribe_to or event.startswith(subscribe_to + ".")


def unsubscribable_message(subscribe_to: str) -> str:
    return f"{subscribe_to} either does not exist or cannot be subscribed too"  # sic, as recorded


def subscribable(subscribe_to: str, refused: Iterable[str]) -> bool:
    """Whether an account refusing ``refused`` takes a subscription to ``subscribe_to``: it must cover a known
    event, and not be exactly a refused one (a prefix such as ``order`` is taken, but never hears refused ones)."""
    if subscribe_to in set(refused):
        return False
    return any(covers(subscribe_to, event) for event in KNOWN_EVENTS)


def raised_on(value: datetime) -> str:
    """``2022-09-19T10:20:41.691Z``: UTC with milliseconds, as delivered."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def event_values(account_code: str, event: str, ids: Iterable[int], when: datetime) -> dict[str, str]:
    """Every template variable for ``event`` on ``ids`` (an ID set, ranges compressed), all strings."""
    resource_type, lifecycle, *specifier = event.split(".", 2)
    return {
        "${account-code}": account_code,
        "${resource-type}": resource_type,
        "${resource-id}": compressed(ids),
        "${lifecycle-event}": lifecycle,
        "${resource-specifier}": specifier[0] if specifier else "",
        "${full-event}": event,
        "${raised-on}": raised_on(when),
        "${brightpearl-version}": BRIGHTPEARL_VERSION,
    }


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``${name}`` in ``values`` replaced; unknown variables are left as written."""
    for name, value in values.items():
        template = template.replace(name, value)
    return template
