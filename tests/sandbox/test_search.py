"""Search parsing and answering, pure: PERIOD filters, sort, columns, paging and reference maps."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.sandbox.orders import ORDER_SEARCH_TABLE
from relay.sandbox.search import (
    Column,
    DataType,
    Period,
    SearchError,
    SearchTable,
    parse_columns,
    parse_filter,
    parse_period,
    parse_query,
    parse_sort,
    run_search,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset_minutes", "expected"),
    [
        ("2026-01-01T00:00:00Z/", 0, Period(utc(2026, 1, 1), None)),
        ("/2026-01-31T23:59:59+11:00", 0, Period(None, utc(2026, 1, 31, 12, 59, 59))),
        (
            "2026-01-01T10:00:00-06:00/2026-01-01T10:00:00.500Z",
            0,
            Period(utc(2026, 1, 1, 16), utc(2026, 1, 1, 10, 0, 0, 500_000)),
        ),
        ("2026-01-01T00:00:00.000+00:00/", 0, Period(utc(2026, 1, 1), None)),
        ("/", 0, Period(None, None)),
        ("2026-01-01/2026-01-02", -360, Period(utc(2026, 1, 1, 6), utc(2026, 1, 2, 6))),  # no offset: the account's
        ("2026-01-01T00:00:00/", 660, Period(utc(2025, 12, 31, 13), None)),
        (" 2026-01-01T00:00:00Z / ", 0, Period(utc(2026, 1, 1), None)),
    ],
)
def test_parse_period(text: str, offset_minutes: int, expected: Period) -> None:
    assert parse_period(text, offset_minutes) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00Z",  # no slash
        "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z/",
        "yesterday/",
        "/tomorrow",
        "2026-01-01T10:00:00 11:00/",  # an offset's '+' sent unencoded arrives as a space
        "2026-13-01T00:00:00Z/",
    ],
)
def test_parse_period_refuses(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (any ValueError, TimestampError included)
        parse_period(text)


@pytest.mark.parametrize(
    ("period", "value", "inside"),
    [
        (Period(utc(2026, 1, 1), None), utc(2026, 1, 1), True),  # inclusive from
        (Period(None, utc(2026, 1, 1)), utc(2026, 1, 1), True),  # inclusive to
        (Period(utc(2026, 1, 1), utc(2026, 1, 2)), utc(2026, 1, 2, 0, 0, 1), False),
        (Period(utc(2026, 1, 1), None), utc(2025, 12, 31, 23, 59, 59), False),
        (Period(None, None), utc(2000, 1, 1), True),
        (Period(None, None), None, False),  # a null updatedOn never matches
    ],
)
def test_period_contains(period: Period, value: datetime | None, inside: bool) -> None:
    assert period.contains(value) is inside


@pytest.mark.parametrize(
    ("column", "text", "matching", "not_matching"),
    [
        ("orderId", "1-3,7", [1, 2, 3, 7], [0, 4, 8, None]),
        ("orderTypeId", "2", [2], [1, 3]),
        ("orderStatusId", "5", [5], [4, 6, None]),
        ("contactId", "-1", [-1], [1]),
        ("customerRef", "#0001", ["#0001"], ["#0002", "", None]),
        ("createdOn", "2026-01-01T00:00:00Z/", [utc(2026, 1, 1), utc(2027, 1, 1)], [utc(2025, 1, 1), None]),
    ],
)
def test_parse_filter(column: str, text: str, matching: list[Any], not_matching: list[Any]) -> None:
    found = ORDER_SEARCH_TABLE.column(column)
    assert found is not None
    test = parse_filter(found, text)
    assert [test(value) for value in matching] == [True] * len(matching)
    assert [test(value) for value in not_matching] == [False] * len(not_matching)


@pytest.mark.parametrize(
    ("column", "text", "data_type"),
    [
        ("orderStatusId", "BAD PARAM", "INTEGER"),
        ("contactId", "1.5", "INTEGER"),
        ("orderId", "BAD PARAM", "IDSET"),
        ("orderId", "5-1", "IDSET"),
        ("orderId", "1-999999999", "IDSET"),  # would expand to a billion ids
        ("createdOn", "BAD PARAM", "PERIOD"),
        ("updatedOn", "2026-01-01", "PERIOD"),
    ],
)
def test_parse_filter_refuses_with_brightpearls_message(column: str, text: str, data_type: str) -> None:
    found = ORDER_SEARCH_TABLE.column(column)
    assert found is not None
    with pytest.raises(SearchError) as raised:
        parse_filter(found, text)
    assert raised.value.code == "CMNC-018"
    assert raised.value.message == f"The filter {column}={text} cannot be parsed as: {data_type}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, [("orderId", False)]),
        ("", [("orderId", False)]),
        ("createdOn.DESC", [("createdOn", True)]),
        ("createdOn.asc", [("createdOn", False)]),
        ("updatedOn", [("updatedOn", False)]),
        ("orderStatusId.DESC,orderId.ASC", [("orderStatusId", True), ("orderId", False)]),
        ("createdOn|DESC", [("createdOn", True)]),  # R-JAVA's form: UNCONFIRMED, so a lenient account takes it
    ],
)
def test_parse_sort(text: str | None, expected: list[tuple[str, bool]]) -> None:
    assert [(key.column.name, key.descending) for key in parse_sort(ORDER_SEARCH_TABLE, text)] == expected


@pytest.mark.parametrize("text", ["nope.ASC", "createdOn.UP", "createdOn|UP", ".ASC"])
def test_parse_sort_refuses(text: str) -> None:
    with pytest.raises(SearchError):
        parse_sort(ORDER_SEARCH_TABLE, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("orderId", ["orderId"]),
        ("createdOn,orderId", ["createdOn", "orderId"]),
        (" orderId , updatedOn ,", ["orderId", "updatedOn"]),
    ],
)
def test_parse_columns(text: str, expected: list[str]) -> None:
    assert [column.name for column in parse_columns(ORDER_SEARCH_TABLE, text)] == expected


def test_all_columns_in_default_order_when_none_are_chosen() -> None:
    assert parse_columns(ORDER_SEARCH_TABLE, None) == list(ORDER_SEARCH_TABLE.columns)
    assert len(ORDER_SEARCH_TABLE.columns) == 19


def test_parse_columns_refuses_an_unknown_one() -> None:
    with pytest.raises(SearchError, match="The column reference does not exist"):
        parse_columns(ORDER_SEARCH_TABLE, "orderId,reference")


@pytest.mark.parametrize(
    ("params", "page_size", "first_result"),
    [
        ({}, 500, 1),
        ({"pageSize": "7", "firstResult": "8"}, 7, 8),
        ({"pageSize": "1000"}, 500, 1),  # clamped to Brightpearl's maximum
        ({"pageSize": "0", "firstResult": "0"}, 1, 1),
        ({"pageSize": "", "firstResult": ""}, 500, 1),
    ],
)
def test_parse_query_paging(params: dict[str, str], page_size: int, first_result: int) -> None:
    query = parse_query(ORDER_SEARCH_TABLE, params)
    assert (query.page_size, query.first_result) == (page_size, first_result)


@pytest.mark.parametrize("params", [{"pageSize": "ten"}, {"firstResult": "1.5"}])
def test_parse_query_refuses_bad_paging(params: dict[str, str]) -> None:
    with pytest.raises(SearchError, match="cannot be parsed as: INTEGER"):
        parse_query(ORDER_SEARCH_TABLE, params)


def test_parse_query_ignores_unknown_and_empty_parameters() -> None:
    query = parse_query(ORDER_SEARCH_TABLE, {"nonsense": "1", "orderStatusId": "", "orderId": "3"})
    assert [name for name, _ in query.filters] == ["orderId"]


TABLE = SearchTable(
    (Column("id", DataType.IDSET), Column("kind", DataType.INTEGER, "kindNames"), Column("at", DataType.PERIOD)),
    id_column="id",
)
KIND_NAMES = {"kindNames": {1: "one", 2: "two", 3: "three"}}
ROWS: list[dict[str, Any]] = [
    {"id": 5, "kind": 1, "at": utc(2026, 1, 1, 10)},
    {"id": 1, "kind": 2, "at": utc(2026, 1, 1, 10)},
    {"id": 3, "kind": 1, "at": None},
    {"id": 2, "kind": 2, "at": utc(2026, 1, 1, 9)},
    {"id": 4, "kind": 1, "at": utc(2026, 1, 1, 10)},
]


def search(**params: str) -> dict[str, Any]:
    return run_search(TABLE, ROWS, parse_query(TABLE, params), offset_minutes=60, reference=KIND_NAMES)


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({}, [1, 2, 3, 4, 5]),
        ({"sort": "id.DESC"}, [5, 4, 3, 2, 1]),
        ({"sort": "at.ASC"}, [3, 2, 1, 4, 5]),  # null first; ties in id order
        ({"sort": "at.DESC"}, [1, 4, 5, 2, 3]),  # ties still in id order, null last
        ({"sort": "kind.ASC,at.DESC"}, [4, 5, 3, 1, 2]),
        ({"at": "2026-01-01T10:00:00Z/"}, [1, 4, 5]),
        ({"at": "/"}, [1, 2, 4, 5]),
        ({"kind": "2", "id": "1-3"}, [1, 2]),
    ],
)
def test_run_search_filters_and_sorts(params: dict[str, str], ids: list[int]) -> None:
    assert [row[0] for row in search(**params)["response"]["results"]] == ids


@pytest.mark.parametrize(
    ("first", "size", "ids", "meta"),
    [
        ("1", "2", [1, 2], (True, 5, 2, 1, 2)),
        ("3", "2", [3, 4], (True, 5, 2, 3, 4)),
        ("5", "2", [5], (False, 5, 1, 5, 5)),
        ("4", "2", [4, 5], (False, 5, 2, 4, 5)),
        ("6", "2", [], (False, 5, 0, 0, 0)),
        ("1", "500", [1, 2, 3, 4, 5], (False, 5, 5, 1, 5)),
    ],
)
def test_run_search_pages(first: str, size: str, ids: list[int], meta: tuple[bool, int, int, int, int]) -> None:
    answer = search(firstResult=first, pageSize=size)["response"]
    keys = ("morePagesAvailable", "resultsAvailable", "resultsReturned", "firstResult", "lastResult")
    assert [row[0] for row in answer["results"]] == ids
    assert tuple(answer["metaData"][key] for key in keys) == meta


def test_run_search_renders_times_in_the_offset_and_names_only_returned_ids() -> None:
    answer = search(kind="1", sort="id.ASC", pageSize="2")
    assert answer["response"]["results"] == [[3, 1, None], [4, 1, "2026-01-01T11:00:00.000+01:00"]]
    assert answer["reference"] == {"kindNames": {"1": "one"}}


def test_run_search_with_chosen_columns() -> None:
    answer = search(columns="at,id")
    assert answer["response"]["results"][0] == ["2026-01-01T11:00:00.000+01:00", 1]
    assert [c["name"] for c in answer["response"]["metaData"]["columns"]] == ["at", "id"]
    assert answer["reference"] == {}  # the kind column was not asked for


def test_run_search_with_nothing_found() -> None:
    assert search(id="99") == {
        "response": {
            "results": [],
            "metaData": {
                "morePagesAvailable": False,
                "resultsAvailable": 0,
                "resultsReturned": 0,
                "firstResult": 0,
                "lastResult": 0,
                "columns": [column.describe() for column in TABLE.columns],
                "sorting": [{"filterable": TABLE.columns[0].describe(), "direction": "ASC"}],
            },
        },
        "reference": {},
    }


@settings(max_examples=60, deadline=None)
@given(
    created=st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=40),
    page_size=st.integers(min_value=1, max_value=9),
    descending=st.booleans(),
)
def test_pages_put_together_are_the_whole_result_once(created: list[int], page_size: int, descending: bool) -> None:
    """However many rows share a timestamp, paging a sort on it neither skips nor repeats a row."""
    rows = [{"id": i + 1, "kind": 1, "at": utc(2026, 1, 1, 10, 0, s)} for i, s in enumerate(created)]
    params = {"sort": "at.DESC" if descending else "at.ASC", "pageSize": str(page_size)}
    whole = run_search(TABLE, rows, parse_query(TABLE, {**params, "pageSize": "500"}), offset_minutes=0, reference={})
    seen: list[int] = []
    first = 1
    for _ in range(len(rows) + 1):
        query = parse_query(TABLE, {**params, "firstResult": str(first)})
        answer = run_search(TABLE, rows, query, offset_minutes=0, reference={})["response"]
        seen += [row[0] for row in answer["results"]]
        if not answer["metaData"]["morePagesAvailable"]:
            break
        first = answer["metaData"]["lastResult"] + 1
    assert seen == [row[0] for row in whole["response"]["results"]]
    assert sorted(seen) == [row["id"] for row in rows]


FLAGS = SearchTable(
    (
        Column("id", DataType.IDSET),
        Column("tracked", DataType.BOOLEAN),
        Column("name", DataType.SEARCH_STRING),
        Column("channel", DataType.STRING, filterable=False),
        Column("category", DataType.IDSET, sortable=False),
    ),
    id_column="id",
)


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("true", [True], [False, None, "true", 1]),
        ("false", [False], [True, None, 0]),
        ("TRUE", [True], [False]),
        (" false ", [False], [True]),
    ],
)
def test_boolean_filters(text: str, matching: list[Any], not_matching: list[Any]) -> None:
    test = parse_filter(Column("shipped", DataType.BOOLEAN), text)
    assert [test(value) for value in matching] == [True] * len(matching)
    assert [test(value) for value in not_matching] == [False] * len(not_matching)


@pytest.mark.parametrize("text", ["yes", "1", "0", "t", "truthy", "BAD PARAM"])
def test_boolean_filters_refuse_anything_but_true_and_false(text: str) -> None:
    with pytest.raises(SearchError) as raised:
        parse_filter(Column("shipped", DataType.BOOLEAN), text)
    assert (raised.value.code, raised.value.message) == (
        "CMNC-018",
        f"The filter shipped={text} cannot be parsed as: BOOLEAN",
    )


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("Test Product", ["Anthony Test Product", "Test Product BSITC 100X", "Bundle of 5 Test Products"], ["Test"]),
        ("test product", ["Anthony Test Product"], ["Product Test", None]),
        ("@business.com", ["foo@business.com"], ["foo@business.co", ""]),
    ],
)
def test_search_string_filters_match_a_part_in_any_case(
    text: str, matching: list[Any], not_matching: list[Any]
) -> None:
    test = parse_filter(Column("productName", DataType.SEARCH_STRING), text)
    assert [test(value) for value in matching] == [True] * len(matching)
    assert [test(value) for value in not_matching] == [False] * len(not_matching)


def test_columns_describe_whether_they_sort_and_filter() -> None:
    described = {
        column["name"]: (column["sortable"], column["filterable"])
        for column in run_search(FLAGS, [], parse_query(FLAGS, {}), offset_minutes=0, reference={})["response"][
            "metaData"
        ]["columns"]
    }
    assert described == {
        "id": (True, True),
        "tracked": (True, True),
        "name": (True, True),
        "channel": (True, False),
        "category": (False, True),
    }


def test_a_column_that_cannot_filter_ignores_its_parameter_and_one_that_cannot_sort_refuses() -> None:
    assert parse_query(FLAGS, {"channel": "Brightpearl", "tracked": "true"}).filters[0][0] == "tracked"
    with pytest.raises(SearchError, match="not sortable"):
        parse_sort(FLAGS, "category.ASC")


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({}, None),
        ({"tracked": "true"}, None),
        ({"id": "3-5,9"}, frozenset({3, 4, 5, 9})),
        ({"category": "3-5"}, None),  # an IDSET filter, but not on the id column
    ],
)
def test_a_query_tells_the_ids_its_id_filter_allows(params: dict[str, str], ids: frozenset[int] | None) -> None:
    assert parse_query(FLAGS, params).ids == ids


def test_boolean_and_search_string_filters_in_a_search() -> None:
    rows = [
        {"id": 1, "tracked": True, "name": "Red shirt", "channel": "x", "category": 1},
        {"id": 2, "tracked": False, "name": "Red hat", "channel": "x", "category": 1},
        {"id": 3, "tracked": True, "name": "Blue shirt", "channel": "x", "category": 1},
    ]
    query = parse_query(FLAGS, {"tracked": "true", "name": "SHIRT", "columns": "id,tracked"})
    answer = run_search(FLAGS, rows, query, offset_minutes=0, reference={}, in_id_order=True)
    assert answer["response"]["results"] == [[1, True], [3, True]]


def test_reference_data_may_be_lists_and_only_the_pages_ids_are_looked_up() -> None:
    class Membership(dict[int, list[int]]):
        def keys(self) -> Any:  # a search must not walk a 100,000-product map
            raise AssertionError("keys() walked")

    table = SearchTable((Column("id", DataType.IDSET, "membership"),), id_column="id")
    rows = [{"id": i} for i in range(1, 6)]
    lookup = Membership({i: [296] for i in range(1, 100)})
    answer = run_search(
        table, rows, parse_query(table, {"pageSize": "2"}), offset_minutes=0, reference={"membership": lookup}
    )
    assert answer["reference"] == {"membership": {"1": [296], "2": [296]}}


@pytest.mark.parametrize(
    ("text", "lenient", "strict"),
    [
        ("createdOn.DESC", [("createdOn", True)], [("createdOn", True)]),
        ("createdOn.desc", [("createdOn", True)], None),
        ("createdOn", [("createdOn", False)], None),
        ("createdOn|DESC", [("createdOn", True)], None),
        ("createdOn.ASC,orderId.DESC", [("createdOn", False), ("orderId", True)], None),
        (" createdOn.ASC", [("createdOn", False)], None),
    ],
)
def test_a_strict_sort_is_one_column_dot_direction(
    text: str, lenient: list[tuple[str, bool]], strict: list[tuple[str, bool]] | None
) -> None:
    assert [(key.column.name, key.descending) for key in parse_sort(ORDER_SEARCH_TABLE, text)] == lenient
    if strict is None:
        with pytest.raises(SearchError):
            parse_sort(ORDER_SEARCH_TABLE, text, strict=True)
    else:
        assert [(k.column.name, k.descending) for k in parse_sort(ORDER_SEARCH_TABLE, text, strict=True)] == strict


@pytest.mark.parametrize(
    ("params", "page_size", "first_result"),
    [({}, 500, 1), ({"pageSize": "900", "firstResult": "0"}, 500, 1), ({"pageSize": "-3"}, 1, 1)],
)
def test_lenient_paging_is_clamped(params: dict[str, str], page_size: int, first_result: int) -> None:
    query = parse_query(ORDER_SEARCH_TABLE, params)
    assert (query.page_size, query.first_result) == (page_size, first_result)


def test_a_lenient_search_ignores_what_a_strict_one_refuses() -> None:
    params = {"nosuch": "1", "customerRef": "", "orderId": "1-3"}
    query = parse_query(ORDER_SEARCH_TABLE, params)
    assert [name for name, _ in query.filters] == ["orderId"]
    assert query.ids == frozenset({1, 2, 3})
    for doubtful in ({"nosuch": "1"}, {"customerRef": ""}, {"orderId": "1-3"}):
        with pytest.raises(SearchError):
            parse_query(ORDER_SEARCH_TABLE, doubtful, strict=True)
