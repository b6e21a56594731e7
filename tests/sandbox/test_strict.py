"""A strict account over real HTTP: each thing it refuses that a lenient one takes, each refusal kept in the
request log with its reason; and the column types both kinds of account enforce (API.md 4, 5, 6.1, 8.1)."""

import asyncio
import contextlib
import io
from typing import Any

import aiohttp
import pytest

from relay.sandbox.app import serve_sandbox_forever
from tests.sandbox.conftest import Client

ORDERS = "order-service/order-search"
PRODUCTS = "product-service/product-search"
MOVEMENTS = "warehouse-service/goods-movement-search"


async def strict(client: Client, account: str = "acme") -> None:
    reply = await client.control("PATCH", f"/accounts/{account}", {"strict": True})
    assert reply.status == 200, reply.text
    assert reply.body["strict"] is True


async def refusals(client: Client) -> list[dict[str, Any]]:
    return list((await client.control("GET", "/accounts/acme/requests")).body["refusals"])


async def movement(client: Client) -> int:
    """A product with one goods movement (a receipt into warehouse 2); the product's id."""
    (product_id,) = await client.products(1)
    await client.ok("POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 2, "quantity": 3}, 201)
    return product_id


@pytest.mark.parametrize("mode", ["lenient", "strict"])
@pytest.mark.parametrize(
    ("column", "value"),
    [("productId", "1-5"), ("productId", "1,2"), ("warehouseId", "2-3"), ("productId", "BAD PARAM")],
)
async def test_integer_columns_take_one_integer_on_every_account(
    client: Client, mode: str, column: str, value: str
) -> None:
    if mode == "strict":
        await strict(client)
    reply = await client.bp("GET", MOVEMENTS, params={column: value})
    assert reply.status == 500
    assert reply.body == {
        "errors": [{"code": "CMNC-018", "message": f"The filter {column}={value} cannot be parsed as: INTEGER"}]
    }
    (refusal,) = await refusals(client)
    assert refusal["path"] == MOVEMENTS
    assert refusal["query"] == {column: value}
    assert (refusal["status"], refusal["code"]) == (500, "CMNC-018")
    assert refusal["reason"] == f"The filter {column}={value} cannot be parsed as: INTEGER"


async def test_goods_movements_are_filtered_by_product_and_goods_note(client: Client) -> None:
    product_id = await movement(client)
    await movement(client)
    rows = await client.rows(MOVEMENTS, productId=str(product_id))
    assert [row["productId"] for row in rows] == [product_id]
    note_id = rows[0]["goodsNoteId"]
    by_note = await client.rows(MOVEMENTS, goodsNoteId=f"{note_id},999")
    assert [row["goodsNoteId"] for row in by_note] == [note_id]
    types = {c["name"]: c["reportDataType"] for c in (await client.get(MOVEMENTS))["response"]["metaData"]["columns"]}
    assert (types["productId"], types["warehouseId"], types["goodsNoteId"]) == ("INTEGER", "INTEGER", "IDSET")


async def test_a_range_in_an_idset_filter_only_a_lenient_account_takes(client: Client) -> None:
    await client.orders(3)
    assert [row["orderId"] for row in await client.rows(ORDERS, orderId="1-2")] == [1, 2]
    assert await refusals(client) == []
    await strict(client)
    assert [row["orderId"] for row in await client.rows(ORDERS, orderId="1,2")] == [1, 2]  # a list is fine
    reply = await client.bp("GET", ORDERS, params={"orderId": "1-2"})
    assert reply.status == 500
    assert reply.body["errors"] == [
        {"code": "CMNC-018", "message": "The filter orderId=1-2 cannot be parsed as: IDSET"}
    ]
    (refusal,) = await refusals(client)
    assert refusal["reason"] == "The filter orderId=1-2 cannot be parsed as: IDSET"


@pytest.mark.parametrize(
    ("path", "params", "code", "reason"),
    [
        (ORDERS, {"nosuchColumn": "1"}, "CMNC-019", "The filter nosuchColumn is not a column of this search"),
        (PRODUCTS, {"salesChannelName": "Web"}, "CMNC-019", "The column salesChannelName cannot be filtered"),
        (MOVEMENTS, {"quantity": "3"}, "CMNC-019", "The column quantity is not known to be filterable"),
        (ORDERS, {"customerRef": ""}, "CMNC-018", "The filter customerRef= cannot be parsed as: STRING"),
        (
            ORDERS,
            {"sort": "createdOn.DESC,orderId.ASC"},
            "CMNC-019",
            "The sort createdOn.DESC,orderId.ASC names more than one column",
        ),
        (ORDERS, {"sort": "createdOn|DESC"}, "CMNC-019", "The sort createdOn|DESC is not column.ASC or column.DESC"),
        (ORDERS, {"sort": "createdOn"}, "CMNC-019", "The sort createdOn is not column.ASC or column.DESC"),
        (ORDERS, {"sort": "createdOn.desc"}, "CMNC-019", "The sort createdOn.desc is not column.ASC or column.DESC"),
        (ORDERS, {"pageSize": "501"}, "CMNC-018", "The parameter pageSize=501 is not from 1 to 500"),
        (ORDERS, {"pageSize": "0"}, "CMNC-018", "The parameter pageSize=0 is not from 1 to 500"),
        (ORDERS, {"firstResult": "0"}, "CMNC-018", "The parameter firstResult=0 is below 1"),
        (ORDERS, {"columns": "orderId,,createdOn"}, "CMNC-019", "The column  does not exist"),
        (PRODUCTS, {"stockTracked": "TRUE"}, "CMNC-018", "The filter stockTracked=TRUE cannot be parsed as: BOOLEAN"),
        (ORDERS, {"contactId": "+5"}, "CMNC-018", "The filter contactId=+5 cannot be parsed as: INTEGER"),
        (ORDERS, {"orderId": "5-5"}, "CMNC-018", "The filter orderId=5-5 cannot be parsed as: IDSET"),
        (
            ORDERS,
            {"createdOn": " 2026-01-01T00:00:00Z/"},
            "CMNC-018",
            "The filter createdOn= 2026-01-01T00:00:00Z/ cannot be parsed as: PERIOD",
        ),
    ],
)
async def test_what_only_a_lenient_search_takes(
    client: Client, path: str, params: dict[str, str], code: str, reason: str
) -> None:
    await client.orders(2)
    await client.products(1)
    await movement(client)
    assert (await client.bp("GET", path, params=params)).status == 200  # lenient: ignored, clamped or taken
    await strict(client)
    reply = await client.bp("GET", path, params=params)
    assert reply.status == 500
    assert reply.body == {"errors": [{"code": code, "message": reason}]}
    (refusal,) = await refusals(client)
    assert (refusal["method"], refusal["path"], refusal["query"]) == ("GET", path, params)
    assert (refusal["code"], refusal["reason"]) == (code, reason)


async def test_a_strict_search_takes_what_the_relay_sends(client: Client) -> None:
    await strict(client)
    await client.orders(3)
    params = {
        "columns": "orderId,updatedOn",
        "sort": "updatedOn.DESC",
        "pageSize": "500",
        "firstResult": "1",
        "createdOn": "2000-01-01T00:00:00Z/",
    }
    assert len(await client.rows(ORDERS, **params)) == 3
    assert await refusals(client) == []


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        (
            "order-service/order/1",
            {"includeOptional": "customFields,nullCustomFields,rows"},
            400,
            "includeOptional=rows is not known here",
        ),
        ("order-service/order/1", {"fields": "id"}, 400, "The parameter fields is not known to this resource"),
        ("product-service/product/10001", {"includeOptional": "stock"}, 400, "includeOptional=stock is not known here"),
        (
            "warehouse-service/product-availability/" + ",".join(map(str, range(10_001, 10_102))),
            {},
            400,
            "You asked for 101 ids; at most 100 may be requested at once",
        ),
        (
            "warehouse-service/order/*/goods-note/goods-out/1",
            {"pageSize": "5"},
            400,
            "The parameter pageSize is not known to this resource",
        ),
        (
            "order-service/order/1-1",
            {},
            500,
            "The ID set 1-1 cannot be parsed as: IDSET (the range '1-1' in '1-1' does not ascend)",
        ),
        (
            "order-service/order/1,%202",
            {},
            500,
            "The ID set 1, 2 cannot be parsed as: IDSET (' 2' in '1, 2' is neither an id nor a range of ids)",
        ),
    ],
)
async def test_what_only_a_lenient_get_takes(
    client: Client, path: str, params: dict[str, str], status: int, reason: str
) -> None:
    await client.orders(1)
    await client.products(101)
    await movement(client)
    assert (await client.bp("GET", path, params=params)).status in (200, 404)  # lenient: taken (404: none found)
    await strict(client)
    reply = await client.bp("GET", path, params=params)
    assert reply.status == status, reply.text
    assert reply.body["errors"][0]["message"] == reason
    (refusal,) = await refusals(client)
    assert refusal["reason"] == reason
    assert refusal["query"] == params


async def test_a_strict_get_takes_what_is_documented(client: Client) -> None:
    await strict(client)
    (order_id,) = await client.orders(1)
    products = await client.products(100)
    await client.get(f"order-service/order/{order_id}", includeOptional="customFields,nullCustomFields")
    ids = ",".join(map(str, products))
    await client.get(f"warehouse-service/product-availability/{ids}", includeOptional="breakDownByLocation")
    await client.get(f"product-service/product/{products[0]}-{products[-1]}")  # ranges in a path are documented
    assert await refusals(client) == []


async def test_not_found_is_no_refusal_and_the_log_can_be_reset(client: Client) -> None:
    await strict(client)
    assert (await client.bp("GET", "product-service/product/999")).status == 404
    assert await refusals(client) == []
    assert (await client.bp("GET", ORDERS, params={"orderId": "x"})).status == 500
    log = (await client.control("GET", "/accounts/acme/requests")).body
    assert log["refused"] == 1
    assert len(log["refusals"]) == 1
    await client.control("DELETE", "/accounts/acme/requests")
    log = (await client.control("GET", "/accounts/acme/requests")).body
    assert (log["refused"], log["refusals"]) == (0, [])


async def test_strict_is_an_account_option(client: Client) -> None:
    made = await client.control("POST", "/accounts", {"code": "tight", "strict": True})
    assert made.status == 201
    assert made.body["strict"] is True
    assert (await client.control("GET", "/accounts/acme")).body["strict"] is False
    assert (await client.control("PATCH", "/accounts/tight", {"strict": False})).body["strict"] is False
    assert (await client.control("PATCH", "/accounts/tight", {"strict": "yes"})).status == 400


async def test_relay_sandbox_strict_serves_a_strict_account() -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve_sandbox_forever("127.0.0.1", 0, "demo", strict=True, out=out))
    for _ in range(200):
        if out.getvalue().count("\n") >= 4:
            break
        await asyncio.sleep(0.01)
    lines = dict(line.split(None, 1) for line in out.getvalue().splitlines())
    headers = {"brightpearl-app-ref": lines["app_ref"], "brightpearl-account-token": lines["account_token"]}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(lines["control"] + "/accounts/demo") as reply:
                assert (await reply.json())["strict"] is True
            search = lines["base_url"] + "/" + ORDERS
            async with http.get(search, params={"orderId": "1-2"}, headers=headers) as reply:
                assert reply.status == 500
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
