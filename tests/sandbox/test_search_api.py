"""``order-search`` over real HTTP, compared with the recorded Brightpearl answer."""

import json

import pytest

from tests.recorded import load
from tests.sandbox.conftest import Client, WallClock

RECORDED = json.loads(load("order_search.yml.0.txt").body)
RECORDED_BAD_PARAM = load("order_search_bad_param.yml.0.txt")
TIMESTAMP_COLUMNS = {"orderId", "createdOn", "taxDate", "deliveryDate"}


async def make_the_recorded_orders(client: Client) -> list[int]:
    """An SO, PO, SC and PC with reference #0001, as the recording made them."""
    ids = []
    for order_type in ("SO", "PO", "SC", "PC"):
        ids += await client.orders(1, order_type=order_type, customer_ref="#0001")
    return ids


async def test_the_answer_has_the_recorded_structure(client: Client) -> None:
    await client.orders(2)  # not #0001: the filter leaves them out
    await make_the_recorded_orders(client)
    reply = await client.bp("GET", "order-service/order-search", params={"customerRef": "#0001"})
    assert reply.status == 200
    body = reply.body
    assert list(body) == ["response", "reference"]  # reference beside response, not in it
    assert list(body["response"]) == list(RECORDED["response"])
    meta, recorded_meta = body["response"]["metaData"], RECORDED["response"]["metaData"]
    assert list(meta) == list(recorded_meta)
    assert meta["columns"] == recorded_meta["columns"]
    assert meta["sorting"] == recorded_meta["sorting"]
    assert {k: meta[k] for k in list(meta)[:5]} == {k: recorded_meta[k] for k in list(meta)[:5]}
    assert body["reference"] == RECORDED["reference"]
    names = [column["name"] for column in meta["columns"]]
    for row, recorded_row in zip(body["response"]["results"], RECORDED["response"]["results"], strict=True):
        assert [type(value) for value in row] == [type(value) for value in recorded_row]
        ours = {n: v for n, v in zip(names, row, strict=True) if n not in TIMESTAMP_COLUMNS}
        theirs = {n: v for n, v in zip(names, recorded_row, strict=True) if n not in TIMESTAMP_COLUMNS}
        assert ours == theirs  # updatedOn null, contact 200/418, statuses 3/6/10/12, ...
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert reply.headers["Message-Type"] == "bulk-data-search"


async def test_new_orders_have_null_updated_on_until_they_change(client: Client, wall_clock: WallClock) -> None:
    first, second = await client.orders(2)
    wall_clock.advance(90)
    assert (await client.control("PUT", f"/accounts/acme/orders/{second}/status", {"status_id": 4})).status == 200
    rows = (await client.search(columns="orderId,updatedOn,orderStatusId"))["response"]["results"]
    assert rows == [[first, None, 3], [second, "2026-11-26T04:01:30.000-06:00", 4]]


@pytest.mark.parametrize(
    ("account", "expected"),
    [("acme", "2026-11-26T04:00:00.000-06:00"), ("kiwi", "2026-11-26T21:00:00.000+11:00")],
)
async def test_timestamps_are_rendered_in_the_account_offset(client: Client, account: str, expected: str) -> None:
    await client.orders(1, account=account)
    answer = await client.search(account, columns="createdOn,taxDate")
    assert answer["response"]["results"][0][0] == expected


async def test_paging_through_a_burst_sharing_one_second_is_stable(client: Client) -> None:
    ids = await client.orders(30)
    seen: list[int] = []
    first = 1
    for _ in range(10):  # 30 rows in pages of 7: five pages
        answer = await client.search(
            columns="orderId,createdOn", sort="createdOn.ASC", pageSize="7", firstResult=str(first)
        )
        meta = answer["response"]["metaData"]
        page = [row[0] for row in answer["response"]["results"]]
        assert (meta["firstResult"], meta["lastResult"], meta["resultsReturned"]) == (
            first,
            first + len(page) - 1,
            len(page),
        )
        assert meta["resultsAvailable"] == 30
        seen += page
        if not meta["morePagesAvailable"]:
            break
        first = meta["lastResult"] + 1
    assert seen == ids  # every order once, ties in id order across page boundaries
    descending = await client.search(columns="orderId", sort="createdOn.DESC", pageSize="7", firstResult="8")
    assert [row[0] for row in descending["response"]["results"]] == ids[7:14]


async def test_page_size_is_at_most_500(client: Client) -> None:
    await client.orders(501)
    for params in ({}, {"pageSize": "1000"}):
        meta = (await client.search(columns="orderId", **params))["response"]["metaData"]
        assert (meta["resultsReturned"], meta["lastResult"], meta["morePagesAvailable"]) == (500, 500, True)
    last = (await client.search(columns="orderId", firstResult="501"))["response"]
    assert last["results"] == [[501]]
    assert last["metaData"]["morePagesAvailable"] is False


async def ids_for(client: Client, **params: str) -> list[int]:
    answer = await client.search(columns="orderId", **params)
    return [row[0] for row in answer["response"]["results"]]


async def test_period_filters_with_z_and_offsets_inclusive(client: Client, wall_clock: WallClock) -> None:
    early = await client.orders(3)  # 10:00:00Z
    wall_clock.advance(60)
    late = await client.orders(2)  # 10:01:00Z
    cases: list[tuple[str, list[int]]] = [
        ("2026-11-26T10:01:00Z/", late),
        ("2026-11-26T10:00:00Z/", early + late),
        ("/2026-11-26T10:00:00Z", early),
        ("2026-11-26T10:00:00Z/2026-11-26T10:00:59.999Z", early),
        ("2026-11-26T04:01:00-06:00/", late),
        ("2026-11-26T21:00:30+11:00/", late),  # '+' must be URL-encoded, as it is here
        ("2026-11-26T04:01:00.000-06:00/", late),  # Brightpearl's own rendering, fed back
        ("/2026-11-26T09:59:59Z", []),
    ]
    for period, expected in cases:
        assert await ids_for(client, createdOn=period) == expected, period


async def test_updated_on_filter_skips_orders_never_updated(client: Client, wall_clock: WallClock) -> None:
    ids = await client.orders(3)
    assert await ids_for(client, updatedOn="/") == []
    assert await ids_for(client, updatedOn="2000-01-01T00:00:00Z/") == []
    wall_clock.advance(5)
    await client.control("PUT", f"/accounts/acme/orders/{ids[1]}/status", {"status_id": 5})
    assert await ids_for(client, updatedOn="2026-11-26T10:00:05Z/") == [ids[1]]
    assert await ids_for(client, updatedOn="2026-11-26T10:00:06Z/") == []


async def test_id_integer_and_string_filters(client: Client) -> None:
    so = await client.orders(3, customer_ref="A")
    po = await client.orders(2, order_type="PO", customer_ref="B")
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"orderId": f"{so[0]}-{so[2]},{po[1]}"}, [*so, po[1]]),
        ({"orderTypeId": "2"}, po),
        ({"orderTypeId": "1,2", "customerRef": "B"}, po),
        ({"warehouseId": "2"}, so + po),
        ({"warehouseId": "3"}, []),
        ({"orderStatusId": "6"}, po),
        ({"contactId": "200"}, so),
        ({"customerRef": "A"}, so),
        ({"customerRef": "a"}, []),
    ]
    for params, expected in cases:
        assert await ids_for(client, **params) == expected, params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"orderStatusId": "BAD PARAM"}, "The filter orderStatusId=BAD PARAM cannot be parsed as: INTEGER"),
        ({"orderId": "BAD PARAM"}, "The filter orderId=BAD PARAM cannot be parsed as: IDSET"),
        ({"createdOn": "BAD PARAM"}, "The filter createdOn=BAD PARAM cannot be parsed as: PERIOD"),
        (
            {"updatedOn": "2026-11-26T10:00:00 11:00/"},
            "The filter updatedOn=2026-11-26T10:00:00 11:00/ cannot be parsed as: PERIOD",
        ),
    ],
)
async def test_a_bad_filter_is_a_500_as_recorded(client: Client, params: dict[str, str], message: str) -> None:
    reply = await client.bp("GET", "order-service/order-search", params=params)
    assert reply.status == 500
    assert reply.body == {"errors": [{"code": "CMNC-018", "message": message}]}
    assert reply.headers["Message-Type"] == "bulk-data-search"


async def test_the_recorded_bad_filter_answer_byte_for_byte(client: Client) -> None:
    reply = await client.bp("GET", "order-service/order-search?orderStatusId=BAD%20PARAM")
    assert (reply.status, reply.body) == (RECORDED_BAD_PARAM.status, json.loads(RECORDED_BAD_PARAM.body))


@pytest.mark.parametrize("params", [{"columns": "orderId,nope"}, {"sort": "nope.ASC"}, {"sort": "orderId.SIDEWAYS"}])
async def test_unknown_columns_are_a_500_with_errors(client: Client, params: dict[str, str]) -> None:
    reply = await client.bp("GET", "order-service/order-search", params=params)
    assert reply.status == 500
    [error] = reply.body["errors"]
    assert set(error) == {"code", "message"}


async def test_nothing_found(client: Client) -> None:
    await client.orders(2)
    answer = await client.search(orderId="99")
    meta = answer["response"]["metaData"]
    assert answer["response"]["results"] == []
    assert answer["reference"] == {}
    keys = ("morePagesAvailable", "resultsAvailable", "resultsReturned", "firstResult", "lastResult")
    assert [meta[key] for key in keys] == [False, 0, 0, 0, 0]
    assert len(meta["columns"]) == 19


async def test_chosen_columns_shape_rows_metadata_and_reference(client: Client) -> None:
    await client.orders(1, order_type="SC")
    answer = await client.search(columns="orderStatusId,orderId")
    assert answer["response"]["results"] == [[10, 1]]
    assert [c["name"] for c in answer["response"]["metaData"]["columns"]] == ["orderStatusId", "orderId"]
    assert answer["reference"] == {"orderStatusNames": {"10": "Sales credit"}}


async def test_unknown_parameters_are_ignored(client: Client) -> None:
    ids = await client.orders(2)
    assert await ids_for(client, includeOptional="customFields", nonsense="x") == ids
