"""Order and order-status resources over real HTTP, compared with recorded Brightpearl answers."""

import json
from typing import Any

import pytest

from tests.recorded import load
from tests.sandbox.conftest import Client, WallClock

RECORDED_SO = json.loads(load("order_get_multiple.yml.0.txt").body)["response"][0]  # order 320: never invoiced
RECORDED_PO = json.loads(load("order_get_one_po.yml.0.txt").body)["response"][0]
RECORDED_EMPTY = load("order_get_empty_not_found.yml.0.txt")
RECORDED_STATUS = load("order_status_get.yml.0.txt")


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys in order and the types of leaves."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


async def get_order(client: Client, order_id: int) -> dict[str, Any]:
    reply = await client.bp("GET", f"order-service/order/{order_id}")
    assert reply.status == 200, reply.text
    [order] = reply.body["response"]
    return dict(order)


def comparable(order: dict[str, Any]) -> dict[str, Any]:
    """The order without what varies between recorded orders: row ids, and the optional delivery date."""
    return {**order, "orderRows": list(order["orderRows"].values()), "delivery": order["delivery"]["shippingMethodId"]}


@pytest.mark.parametrize(("order_type", "recorded"), [("SO", RECORDED_SO), ("PO", RECORDED_PO)])
async def test_an_order_has_the_recorded_shape(
    client: Client, wall_clock: WallClock, order_type: str, recorded: dict[str, Any]
) -> None:
    (order_id,) = await client.orders(1, order_type=order_type)
    new = await get_order(client, order_id)
    assert "updatedOn" not in new  # Brightpearl omits null fields; a new order has never been updated
    assert list(new) == [key for key in recorded if key != "updatedOn"]
    wall_clock.advance(30)
    await client.control("PUT", f"/accounts/acme/orders/{order_id}/status", {"status_id": 4})
    changed = await get_order(client, order_id)
    assert shape(comparable(changed)) == shape(comparable(recorded))
    assert ("deliveryDate" in changed["delivery"]) is (order_type == "PO")  # recorded: a new PO has one
    assert changed["orderTypeCode"] == order_type
    assert ("supplier" in changed["parties"]) is (order_type == "PO")
    assert changed["createdOn"] == changed["placedOn"] == "2026-11-26T04:00:00.000-06:00"
    assert changed["updatedOn"] == "2026-11-26T04:00:30.000-06:00"
    assert changed["orderStatus"] == {"orderStatusId": 4, "name": "Invoiced"}
    assert changed["version"] == new["version"] + 1
    assert all(isinstance(v, str) for v in changed["totalValue"].values())  # money is a string


async def test_several_orders_come_back_out_of_id_order_without_unknown_ids(client: Client) -> None:
    ids = await client.orders(3)
    reply = await client.bp("GET", f"order-service/order/{ids[0]},{ids[1]},{ids[2]},999")
    returned = [order["id"] for order in reply.body["response"]]
    assert sorted(returned) == ids
    assert returned != ids
    assert reply.headers["Message-Type"] == "get-order"
    ranged = await client.bp("GET", f"order-service/order/{ids[0]}-{ids[2]}")
    assert sorted(order["id"] for order in ranged.body["response"]) == ids


async def test_no_such_order_is_an_empty_200_as_recorded(client: Client) -> None:
    reply = await client.bp("GET", "order-service/order/999")
    assert reply.status == RECORDED_EMPTY.status == 200
    assert reply.body == json.loads(RECORDED_EMPTY.body) == {"response": []}


async def test_more_than_200_ids_is_a_400(client: Client) -> None:
    await client.orders(5)
    assert (await client.bp("GET", "order-service/order/1-200")).status == 200
    reply = await client.bp("GET", "order-service/order/1-201")
    assert reply.status == 400
    assert [set(error) for error in reply.body["errors"]] == [{"code", "message"}]


@pytest.mark.parametrize("id_set", ["abc", "5-1", "1,,2", "1-999999999"])
async def test_a_malformed_id_set_is_a_500(client: Client, id_set: str) -> None:
    reply = await client.bp("GET", f"order-service/order/{id_set}")
    assert reply.status == 500
    assert reply.body["errors"][0]["code"] == "CMNC-018"


async def test_options_lists_the_get_uris_of_orders_that_exist(client: Client) -> None:
    await client.orders(250)
    reply = await client.bp("OPTIONS", "order-service/order/1-100,240-260,320")
    assert reply.status == 200
    assert reply.headers["Message-Type"] == "options-order"
    assert reply.body == {"response": {"getUris": ["/order/1-100,240-250"]}}
    everything = await client.bp("OPTIONS", "order-service/order/1-1000")
    assert everything.body == {"response": {"getUris": ["/order/1-200", "/order/201-250"]}}
    nothing = await client.bp("OPTIONS", "order-service/order/900-901")
    assert nothing.body == {"response": {"getUris": []}}


@pytest.mark.parametrize(
    ("body", "order_type", "contact_id"),
    [
        ({"reference": "#0001", "orderTypeCode": "SO", "parties": {"customer": {"contactId": 200}}}, "SO", 200),
        ({"reference": "#0001", "orderTypeCode": "PO", "parties": {"supplier": {"contactId": 418}}}, "PO", 418),
        ({"orderTypeCode": "SC", "parties": {"customer": {"contactId": 7}}}, "SC", 7),
        ({"orderTypeCode": "PC", "parties": {"supplier": {"contactId": 9}}, "statusId": 12}, "PC", 9),
        ({"orderTypeCode": "SO"}, "SO", 200),
    ],
)
async def test_post_an_order(client: Client, body: dict[str, Any], order_type: str, contact_id: int) -> None:
    reply = await client.bp("POST", "order-service/order", json=body)
    assert reply.status == 200
    assert reply.headers["Message-Type"] == "post-order"
    order_id = reply.body["response"]
    assert isinstance(order_id, int)
    order = await get_order(client, order_id)
    party = "supplier" if order_type in ("PO", "PC") else "customer"
    assert (order["orderTypeCode"], order["parties"][party]["contactId"]) == (order_type, contact_id)
    assert order["reference"] == body.get("reference", "")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"reference": "#0001"}, {"code": "ORDC-005", "message": "You have not supplied an order type code"}),
        ({"orderTypeCode": "UK"}, {"code": "ORDC-006", "message": "You have supplied an invalid order type code"}),
        (
            {"orderTypeCode": "PO", "parties": {"customer": {"contactId": 200}}},
            {"code": "ORDC-022", "message": "Suppllier ID Required."},
        ),
    ],
)
async def test_post_refusals_as_recorded(client: Client, body: dict[str, Any], error: dict[str, str]) -> None:
    reply = await client.bp("POST", "order-service/order", json=body)
    assert (reply.status, reply.body) == (400, {"errors": [error]})
    assert reply.headers["Message-Type"] == "post-order"


@pytest.mark.parametrize("data", [b"not json", b"[1]", b""])
async def test_post_without_a_json_object_is_a_400(client: Client, data: bytes) -> None:
    reply = await client.call(
        "POST", client.sandbox.base_url() + "/order-service/order", data=data, headers=client.credentials()
    )
    assert reply.status == 400
    assert "errors" in reply.body


async def test_put_a_status(client: Client, wall_clock: WallClock) -> None:
    (order_id,) = await client.orders(1)
    wall_clock.advance(2)
    reply = await client.bp("PUT", f"order-service/order/{order_id}/status", json={"orderStatusId": 2})
    assert (reply.status, reply.text) == (200, "{}")
    assert reply.headers["Message-Type"] == "put-order-status"
    order = await get_order(client, order_id)
    assert (order["orderStatus"], order["version"]) == ({"orderStatusId": 2, "name": "New web order"}, 2)
    assert order["updatedOn"] == "2026-11-26T04:00:02.000-06:00"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("order-service/order/999/status", {"orderStatusId": 2}, 404),
        ("order-service/order/x/status", {"orderStatusId": 2}, 404),
        ("order-service/order/1/status", {"orderStatusId": 99}, 400),
        ("order-service/order/1/status", {"orderStatusId": "2"}, 400),
        ("order-service/order/1/status", {}, 400),
    ],
)
async def test_put_a_status_refused(client: Client, path: str, body: dict[str, Any], status: int) -> None:
    await client.orders(1)
    reply = await client.bp("PUT", path, json=body)
    assert reply.status == status
    assert "errors" in reply.body


async def test_order_statuses(client: Client) -> None:
    one = await client.bp("GET", "order-service/order-status/1")
    assert one.status == 200
    assert one.body == json.loads(RECORDED_STATUS.body)  # the recorded status 1, exactly
    assert one.headers["Message-Type"] == "get-order-status"
    every = (await client.bp("GET", "order-service/order-status")).body["response"]
    names = {status["statusId"]: (status["name"], status["orderTypeCode"]) for status in every}
    assert names == {
        1: ("Draft / Quote", "SO"),
        2: ("New web order", "SO"),
        3: ("New phone order", "SO"),
        4: ("Invoiced", "SO"),
        5: ("Cancelled", "SO"),
        6: ("Pending PO", "PO"),
        7: ("Placed with supplier", "PO"),
        10: ("Sales credit", "SC"),
        12: ("Purchase credit", "PC"),
    }
    assert all(list(status) == list(one.body["response"][0]) for status in every)
    some = (await client.bp("GET", "order-service/order-status/4-6,99/")).body["response"]
    assert [status["statusId"] for status in some] == [4, 5, 6]
    trailing = await client.bp("GET", "order-service/order-status/")
    assert len(trailing.body["response"]) == 9


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "order-service/nothing-here", 404),
        ("GET", "product-service/brand/1", 404),
        ("GET", "", 404),
        ("DELETE", "order-service/order/1", 405),
    ],
)
async def test_unknown_paths(client: Client, method: str, path: str, status: int) -> None:
    reply = await client.bp(method, path)
    assert reply.status == status
    [error] = reply.body["errors"]
    assert error["code"] == f"CMNC-{status}"
    assert reply.headers["Brightpearl-Requests-Remaining"].isdigit()


async def test_an_unknown_account(client: Client) -> None:
    reply = await client.bp("GET", "order-service/order/1", account="nobody", headers=client.credentials())
    assert reply.status == 404
    assert reply.body["errors"][0]["code"] == "CMNC-404"
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert reply.headers["Brightpearl-Next-Throttle-Period"] == "59999"


RECORDED_ROW = next(iter(json.loads(load("order_get_one.yml.0.txt").body)["response"][0]["orderRows"].values()))


async def test_an_order_of_products_has_the_recorded_rows(client: Client) -> None:
    shirt, hat = (await client.control("POST", "/accounts/acme/products", {"count": 2, "name": "Shirt"})).body["ids"]
    rows = [{"product_id": shirt, "quantity": 2}, {"product_id": hat, "quantity": 1}]
    reply = await client.control("POST", "/accounts/acme/orders", {"rows": rows, "warehouse_id": 3})
    (order_id,) = reply.body["ids"]
    order = await get_order(client, order_id)
    assert [shape(row) for row in order["orderRows"].values()] == [shape(RECORDED_ROW)] * 2
    first, second = order["orderRows"].values()
    assert [list(row) for row in (first, second)] == [list(RECORDED_ROW)] * 2
    assert (first["productId"], first["productSku"], first["productName"]) == (shirt, f"SKU-{shirt}", "Shirt")
    assert (first["quantity"], second["quantity"]) == ({"magnitude": "2.0000"}, {"magnitude": "1.0000"})
    assert (first["orderRowSequence"], second["orderRowSequence"]) == ("10", "20")
    assert first["rowValue"]["rowNet"]["value"] == "18.1818"
    assert order["totalValue"] == {
        "net": "27.27",
        "taxAmount": "2.73",
        "baseNet": "27.27",
        "baseTaxAmount": "2.73",
        "baseTotal": "30.00",
        "total": "30.00",
    }
    assert (order["warehouseId"], order["shippingStatusCode"], order["allocationStatusCode"]) == (3, "SNS", "ANA")
    rows_found = (await client.search(columns="orderId,warehouseId,orderShippingStatusId"))["response"]["results"]
    assert rows_found == [[order_id, 3, 2]]


async def test_an_order_made_without_rows_keeps_the_recorded_row(client: Client) -> None:
    (order_id,) = await client.orders(1)
    order = await get_order(client, order_id)
    assert list(order["orderRows"].values()) == [RECORDED_ROW]
    assert order["totalValue"] == json.loads(load("order_get_one.yml.0.txt").body)["response"][0]["totalValue"]


async def test_change_an_order(client: Client, wall_clock: WallClock) -> None:
    (product_id,) = (await client.control("POST", "/accounts/acme/products", {"stock": {"2": 9}})).body["ids"]
    row = {"product_id": product_id, "quantity": 1}
    (order_id,) = (await client.control("POST", "/accounts/acme/orders", {"rows": [row], "allocate": True})).body["ids"]
    wall_clock.advance(15)
    patch = {"reference": "PO-77", "delivery_date": "2026-12-01T09:00:00Z", "add_rows": [{**row, "quantity": 4}]}
    reply = await client.control("PATCH", f"/accounts/acme/orders/{order_id}", patch)
    assert reply.status == 200, reply.text
    assert (reply.body["version"], reply.body["updated_on"], reply.body["reference"]) == (
        2,
        "2026-11-26T10:00:15Z",
        "PO-77",
    )
    order = await get_order(client, order_id)
    assert (order["reference"], order["version"], len(order["orderRows"])) == ("PO-77", 2, 2)
    assert order["delivery"] == {"deliveryDate": "2026-12-01T03:00:00.000-06:00", "shippingMethodId": 0}
    found = await client.search(customerRef="PO-77", columns="orderId,deliveryDate,updatedOn")
    assert found["response"]["results"] == [
        [order_id, "2026-12-01T03:00:00.000-06:00", "2026-11-26T04:00:15.000-06:00"]
    ]
    available = await client.bp("GET", f"warehouse-service/product-availability/{product_id}")
    assert available.body["response"][str(product_id)]["total"]["allocated"] == 5  # the new row allocated too
    await client.control("POST", f"/accounts/acme/orders/{order_id}/goods-out-notes")
    late = await client.control("PATCH", f"/accounts/acme/orders/{order_id}", {"add_rows": [row]})
    assert late.status == 409
    renamed = await client.control("PATCH", f"/accounts/acme/products/{product_id}", {"name": "Renamed"})
    assert renamed.status == 200
    assert (await get_order(client, order_id))["orderRows"][str(reply.body["row_ids"][0])]["productName"] == (
        f"Product {product_id}"  # a row keeps the name the product had when it was made
    )
