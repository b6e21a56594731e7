"""Brightpearl search results: rows as arrays, named by ``metaData.columns``.

A search answers ``{"response": {"results": [[...], ...], "metaData": {...}}, "reference": {...}}``. Older
answers omit ``morePagesAvailable``; then ``lastResult < resultsAvailable`` says whether more pages remain.
"""

from dataclasses import dataclass, field
from typing import Any

MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class SearchPage:
    """One page of a search, each row a dict keyed by column name."""

    rows: list[dict[str, Any]]
    more_pages: bool
    results_available: int
    first_result: int
    last_result: int
    sorting: list[tuple[str, str]] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)


def parse_search(body: Any) -> SearchPage:
    """A :class:`SearchPage` from a search answer's whole JSON body; ``ValueError`` if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("response"), dict):
        raise ValueError("a search answer is an object with a 'response' object")
    response = body["response"]
    results = response.get("results")
    meta = response.get("metaData")
    if not isinstance(results, list) or not isinstance(meta, dict):
        raise ValueError("a search answer has 'results' and 'metaData'")
    names = [column["name"] for column in meta.get("columns", []) if isinstance(column, dict) and "name" in column]
    rows = []
    for row in results:
        if isinstance(row, dict):  # tolerate an answer that already names its fields
            rows.append(row)
        elif isinstance(row, list) and len(row) == len(names):
            rows.append(dict(zip(names, row, strict=True)))
        else:
            raise ValueError(f"a search row does not match the {len(names)} columns in metaData")
    first = int(meta.get("firstResult") or (1 if rows else 0))
    last = int(meta.get("lastResult") or (first + len(rows) - 1 if rows else 0))
    available = int(meta.get("resultsAvailable", last))
    more = meta.get("morePagesAvailable")
    if not isinstance(more, bool):
        more = bool(rows) and last < available
    sorting = []
    for entry in meta.get("sorting", []) or []:
        column = entry.get("filterable") or entry.get("field") if isinstance(entry, dict) else None
        name = column.get("name") if isinstance(column, dict) else column
        if isinstance(name, str):
            sorting.append((name, str(entry.get("direction", "ASC")).upper()))
    reference = body.get("reference")
    return SearchPage(rows, more, available, first, last, sorting, reference if isinstance(reference, dict) else {})
