"""Brightpearl's resource search, for any resource: a column table plus rows.

A resource that can be searched declares a :class:`SearchTable` (its columns in Brightpearl's default order,
each with its ``reportDataType`` and reference data) and produces rows as dicts of plain values (``int``,
``str``, ``bool``, ``None``, aware ``datetime``). Everything else is here and pure: parsing filters (``IDSET``,
``INTEGER``, ``STRING`` exact, ``SEARCH_STRING`` contains, ``BOOLEAN`` ``true|false``, ``PERIOD``
``from/to``), ``columns=``, ``sort=col.ASC|DESC``, ``pageSize`` and the 1-based ``firstResult``; and the
answer, shaped exactly as recorded, ``reference`` beside ``response``.

Searches must stay fast over 100,000 products: filters run one pass each over plain row dicts, rows that come
in id order need no sorting by id, and a filter on the id column lets the resource look its rows up by id
(:attr:`SearchQuery.ids`) instead of handing over every row.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from relay.sandbox.envelope import COLUMN_ERROR_CODE, FILTER_ERROR_CODE, response
from subscriptions.core.errors import RelayError
from workers.brightpearl.idset import IdSetError, parse_id_set
from workers.brightpearl.timestamps import TimestampError, format_in_offset, parse_timestamp

MAX_PAGE_SIZE = 500
# An ID set (in a path or an IDSET filter) is expanded; one naming more ids than this is refused as unparseable
# (``1-999999999`` is), not expanded.
MAX_EXPANDED_IDS = 100_000
_INTEGER = re.compile(r"[+-]?\d+")


class DataType(StrEnum):
    """A column's ``reportDataType``: how its filter value is written."""

    IDSET = "IDSET"
    INTEGER = "INTEGER"
    STRING = "STRING"
    SEARCH_STRING = "SEARCH_STRING"
    BOOLEAN = "BOOLEAN"
    PERIOD = "PERIOD"


@dataclass(frozen=True)
class Column:
    """One search column as ``metaData.columns`` describes it."""

    name: str
    data_type: DataType
    reference_data: str | None = None  # the ``reference`` map naming this column's ids, if any
    sortable: bool = True  # recorded false for a few columns (``brightpearlCategoryCode``, ``isSupplier``)
    filterable: bool = True  # recorded false for ``salesChannelName``: such a parameter is ignored

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sortable": self.sortable,
            "filterable": self.filterable,
            "reportDataType": self.data_type.value,
            "referenceData": [self.reference_data] if self.reference_data else [],
            "isFreeTextSearchable": False,
            "required": False,
        }


@dataclass(frozen=True)
class SearchTable:
    """The columns of one resource's search, in default order; ``id_column`` is the default sort and tie-break."""

    columns: tuple[Column, ...]
    id_column: str

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)


class SearchError(RelayError, ValueError):
    """A search request Brightpearl refuses (with HTTP 500, as it does for bad filter values)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Period:
    """A ``PERIOD`` filter: ``from/to``, either side open, both sides inclusive."""

    start: datetime | None
    end: datetime | None

    def contains(self, value: datetime | None) -> bool:
        """Whether ``value`` lies in the period; a missing value (``null``) never does."""
        if value is None:
            return False
        return (self.start is None or self.start <= value) and (self.end is None or value <= self.end)


def _parse_instant(text: str, offset_minutes: int) -> datetime:
    try:
        return parse_timestamp(text)
    except TimestampError:
        local = datetime.fromisoformat(text)  # ValueError when it is not ISO-8601 at all
        if local.tzinfo is not None:
            raise
        # A date or time without an offset is read in the account's own zone, as the account's users would mean.
        return local.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).astimezone(UTC)


def parse_period(text: str, offset_minutes: int = 0) -> Period:
    """``2026-01-01T00:00:00Z/``, ``/2026-01-31T23:59:59+11:00``, ``a/b``; ``ValueError`` otherwise."""
    start_text, sep, end_text = text.partition("/")
    if not sep or "/" in end_text:
        raise ValueError(f"a period is 'from/to', not {text!r}")
    start = _parse_instant(start_text.strip(), offset_minutes) if start_text.strip() else None
    end = _parse_instant(end_text.strip(), offset_minutes) if end_text.strip() else None
    return Period(start, end)


Predicate = Callable[[Any], bool]
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class IdSetFilter:
    """An ``IDSET`` filter: a predicate that also tells which ids it lets through, so they can be looked up."""

    ids: frozenset[int]

    def __call__(self, value: Any) -> bool:
        return value in self.ids


def parse_boolean(text: str) -> bool:
    """``true`` or ``false`` (any case); ``ValueError`` for anything else, ``1`` and ``yes`` included."""
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is neither true nor false") from None


def _contains(text: str) -> Predicate:
    wanted = text.strip().casefold()
    return lambda value: isinstance(value, str) and wanted in value.casefold()


def parse_filter(column: Column, text: str, offset_minutes: int = 0) -> Predicate:
    """A test of a row's value for ``column={text}``; :class:`SearchError` when ``text`` is not of its type."""
    try:
        if column.data_type is DataType.IDSET:
            return IdSetFilter(frozenset(parse_id_set(text, max_ids=MAX_EXPANDED_IDS)))
        if column.data_type is DataType.INTEGER:
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError(text)
            number = int(text)
            return lambda value: value == number
        if column.data_type is DataType.BOOLEAN:
            flag = parse_boolean(text)
            return lambda value: value is flag
        if column.data_type is DataType.PERIOD:
            return parse_period(text, offset_minutes).contains
    except (ValueError, IdSetError) as error:
        message = f"The filter {column.name}={text} cannot be parsed as: {column.data_type.value}"
        raise SearchError(FILTER_ERROR_CODE, message) from error
    if column.data_type is DataType.SEARCH_STRING:
        return _contains(text)  # recorded: productName=Test Product finds "Anthony Test Product"
    return lambda value: value == text


@dataclass(frozen=True)
class SortKey:
    column: Column
    descending: bool = False

    def describe(self) -> dict[str, Any]:
        # Brightpearl names the column object "filterable" here; the recording is the authority.
        return {"filterable": self.column.describe(), "direction": "DESC" if self.descending else "ASC"}


def _known(table: SearchTable, name: str) -> Column:
    column = table.column(name)
    if column is None:
        raise SearchError(COLUMN_ERROR_CODE, f"The column {name} does not exist")
    return column


def parse_sort(table: SearchTable, text: str | None) -> list[SortKey]:
    """``createdOn.DESC`` (several comma-separated); the id column ascending when absent or empty."""
    if not text or not text.strip():
        return [SortKey(_known(table, table.id_column))]
    keys = []
    for part in text.split(","):
        name, sep, direction = part.strip().rpartition(".")
        if not sep:
            name, direction = direction, "ASC"
        if direction.upper() not in ("ASC", "DESC"):
            raise SearchError(COLUMN_ERROR_CODE, f"The sort {part.strip()} is not column.ASC or column.DESC")
        column = _known(table, name)
        if not column.sortable:
            raise SearchError(COLUMN_ERROR_CODE, f"The column {name} is not sortable")
        keys.append(SortKey(column, direction.upper() == "DESC"))
    return keys


def parse_columns(table: SearchTable, text: str | None) -> list[Column]:
    """The columns named by ``columns=a,b,c`` in that order; all of them, in default order, when absent."""
    if not text or not text.strip():
        return list(table.columns)
    return [_known(table, name.strip()) for name in text.split(",") if name.strip()]


def parse_count(name: str, text: str | None, default: int) -> int:
    """A paging parameter (``pageSize``, ``firstResult``); ``default`` when absent or empty."""
    if text is None or not text.strip():
        return default
    if not _INTEGER.fullmatch(text.strip()):
        raise SearchError(FILTER_ERROR_CODE, f"The parameter {name}={text} cannot be parsed as: INTEGER")
    return int(text)


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search request."""

    filters: tuple[tuple[str, Predicate], ...]
    columns: tuple[Column, ...]
    sort: tuple[SortKey, ...]
    page_size: int = MAX_PAGE_SIZE
    first_result: int = 1
    id_column: str | None = None

    @property
    def ids(self) -> frozenset[int] | None:
        """The ids a filter on the id column allows (``None``: any), so a resource can look its rows up by id."""
        allowed: frozenset[int] | None = None
        for name, test in self.filters:
            if name == self.id_column and isinstance(test, IdSetFilter):
                allowed = test.ids if allowed is None else allowed & test.ids
        return allowed


def parse_query(table: SearchTable, params: Mapping[str, str], offset_minutes: int = 0) -> SearchQuery:
    """A :class:`SearchQuery` from query parameters; parameters naming no column are ignored, as are empty ones
    and those naming a column that cannot be filtered."""
    filters = tuple(
        (column.name, parse_filter(column, params[column.name], offset_minutes))
        for column in table.columns
        if column.filterable and params.get(column.name, "").strip()
    )
    page_size = max(1, min(MAX_PAGE_SIZE, parse_count("pageSize", params.get("pageSize"), MAX_PAGE_SIZE)))
    first_result = max(1, parse_count("firstResult", params.get("firstResult"), 1))
    return SearchQuery(
        filters,
        tuple(parse_columns(table, params.get("columns"))),
        tuple(parse_sort(table, params.get("sort"))),
        page_size,
        first_result,
        table.id_column,
    )


def _sort_value(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)  # nulls first when ascending, last when descending


def _sort_key(name: str) -> Callable[[Mapping[str, Any]], tuple[bool, Any]]:
    return lambda row: _sort_value(row.get(name))


def _render(value: Any, offset_minutes: int) -> Any:
    return format_in_offset(value, offset_minutes) if isinstance(value, datetime) else value


def run_search(
    table: SearchTable,
    rows: Iterable[Mapping[str, Any]],
    query: SearchQuery,
    *,
    offset_minutes: int,
    reference: Mapping[str, Mapping[int, Any]],
    in_id_order: bool = False,
) -> dict[str, Any]:
    """The whole answer body of a search over ``rows``; ``reference`` maps the ids of reference columns to what
    ``reference`` shows for them (names, or lists of category ids). ``in_id_order`` says the rows already come in
    ascending id order, which spares sorting 100,000 rows to break ties."""
    matching = list(rows)
    for name, test in query.filters:  # one pass per filter: far cheaper than a generator per row
        matching = [row for row in matching if test(row.get(name))]
    if not in_id_order:
        matching.sort(key=_sort_key(table.id_column))
    for key in reversed(query.sort):  # stable sorts, last key first; ties stay in id order
        matching.sort(key=_sort_key(key.column.name), reverse=key.descending)
    page = matching[query.first_result - 1 : query.first_result - 1 + query.page_size]
    results = [[_render(row.get(column.name), offset_minutes) for column in query.columns] for row in page]
    first = query.first_result if page else 0
    last = first + len(page) - 1 if page else 0
    return response(
        {
            "results": results,
            "metaData": {
                "morePagesAvailable": bool(page) and last < len(matching),
                "resultsAvailable": len(matching),
                "resultsReturned": len(page),
                "firstResult": first,
                "lastResult": last,
                "columns": [column.describe() for column in query.columns],
                "sorting": [key.describe() for key in query.sort],
            },
        }
    ) | {"reference": _reference(query.columns, page, reference)}


def _reference(
    columns: Sequence[Column], page: Sequence[Mapping[str, Any]], names: Mapping[str, Mapping[int, Any]]
) -> dict[str, dict[str, Any]]:
    """The reference maps for the ids the returned rows hold, keyed by string ids as Brightpearl does."""
    reference: dict[str, dict[str, Any]] = {}
    for column in columns:
        if column.reference_data is None:
            continue
        lookup = names.get(column.reference_data, {})
        # Look up the page's ids (at most 500), never the map's keys: a map may cover 100,000 products.
        page_ids: set[Any] = {row.get(column.name) for row in page}
        ids = sorted(value for value in page_ids if isinstance(value, int) and value in lookup)
        if ids:
            entries = reference.setdefault(column.reference_data, {})
            entries.update({str(value): lookup[value] for value in ids})
    return reference
