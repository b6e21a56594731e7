"""Brightpearl ID sets: ``"1-5,7,9-12"``.

Brightpearl takes sets of ids in URLs (``GET /order-service/order/1-5,7``) and caps how many one request may
name (200 for orders, products and contacts). These functions are pure: parse a set, compress ids into the
shortest set, and split many ids into sets that each stay under a cap.
"""

from collections.abc import Iterable

from subscriptions.core.errors import RelayError


class IdSetError(RelayError, ValueError):
    """An ID set string that is not a comma-separated list of ids and ascending ``a-b`` ranges."""


class IdSetTooLarge(IdSetError):
    """An ID set naming more ids than the reader allows."""


def parse_id_set(text: str, *, max_ids: int | None = None) -> list[int]:
    """The ids an ID set names, in the order written, without duplicates.

    ``max_ids`` bounds the expansion so that ``1-999999999`` cannot exhaust memory; a set naming more ids
    raises :class:`IdSetTooLarge`.
    """
    ids: dict[int, None] = {}
    for raw_part in text.split(","):
        part = raw_part.strip()
        if not part:
            raise IdSetError(f"empty element in ID set {text!r}")
        first_text, sep, last_text = part.partition("-")
        first = _parse_id(first_text, text)
        last = _parse_id(last_text, text) if sep else first
        if last < first:
            raise IdSetError(f"range {part!r} in ID set {text!r} does not ascend")
        if max_ids is not None and len(ids) + (last - first + 1) > max_ids:
            raise IdSetTooLarge(f"ID set {text!r} names more than {max_ids} ids")
        for value in range(first, last + 1):
            ids[value] = None
    return list(ids)


def _parse_id(text: str, whole: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise IdSetError(f"{text!r} in ID set {whole!r} is not a non-negative integer")
    return int(text)


def compress_ids(ids: Iterable[int]) -> str:
    """The shortest ID set naming exactly ``ids``: sorted, runs of three or more as ranges (``1-3,5,6``)."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        run = ordered[index : end + 1]
        if len(run) >= 3:
            parts.append(f"{run[0]}-{run[-1]}")
        else:
            parts.extend(str(value) for value in run)
        index = end + 1
    return ",".join(parts)


def chunk_id_sets(ids: Iterable[int], max_per_set: int = 200) -> list[str]:
    """Compressed ID sets of at most ``max_per_set`` ids each, covering ``ids`` in ascending order."""
    if max_per_set < 1:
        raise ValueError("max_per_set must be at least 1")
    ordered = sorted(set(ids))
    return [compress_ids(ordered[start : start + max_per_set]) for start in range(0, len(ordered), max_per_set)]
