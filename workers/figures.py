"""A product's stock figures as the relay keeps them between polls, in as few bytes as they allow.

The figures are Brightpearl's ``product-availability`` answer for one product (API.md 6.5): ``total`` and each
warehouse's quantities, the four ``allocated``, ``inStock``, ``inTransit`` and ``onHand``, whole numbers. Kept as
JSON they take about 150 bytes a product; an account's figures are one Redis hash, and a catalogue of 10,000
products is then 2.4 MB. Written compactly they take about 15::

    {changes}|{total}|{warehouse}:{quantities};{warehouse}=

with each quantities the four numbers in that order, comma-separated, and ``=`` for a warehouse whose figures
are the total's (the usual case, one warehouse). Figures of any other shape (a quantity Brightpearl may add, a
fraction, no total) are kept as JSON, as every figure was before: both read back the same.
"""

import json
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

QUANTITIES = ("allocated", "inStock", "inTransit", "onHand")  # sorted, as the JSON form sorts them
_NUMBER = re.compile(r"-?\d+")


def encode(figures: Mapping[str, Any], changes: int) -> str:
    """``figures`` (with ``total`` and ``warehouses``) and the count of changes reported, as kept."""
    total, warehouses = figures.get("total"), figures.get("warehouses")
    if not (_compact(total) and isinstance(warehouses, dict) and all(map(_warehouse, warehouses.items()))):
        return _json(figures, changes)
    parts = [
        f"{warehouse}=" if warehouses[warehouse] == total else f"{warehouse}:{_numbers(warehouses[warehouse])}"
        for warehouse in sorted(warehouses)
    ]
    return f"{changes}|{_numbers(total)}|{';'.join(parts)}"


def decode(text: str) -> tuple[dict[str, Any], int]:
    """The figures and the count of changes ``text`` (either form) holds."""
    if text.startswith("{"):
        data = json.loads(text)
        return data["figures"], int(data["changes"])
    changes, total_text, warehouses_text = text.split("|")
    total = _quantities(total_text)
    warehouses: dict[str, Any] = {}
    for part in filter(None, warehouses_text.split(";")):
        if part.endswith("="):
            warehouses[part[:-1]] = dict(total)
        else:
            warehouse, _, numbers = part.partition(":")
            warehouses[warehouse] = _quantities(numbers)
    return {"total": total, "warehouses": warehouses}, int(changes)


def _compact(quantities: object) -> TypeGuard[dict[str, int]]:
    return (
        isinstance(quantities, dict)
        and tuple(sorted(quantities)) == QUANTITIES
        and all(type(quantities[name]) is int for name in QUANTITIES)
    )


def _warehouse(item: tuple[object, object]) -> bool:
    warehouse, quantities = item
    return isinstance(warehouse, str) and warehouse.isdigit() and warehouse.isascii() and _compact(quantities)


def _numbers(quantities: Mapping[str, int]) -> str:
    return ",".join(str(quantities[name]) for name in QUANTITIES)


def _quantities(text: str) -> dict[str, Any]:
    numbers = text.split(",")
    if len(numbers) != len(QUANTITIES) or not all(_NUMBER.fullmatch(n) for n in numbers):
        raise ValueError(f"not stock figures: {text!r}")
    return dict(zip(QUANTITIES, map(int, numbers), strict=True))


def _json(figures: Mapping[str, Any], changes: int) -> str:
    return json.dumps({"figures": figures, "changes": changes}, sort_keys=True, separators=(",", ":"))
