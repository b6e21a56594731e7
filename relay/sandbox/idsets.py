"""ID sets as the sandbox reads and writes them, from Brightpearl's documentation (API.md 6.1), not the client's.

An ID set is one or more elements joined by commas, each a single id (``8``) or an ascending range (``1-5``);
elements may come in any order (``1-5,7,9,100-120``). The sandbox has its own reader so that a bug in the
relay's (``workers.brightpearl.idset``) shows up as a refusal in a test instead of agreeing with itself.

:func:`parse_parts` keeps the elements as written, so a caller can tell a range from a single id (a strict
account refuses ranges in ``IDSET`` filters: documented as accepted, reported rejected, API.md 5 and 8.1);
:func:`parse_id_set` expands them. :func:`compressed` writes ids the way the recorded ``OPTIONS`` answer does:
every run of two or more consecutive ids as a range (``1-2,5,8,10-41``).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from subscriptions.core.errors import RelayError

# An ID set naming more ids than this (``1-999999999`` does) is refused as unparseable rather than expanded.
MAX_EXPANDED_IDS = 100_000
_ELEMENT = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)  # ASCII: other scripts' digits are digits to Python alone


class IdSetError(RelayError, ValueError):
    """Text that is not an ID set, or one naming more ids than may be expanded."""


@dataclass(frozen=True, slots=True)
class Part:
    """One element of an ID set: ``first`` to ``last`` inclusive (the same id for a single one)."""

    first: int
    last: int
    is_range: bool = False  # written ``a-b``, even where ``a`` equals ``b``


def parse_parts(text: str, *, strict: bool = False) -> list[Part]:
    """The elements of ``text`` as written. Leniently, blanks around elements are tolerated and a range may end
    where it starts (``5-5``); ``strict`` refuses both (the documentation says "first < second")."""
    parts = []
    for raw in text.split(","):
        element = raw if strict else raw.strip()
        found = _ELEMENT.fullmatch(element)
        if found is None:
            raise IdSetError(f"{raw!r} in {text!r} is neither an id nor a range of ids")
        first = int(found.group(1))
        last = int(found.group(2)) if found.group(2) is not None else first
        if last < first or (strict and found.group(2) is not None and last == first):
            raise IdSetError(f"the range {element!r} in {text!r} does not ascend")
        parts.append(Part(first, last, found.group(2) is not None))
    return parts


def expand(parts: Iterable[Part], *, max_ids: int = MAX_EXPANDED_IDS) -> list[int]:
    """Every id ``parts`` name, first appearance first, each once; :class:`IdSetError` past ``max_ids``."""
    seen: dict[int, None] = {}
    for part in parts:
        if part.last - part.first + 1 + len(seen) > max_ids:
            raise IdSetError(f"the ID set names more than {max_ids} ids")
        seen.update(dict.fromkeys(range(part.first, part.last + 1)))
    return list(seen)


def parse_id_set(text: str, *, max_ids: int = MAX_EXPANDED_IDS, strict: bool = False) -> list[int]:
    """The ids ``text`` names (see :func:`parse_parts` and :func:`expand`)."""
    return expand(parse_parts(text, strict=strict), max_ids=max_ids)


def compressed(ids: Iterable[int]) -> str:
    """``ids`` ascending, each run of two or more consecutive ids as ``a-b``, as the recorded ``OPTIONS`` answer
    writes them (``/order/1-2,5,8,10-41,43-44``)."""
    runs: list[list[int]] = []
    for value in sorted(set(ids)):
        if runs and runs[-1][1] + 1 == value:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def chunked(ids: Iterable[int], cap: int) -> list[str]:
    """``ids`` ascending in ID sets of at most ``cap`` ids each (the ``getUris`` of an ``OPTIONS`` answer)."""
    if cap < 1:
        raise ValueError("an ID set holds at least one id")
    ordered = sorted(set(ids))
    return [compressed(ordered[start : start + cap]) for start in range(0, len(ordered), cap)]
