"""Products and product availability over real HTTP, compared with recorded Brightpearl answers; a 100,000-product
catalogue stays quick to make and to read."""

import time
from typing import Any

import pytest

from tests.sandbox.conftest import START, Client, WallClock
from tests.sandbox.recordings import load, shape

SEARCH = load("product_search.yml.0.txt")
BAD_PARAM = load("product_search_bad_param.yml.0.txt")
ONE = load("product_get_one.yml.0.txt")
MULTIPLE = load("product_get_multiple.yml.0.txt")
AVAILABILITY = load("product_availability_get.yml.0.txt")
RECORDED_1007 = ONE.body["response"][0]
START_MS = int(START.timestamp() * 1000)


async def test_product_search_has_the_recorded_structure(client: Client) -> None:
    ids = await client.products(3, name="Anthony Test Product")
    await client.products(1, name="Bundle of 5 Anthony Test Products", stock_tracked=False)
    await client.products(2, name="Something else")
    reply = await client.bp("GET", "product-service/product-search", params={"productName": "Test Product"})
    assert (reply.status, reply.headers["Message-Type"]) == (200, SEARCH.message_type)
    body, recorded = reply.body, SEARCH.body
    assert list(body) == list(recorded) == ["response", "reference"]
    meta, recorded_meta = body["response"]["metaData"], recorded["response"]["metaData"]
    assert list(meta) == list(recorded_meta)
    assert meta["columns"] == recorded_meta["columns"]  # names, types, flags and reference data, in order
    assert meta["sorting"] == recorded_meta["sorting"]
    assert (meta["resultsAvailable"], meta["morePagesAvailable"]) == (4, False)
    results = body["response"]["results"]
    assert [row[0] for row in results] == [*ids, ids[-1] + 1]
    recorded_1543 = next(row for row in recorded["response"]["results"] if row[0] == 1543)
    assert [type(value) for value in results[0]] == [type(value) for value in recorded_1543]
    assert results[0][1:3] == ["Anthony Test Product", f"SKU-{ids[0]}"]
    assert results[0][10].endswith(".000-06:00")
    assert [row[8] for row in results] == [True, True, True, False]  # stockTracked
    membership = body["reference"]["productCategoryMembership"]
    assert membership == {str(i): [296] for i in [*ids, ids[-1] + 1]}
    assert shape(membership)[str(ids[0])] == shape(recorded["reference"]["productCategoryMembership"])["1494"]


async def test_a_bad_filter_is_the_recorded_500(client: Client) -> None:
    reply = await client.bp("GET", "product-service/product-search", params={"productId": "BAD PARAM"})
    assert (reply.status, reply.body) == (BAD_PARAM.status, BAD_PARAM.body)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stockTracked": "false"}, [2]),
        ({"SKU": "BLUE-{1}"}, [1]),
        ({"productStatus": "DISCONTINUED"}, [0]),
        ({"productName": "SHIRT"}, [0, 1]),
        ({"productId": "{1}-{2},99"}, [1, 2]),
        ({"salesChannelName": "nothing like it"}, [0, 1, 2]),  # not filterable: ignored
        ({"sort": "updatedOn.DESC"}, [0, 1, 2]),  # the first changed last; the others tie, in id order
        ({"updatedOn": "2026-11-26T10:00:01Z/"}, [0]),
        ({"brandId": "74", "productTypeId": "1"}, [0, 1, 2]),
    ],
)
async def test_product_search_filters(
    client: Client, wall_clock: WallClock, params: dict[str, str], expected: list[int]
) -> None:
    ids = await client.products(1, name="Red shirt", sku_prefix="RED-")
    ids += await client.products(1, name="Blue shirt", sku_prefix="BLUE-")
    ids += await client.products(1, name="Gift card", stock_tracked=False)
    wall_clock.advance(5)
    await client.ok("PATCH", f"/products/{ids[0]}", {"status": "DISCONTINUED"})
    rows = await client.rows("product-service/product-search", **{k: v.format(*ids) for k, v in params.items()})
    assert [row["productId"] for row in rows] == [ids[i] for i in expected]


async def test_a_product_has_the_recorded_shape_in_the_accounts_offset(client: Client) -> None:
    (acme,) = await client.products(1)
    (kiwi,) = await client.products(1, account="kiwi")
    body = await client.get(f"product-service/product/{acme}")
    (product,) = body["response"]
    assert list(product) == list(RECORDED_1007)
    assert shape(product) == shape(RECORDED_1007)
    assert product["createdOn"] == product["updatedOn"] == "2026-11-26T04:00:00.000-06:00"
    assert product["version"] == START_MS  # epoch ms of updatedOn, as recorded
    assert list(product["warehouses"]) == ["2", "3"]
    (other,) = (await client.get(f"product-service/product/{kiwi}", account="kiwi"))["response"]
    assert other["createdOn"] == "2026-11-26T21:00:00.000+11:00"


async def test_several_products_come_back_out_of_id_order_without_unknown_ids(client: Client) -> None:
    ids = await client.products(3)
    reply = await client.bp("GET", f"product-service/product/{ids[0]},{ids[1]},{ids[2]},5")
    assert reply.headers["Message-Type"] == MULTIPLE.message_type == "product-get"
    returned = [product["id"] for product in reply.body["response"]]
    assert sorted(returned) == ids
    assert returned != ids
    assert shape(reply.body["response"][0]) == shape(MULTIPLE.body["response"][0])


async def test_no_such_product_is_a_404_and_more_than_200_a_400(client: Client) -> None:
    (product_id,) = await client.products(1)
    none = await client.bp("GET", "product-service/product/5")
    assert (none.status, none.body["errors"][0]["code"]) == (404, "CMNC-404")
    assert (await client.bp("GET", f"product-service/product/{product_id}-{product_id + 199}")).status == 200
    many = await client.bp("GET", f"product-service/product/{product_id}-{product_id + 200}")
    assert many.status == 400
    assert [set(error) for error in many.body["errors"]] == [{"code", "message"}]


async def test_changing_a_product_moves_updated_on_and_version(client: Client, wall_clock: WallClock) -> None:
    (product_id,) = await client.products(1)
    wall_clock.advance(90.25)
    first = await client.ok("PATCH", f"/products/{product_id}", {"name": "New name", "sku": "NEW-1"})
    second = await client.ok("PATCH", f"/products/{product_id}", {"barcode": "123"})  # the same second
    assert first["updated_on"] == second["updated_on"] == "2026-11-26T10:01:30Z"
    assert second["version"] == first["version"] + 1 == START_MS + 90_000 + 1
    (product,) = (await client.get(f"product-service/product/{product_id}"))["response"]
    assert product["identity"] == {"sku": "NEW-1", "barcode": "123"}
    assert product["salesChannels"][0]["productName"] == "New name"
    assert (product["updatedOn"], product["version"]) == ("2026-11-26T04:01:30.000-06:00", second["version"])
    rows = await client.rows("product-service/product-search", updatedOn="2026-11-26T10:01:00Z/")
    assert [(row["productId"], row["productName"], row["SKU"]) for row in rows] == [(product_id, "New name", "NEW-1")]


async def test_availability_has_the_recorded_shape(client: Client) -> None:
    await client.ok("PATCH", "", {"availability_bad_ids": "ignore"})  # the documented reading: left out
    first, second = await client.products(2, stock={"2": 48})
    (untracked,) = await client.products(1, stock_tracked=False)
    await client.ok("POST", "/orders", {"rows": [{"product_id": first, "quantity": 12}], "allocate": True}, 201)
    await client.ok("POST", "/stock/receive", {"product_id": first, "warehouse_id": 2, "quantity": 12}, 201)
    reply = await client.bp("GET", f"warehouse-service/product-availability/{first},{second},{untracked},5")
    assert (reply.status, reply.headers["Message-Type"]) == (200, AVAILABILITY.message_type)
    assert shape(reply.body) == shape(AVAILABILITY.body) | {
        "response": {
            str(first): shape(AVAILABILITY.body["response"]["1532"]),
            str(second): shape(AVAILABILITY.body["response"]["1007"]),
        }
    }
    assert list(reply.body["response"]) == [str(second), str(first)]  # no particular order, as recorded
    assert reply.body["response"][str(first)] == AVAILABILITY.body["response"]["1532"]  # 60 in stock, 12 allocated


async def test_availability_of_products_without_stock_and_too_many_ids(client: Client) -> None:
    (product_id,) = await client.products(1)
    body = await client.get(f"warehouse-service/product-availability/{product_id}")
    zero = {"inStock": 0, "onHand": 0, "allocated": 0, "inTransit": 0}
    assert body == {"response": {str(product_id): {"total": zero, "warehouses": {}}}}
    assert await client.get("warehouse-service/product-availability/1-3") == {"response": {}}
    assert (await client.bp("GET", "warehouse-service/product-availability/1-200")).status == 200
    reply = await client.bp("GET", "warehouse-service/product-availability/1-201")
    assert reply.status == 400
    assert [set(error) for error in reply.body["errors"]] == [{"code", "message"}]


async def test_a_catalogue_of_100000_products_is_quick_to_make_and_to_read(client: Client) -> None:
    """A sanity check with generous bounds, not a benchmark."""
    started = time.perf_counter()
    ids = await client.products(100_000, stock={"2": 5, "3": 1})
    made_s = time.perf_counter() - started
    assert len(ids) == 100_000
    wanted = ",".join(str(product_id) for product_id in ids[50_000:50_010])
    started = time.perf_counter()
    body = await client.get(f"warehouse-service/product-availability/{wanted}")
    read_s = time.perf_counter() - started
    assert len(body["response"]) == 10
    assert body["response"][str(ids[50_000])]["total"]["inStock"] == 6
    started = time.perf_counter()
    by_id = await client.rows("product-service/product-search", productId=f"{ids[-200]}-{ids[-1]}")
    page = await client.rows("product-service/product-search", updatedOn="2026-11-26T10:00:00Z/", pageSize="500")
    search_s = time.perf_counter() - started
    assert (len(by_id), len(page)) == (200, 500)
    print(f"100,000 products made in {made_s:.2f} s; 10 availabilities in {read_s * 1000:.1f} ms; ", end="")
    print(f"two searches in {search_s * 1000:.0f} ms")
    assert made_s < 10
    assert read_s < 1
    assert search_s < 10


BAD_INPUT: list[tuple[str, str, Any, int]] = [
    ("POST", "/products", {"count": 0}, 400),
    ("POST", "/products", {"count": 200_001}, 400),
    ("POST", "/products", {"stock": {"9": 1}}, 422),
    ("POST", "/products", {"stock": {"two": 1}}, 400),
    ("POST", "/products", {"stock": {"2": -1}}, 422),
    ("POST", "/products", {"stock": {"2": 1}, "stock_tracked": False}, 422),
    ("POST", "/products", {"name": ""}, 400),
    ("PATCH", "/products/1", {"name": "x"}, 404),
    ("PATCH", "/products/abc", {"name": "x"}, 404),
    ("PATCH", "/products/10001", {}, 400),
    ("PATCH", "/products/10001", {"status": "GONE"}, 400),
    ("PATCH", "/products/10001", {"colour": "red"}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_INPUT)
async def test_bad_product_input_is_a_4xx(client: Client, method: str, path: str, body: Any, status: int) -> None:
    await client.products(1)
    reply = await client.control(method, f"/accounts/acme{path}", body)
    assert reply.status == status, reply.text
    assert reply.body["error"]
    assert len(client.sandbox.account().products) == 1  # nothing made by a refused request
