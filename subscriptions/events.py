"""The events the relay sends, and the patterns subscriptions use to choose them.

Names follow Brightpearl's own webhooks, ``{resource}.{lifecycle}[.{detail}]``, so a receiver written for the
relay keeps working on Brightpearl's native events. A pattern is an event name in which ``*`` matches any
characters, dots included (``order.*``, ``*``).
"""

import re
from collections.abc import Iterable
from functools import lru_cache

from subscriptions.errors import InvalidInput

EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.modified.order-status",
    "order.modified",
    "product.modified.on-hand-modified",
    "goods-out-note.created",
    "goods-out-note.modified.printed",
    "goods-out-note.modified.picked",
    "goods-out-note.modified.packed",
    "goods-out-note.modified.shipped",
    "product.created",
    "product.modified",
    "contact.created",
    "contact.modified",
    "ping",
)

_PATTERN_CHARS = re.compile(r"^[a-z*][a-z0-9.*-]*$")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)) + r"\Z")


def pattern_matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` is chosen by ``pattern`` (``*`` matches any characters, dots included)."""
    return pattern == "*" or _compiled(pattern).match(event_type) is not None


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    """Whether any of ``patterns`` chooses ``event_type``."""
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


def validate_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` without duplicates, or :class:`InvalidInput` naming the first that matches no event."""
    if not patterns:
        raise InvalidInput('events must name at least one event or pattern, e.g. ["order.created"] or ["*"]')
    unique = list(dict.fromkeys(patterns))
    for pattern in unique:
        if not _PATTERN_CHARS.match(pattern) or not any(pattern_matches(pattern, name) for name in EVENT_TYPES):
            raise InvalidInput(
                f"event pattern {pattern!r} matches no event; known events: {', '.join(EVENT_TYPES)} "
                "('*' matches any characters, e.g. 'order.*')"
            )
    return unique
