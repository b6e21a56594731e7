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

A *strict* account (``strict`` on :func:`parse_query`) refuses everything doubtful the way Brightpearl refuses a
bad filter: a parameter naming no column, a filter on a column that cannot be filtered or whose filtering is
UNCONFIRMED (:attr:`Column.filter_confirmed`), an empty filter, a range in an ``IDSET`` filter (documented as
accepted, reported rejected: API.md 5, 8.1), a sort other than one ``column.ASC|DESC``, ``pageSize`` outside
1-500 and ``firstResult`` below 1. A lenient account takes the documented forms and the doubtful ones alike
(several sort keys, ``column|DESC``, ranges), ignores what Brightpearl is recorded to ignore and clamps paging.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from relay.sandbox.envelope import COLUMN_ERROR_CODE, FILTER_ERROR_CODE, response
from relay.sandbox.idsets import MAX_EXPANDED_IDS, IdSetError, expand, parse_parts
from relay.sandbox.times import TimestampError, format_in_offset, parse_timestamp
from subscriptions.core.errors import RelayError

MAX_PAGE_SIZE = 500
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_STRICT_INTEGER = re.compile(r"-?\d+", re.ASCII)
# What a search takes besides filters (API.md 5); a strict account refuses any other name that is not a column.
PAGING_PARAMETERS = frozenset({"columns", "sort", "pageSize", "firstResult"})


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
    # False where no source shows Brightpearl filtering on the column (API.md 5.2 lists it, nothing more): a
    # lenient account filters on it, a strict one refuses the filter so that the relay does not come to rely on it
    filter_confirmed: bool = True

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


def parse_period(text: str, offset_minutes: int = 0, *, strict: bool = False) -> Period:
    """``2026-01-01T00:00:00Z/``, ``/2026-01-31T23:59:59+11:00``, ``a/b``; ``ValueError`` otherwise. A date or
    time without an offset is read in the account's own zone, as the account's users would mean it; blanks
    around either side are tolerated unless ``strict``."""
    start_text, sep, end_text = text.partition("/")
    if not sep or "/" in end_text:
        raise ValueError(f"a period is 'from/to', not {text!r}")
    if not strict:
        start_text, end_text = start_text.strip(), end_text.strip()
    start = parse_timestamp(start_text, offset_minutes) if start_text else None
    end = parse_timestamp(end_text, offset_minutes) if end_text else None
    return Period(start, end)


Predicate = Callable[[Any], bool]
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class IdSetFilter:
    """An ``IDSET`` filter: a predicate that also tells which ids it lets through, so they can be looked up."""

    ids: frozenset[int]

    def __call__(self, value: Any) -> bool:
        return value in self.ids


def parse_boolean(text: str, *, strict: bool = False) -> bool:
    """``true`` or ``false`` (any case and blanks around it unless ``strict``); ``ValueError`` for anything else,
    ``1`` and ``yes`` included."""
    try:
        return _BOOLEANS[text if strict else text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is neither true nor false") from None


def _id_set(text: str, strict: bool) -> IdSetFilter:
    parts = parse_parts(text, strict=strict)
    if strict and any(part.is_range for part in parts):
        raise ValueError(f"{text!r} holds a range; ranges in IDSET filters are reported rejected (API.md 8.1)")
    return IdSetFilter(frozenset(expand(parts, max_ids=MAX_EXPANDED_IDS)))


def _integer(text: str, strict: bool) -> int:
    if not (_STRICT_INTEGER if strict else _INTEGER).fullmatch(text if strict else text.strip()):
        raise ValueError(f"{text!r} is not one integer")
    return int(text)


def _contains(text: str) -> Predicate:
    wanted = text.strip().casefold()
    return lambda value: isinstance(value, str) and wanted in value.casefold()


def parse_filter(column: Column, text: str, offset_minutes: int = 0, *, strict: bool = False) -> Predicate:
    """A test of a row's value for ``column={text}``; :class:`SearchError` (``CMNC-018``, as recorded) when
    ``text`` is not of its type: an ``INTEGER`` takes one integer, never a range or a list; only a ``PERIOD`` takes
    ``from/to``."""
    try:
        if column.data_type is DataType.IDSET:
            return _id_set(text, strict)
        if column.data_type is DataType.INTEGER:
            number = _integer(text, strict)
            return lambda value: value == number
        if column.data_type is DataType.BOOLEAN:
            flag = parse_boolean(text, strict=strict)
            return lambda value: value is flag
        if column.data_type is DataType.PERIOD:
            return parse_period(text, offset_minutes, strict=strict).contains
    except (ValueError, IdSetError, TimestampError) as error:
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


_DIRECTIONS = ("ASC", "DESC")


def _sort_key(table: SearchTable, part: str, strict: bool) -> SortKey:
    """One sort key: ``column.ASC|DESC`` as documented; leniently also ``column|DESC`` (R-JAVA's form, whether
    Brightpearl takes it is UNCONFIRMED), any case, or a column alone (ascending)."""
    name, sep, direction = part.rpartition(".")
    if not sep and not strict:
        name, sep, direction = part.rpartition("|")
    if not sep:
        if strict:
            raise SearchError(COLUMN_ERROR_CODE, f"The sort {part} is not column.ASC or column.DESC")
        name, direction = direction, "ASC"
    if (direction if strict else direction.upper()) not in _DIRECTIONS:
        raise SearchError(COLUMN_ERROR_CODE, f"The sort {part} is not column.ASC or column.DESC")
    column = _known(table, name)
    if not column.sortable:
        raise SearchError(COLUMN_ERROR_CODE, f"The column {name} is not sortable")
    return SortKey(column, direction.upper() == "DESC")


def parse_sort(table: SearchTable, text: str | None, *, strict: bool = False) -> list[SortKey]:
    """``createdOn.DESC``; the id column ascending when absent or empty. Leniently several keys may be given,
    comma-separated; a strict account takes one, since how Brightpearl sorts by several is UNCONFIRMED."""
    if not text or not text.strip():
        return [SortKey(_known(table, table.id_column))]
    parts = text.split(",") if strict else [part.strip() for part in text.split(",")]
    if strict and len(parts) > 1:
        raise SearchError(COLUMN_ERROR_CODE, f"The sort {text} names more than one column")
    return [_sort_key(table, part, strict) for part in parts]


def parse_columns(table: SearchTable, text: str | None, *, strict: bool = False) -> list[Column]:
    """The columns named by ``columns=a,b,c`` in that order; all of them, in default order, when absent. An
    unknown name is refused; leniently blanks and empty names are passed over, strictly they are refused too."""
    if not text or not text.strip():
        return list(table.columns)
    if strict:
        return [_known(table, name) for name in text.split(",")]
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


def _refuse_doubtful_filters(table: SearchTable, params: Mapping[str, str]) -> None:
    """A strict account's refusals of parameters that a lenient one ignores."""
    for name, text in params.items():
        if name in PAGING_PARAMETERS:
            continue
        column = table.column(name)
        if column is None:
            raise SearchError(COLUMN_ERROR_CODE, f"The filter {name} is not a column of this search")
        if not column.filterable:
            raise SearchError(COLUMN_ERROR_CODE, f"The column {name} cannot be filtered")
        if not column.filter_confirmed:
            raise SearchError(COLUMN_ERROR_CODE, f"The column {name} is not known to be filterable")
        if not text:
            raise SearchError(FILTER_ERROR_CODE, f"The filter {name}= cannot be parsed as: {column.data_type.value}")


def _paging(params: Mapping[str, str], strict: bool) -> tuple[int, int]:
    """``pageSize`` and ``firstResult``: leniently clamped to 1-500 and 1 on; strictly refused outside them."""
    page_size = parse_count("pageSize", params.get("pageSize"), MAX_PAGE_SIZE)
    first_result = parse_count("firstResult", params.get("firstResult"), 1)
    if not strict:
        return max(1, min(MAX_PAGE_SIZE, page_size)), max(1, first_result)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SearchError(FILTER_ERROR_CODE, f"The parameter pageSize={page_size} is not from 1 to {MAX_PAGE_SIZE}")
    if first_result < 1:
        raise SearchError(FILTER_ERROR_CODE, f"The parameter firstResult={first_result} is below 1")
    return page_size, first_result


def parse_query(
    table: SearchTable, params: Mapping[str, str], offset_minutes: int = 0, *, strict: bool = False
) -> SearchQuery:
    """A :class:`SearchQuery` from query parameters. Leniently, parameters naming no column are ignored, as are
    empty ones and those naming a column that cannot be filtered; a ``strict`` account refuses them (see the
    module's docstring)."""
    if strict:
        _refuse_doubtful_filters(table, params)
    filters = tuple(
        (column.name, parse_filter(column, params[column.name], offset_minutes, strict=strict))
        for column in table.columns
        if column.filterable and params.get(column.name, "").strip()
    )
    page_size, first_result = _paging(params, strict)
    return SearchQuery(
        filters,
        tuple(parse_columns(table, params.get("columns"), strict=strict)),
        tuple(parse_sort(table, params.get("sort"), strict=strict)),
        page_size,
        first_result,
        table.id_column,
    )


def _sort_value(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)  # nulls first when ascending, last when descending


def _row_key(name: str) -> Callable[[Mapping[str, Any]], tuple[bool, Any]]:
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
        matching.sort(key=_row_key(table.id_column))
    for key in reversed(query.sort):  # stable sorts, last key first; ties stay in id order
        matching.sort(key=_row_key(key.column.name), reverse=key.descending)
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
