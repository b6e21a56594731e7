"""The events the relay sends, and the patterns subscriptions use to choose them.

Names follow Brightpearl's own webhooks, ``{resource}.{lifecycle}[.{detail}]``, so a receiver written for the
relay keeps working on Brightpearl's native events. A pattern is an event name in which ``*`` matches any
characters, dots included (``order.*``, ``*``).
"""

import re
from collections.abc import Iterable
from functools import lru_cache

from subscriptions.core.errors import InvalidInput

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
    "goods-out-note.modified.un-printed",
    "goods-out-note.modified.un-picked",
    "goods-out-note.modified.un-packed",
    "goods-out-note.modified",
    "goods-out-note.destroyed",
    "product.created",
    "product.modified",
    "contact.created",
    "contact.modified",
    "ping",
)

_PATTERN_CHARS = re.compile(r"^[a-z*][a-z0-9.*-]*$")
MAX_PATTERNS = 20  # a subscription's event patterns
MAX_PATTERN_CHARS = 200


@lru_cache(maxsize=4096)
def _literal_parts(pattern: str) -> tuple[str, ...]:
    """The literal text between the pattern's stars (a run of stars is one star): ``"order.*"`` gives
    ``("order.", "")``, ``"order.created"`` gives ``("order.created",)``."""
    return tuple(pattern.split("*"))


def pattern_matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` is chosen by ``pattern`` (``*`` matches any characters, dots included).

    No regular expression: the first literal part must begin the name, the last must end it, and the ones
    between are found left to right, each after the one before (the leftmost place is always as good as any
    later one). So matching takes time linear in the name whatever the pattern: 145 stars cost what one does.
    """
    parts = _literal_parts(pattern)
    if len(parts) == 1:
        return pattern == event_type
    first, *middle, last = parts
    end = len(event_type) - len(last)
    if end < len(first) or not event_type.startswith(first) or not event_type.endswith(last):
        return False
    position = len(first)
    for part in middle:
        if not part:
            continue
        found = event_type.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    """Whether any of ``patterns`` chooses ``event_type``."""
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


_STAR_RUN = re.compile(r"\*{2,}")


def validate_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` with runs of stars made one and without duplicates, or :class:`InvalidInput` naming the
    first that is too long or matches no event."""
    if not patterns:
        raise InvalidInput('events must name at least one event or pattern, e.g. ["order.created"] or ["*"]')
    unique = list(dict.fromkeys(_STAR_RUN.sub("*", pattern) for pattern in patterns))
    if len(unique) > MAX_PATTERNS:
        raise InvalidInput(f"events may hold at most {MAX_PATTERNS} names or patterns, got {len(unique)}")
    for pattern in unique:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidInput(f"event pattern {pattern[:40]!r}… is longer than {MAX_PATTERN_CHARS} characters")
        if not _PATTERN_CHARS.match(pattern) or not any(pattern_matches(pattern, name) for name in EVENT_TYPES):
            raise InvalidInput(
                f"event pattern {pattern!r} matches no event; known events: {', '.join(EVENT_TYPES)} "
                "('*' matches any characters, e.g. 'order.*')"
            )
    return unique
