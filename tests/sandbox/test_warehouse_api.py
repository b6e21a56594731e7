"""Stock, goods movements and goods-out notes over real HTTP: what each control action does to availability,
movements, notes and orders, and the notes' shape against the recorded ones."""

from typing import Any

import pytest

from tests.sandbox.conftest import Client, WallClock
from tests.sandbox.recordings import load, shape

BY_ID = load("goods_out_note__get__by_gon_id.yml.0.txt")
ALL_FOR_ORDER = load("goods_out_note__get__all_for_order.yml.0.txt")
RECORDED_NOTE = BY_ID.body["response"]["12447605"]
MOVEMENTS = "warehouse-service/goods-movement-search"
NOTES = "warehouse-service/goods-note/goods-out-search"


async def availability(client: Client, product_id: int, warehouse_id: int = 2) -> dict[str, int]:
    body = await client.get(f"warehouse-service/product-availability/{product_id}")
    return dict(body["response"][str(product_id)]["warehouses"].get(str(warehouse_id), {}))


def figures(in_stock: int, on_hand: int, allocated: int) -> dict[str, int]:
    return {"inStock": in_stock, "onHand": on_hand, "allocated": allocated, "inTransit": 0}


async def get_order(client: Client, order_id: int) -> dict[str, Any]:
    (order,) = (await client.get(f"order-service/order/{order_id}"))["response"]
    return dict(order)


async def test_receiving_goods_logs_a_goods_in_movement(client: Client, wall_clock: WallClock) -> None:
    (product_id,) = await client.products(1, stock={"2": 4})
    wall_clock.advance(10)
    movement = await client.ok(
        "POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 3, "quantity": 6}, 201
    )
    assert movement == {
        "id": 1,
        "product_id": product_id,
        "warehouse_id": 3,
        "quantity": 6,
        "goods_note_type": "GI",
        "goods_note_id": 1,
        "created_on": "2026-11-26T10:00:10Z",
        "stock": {"in_stock": 6, "on_hand": 6, "allocated": 0, "in_transit": 0},
    }
    body = await client.get(f"warehouse-service/product-availability/{product_id}")
    assert body["response"][str(product_id)] == {
        "total": figures(10, 10, 0),
        "warehouses": {"2": figures(4, 4, 0), "3": figures(6, 6, 0)},
    }
    reply = await client.bp("GET", MOVEMENTS)
    assert reply.headers["Message-Type"] == "bulk-data-search"
    assert reply.body["response"]["results"] == [
        [1, 1, "GI", product_id, 3, 6, "2026-11-26T04:00:10.000-06:00", "2026-11-26T04:00:10.000-06:00"]
    ]
    assert [column["name"] for column in reply.body["response"]["metaData"]["columns"]] == [
        "goodsMovementId",
        "goodsNoteId",
        "goodsNoteTypeCode",
        "productId",
        "warehouseId",
        "quantity",
        "createdOn",
        "updatedOn",
    ]
    assert reply.body["reference"] == {}


async def test_allocating_moves_stock_without_a_movement_and_changes_the_order(
    client: Client, wall_clock: WallClock
) -> None:
    first, second = await client.products(2, stock={"2": 10})
    rows = [{"product_id": first, "quantity": 2}, {"product_id": second, "quantity": 3}]
    (order_id,) = (await client.ok("POST", "/orders", {"rows": rows}, 201))["ids"]
    before = await get_order(client, order_id)
    assert (before["allocationStatusCode"], before["shippingStatusCode"]) == ("ANA", "SNS")
    assert await availability(client, first) == figures(10, 10, 0)
    wall_clock.advance(20)
    summary = await client.ok("POST", f"/orders/{order_id}/allocate")
    assert (summary["allocation_status"], summary["version"]) == ("AAA", 2)
    assert await availability(client, first) == figures(10, 8, 2)
    assert await availability(client, second) == figures(10, 7, 3)
    assert (await client.get(MOVEMENTS))["response"]["results"] == []  # as in Brightpearl: no movement
    after = await get_order(client, order_id)
    assert (after["allocationStatusCode"], after["stockStatusCode"]) == ("AAA", before["stockStatusCode"])
    assert (after["version"], after["updatedOn"]) == (2, "2026-11-26T04:00:20.000-06:00")
    changed = await client.search(updatedOn="2026-11-26T10:00:20Z/", columns="orderId")
    assert changed["response"]["results"] == [[order_id]]  # a relay finds allocations through changed orders
    again = await client.control("POST", f"/accounts/acme/orders/{order_id}/allocate")
    assert again.status == 409


async def test_an_order_made_allocated(client: Client) -> None:
    (product_id,) = await client.products(1)
    body = {"rows": [{"product_id": product_id, "quantity": 2}], "allocate": True, "warehouse_id": 3, "count": 2}
    ids = (await client.ok("POST", "/orders", body, 201))["ids"]
    order = await get_order(client, ids[0])
    assert (order["allocationStatusCode"], order["warehouseId"], order["version"]) == ("AAA", 3, 1)
    assert await availability(client, product_id, 3) == figures(0, -4, 4)  # allocation is not capped by stock


async def test_shipping_a_note_logs_goods_out_movements(client: Client, wall_clock: WallClock) -> None:
    first, second = await client.products(2, stock={"2": 10})
    (untracked,) = await client.products(1, stock_tracked=False)
    rows = [{"product_id": p, "quantity": q} for p, q in [(first, 2), (untracked, 1), (second, 1)]]
    (order_id,) = (await client.ok("POST", "/orders", {"rows": rows}, 201))["ids"]
    order = await get_order(client, order_id)
    row_ids = list(order["orderRows"])
    wall_clock.advance(60)
    note = await client.ok("POST", f"/orders/{order_id}/goods-out-notes", status=201)  # allocates first
    note_id = note["id"]
    assert (note["order_id"], note["sequence"], note["stages"], note["shipped"]) == (order_id, 1, [], False)
    assert await availability(client, first) == figures(10, 8, 2)
    assert (await get_order(client, order_id))["allocationStatusCode"] == "AAA"
    wall_clock.advance(60)
    printed = await client.ok("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "printed"})
    assert (printed["stages"], printed["movements"]) == (["printed"], [])
    wall_clock.advance(60)
    shipped = await client.ok("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})
    assert shipped["stages"] == ["printed", "picked", "packed", "shipped"]
    assert [
        (m["product_id"], m["quantity"], m["goods_note_type"], m["goods_note_id"]) for m in shipped["movements"]
    ] == [
        (first, -2, "GO", note_id),
        (second, -1, "GO", note_id),
    ]
    assert await availability(client, first) == figures(8, 8, 0)
    assert await availability(client, second) == figures(9, 9, 0)
    shipped_order = await get_order(client, order_id)
    assert (shipped_order["shippingStatusCode"], shipped_order["version"]) == ("ASS", 3)
    assert shipped_order["updatedOn"] == "2026-11-26T04:03:00.000-06:00"

    body = await client.get(f"warehouse-service/order/*/goods-note/goods-out/{note_id}")
    rendered = body["response"][str(note_id)]
    assert list(rendered) == list(RECORDED_NOTE)
    assert shape({**rendered, "orderRows": None}) == shape({**RECORDED_NOTE, "orderRows": None})
    assert list(rendered["status"]) == list(RECORDED_NOTE["status"])
    assert rendered["orderRows"] == {
        row_ids[0]: [{"productId": first, "quantity": 2, "locationId": 2}],
        row_ids[2]: [{"productId": second, "quantity": 1, "locationId": 2}],
    }
    assert [(e["eventCode"], e["occured"][11:19]) for e in rendered["events"]] == [
        ("PLA", "04:01:00"),
        ("PRI", "04:02:00"),
        ("SHW", "04:03:00"),
        ("PIC", "04:03:00"),
        ("PAC", "04:03:00"),
    ]
    assert rendered["status"]["printedOn"] == "2026-11-26T04:02:00.000-06:00"
    rows_found = await client.rows(MOVEMENTS, goodsNoteTypeCode="GO", sort="goodsMovementId.DESC")
    assert [row["productId"] for row in rows_found] == [second, first]

    for stage in ("shipped", "packed"):
        refused = await client.control("POST", f"/accounts/acme/goods-out-notes/{note_id}/stage", {"stage": stage})
        assert refused.status == 409
    more = await client.control("POST", f"/accounts/acme/orders/{order_id}/goods-out-notes")
    assert more.status == 409  # every stock-tracked row is on a note


async def test_a_new_note_has_the_recorded_shape_without_unset_stages(client: Client) -> None:
    (product_id,) = await client.products(1, stock={"2": 5})
    (order_id,) = (await client.ok("POST", "/orders", {"rows": [{"product_id": product_id}]}, 201))["ids"]
    note_id = (await client.ok("POST", f"/orders/{order_id}/goods-out-notes", status=201))["id"]
    reply = await client.bp("GET", f"warehouse-service/order/{order_id}/goods-note/goods-out/")
    assert (reply.status, reply.headers["Message-Type"]) == (200, ALL_FOR_ORDER.message_type)
    rendered = reply.body["response"][str(note_id)]
    assert rendered["status"] == {"shipped": False, "packed": False, "picked": False, "printed": False}
    assert [event["eventCode"] for event in rendered["events"]] == ["PLA"]
    assert list(rendered) == list(ALL_FOR_ORDER.body["response"]["12447605"])
    assert "updatedOn" not in rendered


async def test_a_stock_correction_is_signed(client: Client) -> None:
    (product_id,) = await client.products(1, stock={"2": 5})
    down = await client.ok("POST", "/stock/correct", {"product_id": product_id, "warehouse_id": 2, "quantity": -2}, 201)
    up = await client.ok("POST", "/stock/correct", {"product_id": product_id, "warehouse_id": 2, "quantity": 1}, 201)
    assert [(m["quantity"], m["goods_note_type"]) for m in (down, up)] == [(-2, "SC"), (1, "SC")]
    assert down["goods_note_id"] != up["goods_note_id"]
    assert await availability(client, product_id) == figures(4, 4, 0)
    rows = await client.rows(MOVEMENTS, goodsNoteTypeCode="SC", quantity="-2")
    assert [row["goodsMovementId"] for row in rows] == [down["id"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [0, 1, 2, 3, 4]),
        ({"goodsNoteTypeCode": "GI"}, [0, 3, 4]),
        ({"productId": "{1}"}, [1, 2, 4]),
        ({"warehouseId": "3"}, [3]),
        ({"updatedOn": "2026-11-26T10:00:30Z/"}, [2, 3, 4]),
        ({"createdOn": "/2026-11-26T10:00:00Z"}, [0, 1]),
        ({"goodsMovementId": "{m1}-{m3}", "sort": "quantity.ASC"}, [2, 1, 3]),
        ({"pageSize": "2", "firstResult": "3"}, [2, 3]),
    ],
)
async def test_goods_movement_search(
    client: Client, wall_clock: WallClock, params: dict[str, str], expected: list[int]
) -> None:
    first, second = await client.products(2, stock={"2": 10})
    made = [await client.ok("POST", "/stock/receive", {"product_id": first, "warehouse_id": 2, "quantity": 1}, 201)]
    made += [await client.ok("POST", "/stock/correct", {"product_id": second, "warehouse_id": 2, "quantity": 4}, 201)]
    wall_clock.advance(30)
    made += [
        await client.ok("POST", "/stock/correct", {"product_id": second, "warehouse_id": 2, "quantity": -5}, 201),
        await client.ok("POST", "/stock/receive", {"product_id": first, "warehouse_id": 3, "quantity": 7}, 201),
        await client.ok("POST", "/stock/receive", {"product_id": second, "warehouse_id": 2, "quantity": 2}, 201),
    ]
    values = {"m1": made[1]["id"], "m3": made[3]["id"]}
    query = {key: value.format(first, second, **values) for key, value in params.items()}
    rows = await client.rows(MOVEMENTS, **query)
    assert [row["goodsMovementId"] for row in rows] == [made[i]["id"] for i in expected]


async def make_notes(client: Client, wall_clock: WallClock) -> tuple[list[int], list[int]]:
    """Three orders, a note each: one shipped at +60 s, one printed, one new (warehouse 3)."""
    (product_id,) = await client.products(1, stock={"2": 10, "3": 10})
    row = [{"product_id": product_id, "quantity": 1}]
    orders = (await client.ok("POST", "/orders", {"rows": row, "count": 2}, 201))["ids"]
    orders += (await client.ok("POST", "/orders", {"rows": row, "warehouse_id": 3}, 201))["ids"]
    notes = [(await client.ok("POST", f"/orders/{o}/goods-out-notes", status=201))["id"] for o in orders]
    wall_clock.advance(60)
    await client.ok("POST", f"/goods-out-notes/{notes[0]}/stage", {"stage": "shipped"})
    await client.ok("POST", f"/goods-out-notes/{notes[1]}/stage", {"stage": "printed"})
    return orders, notes


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [0, 1, 2]),
        ({"shipped": "true"}, [0]),
        ({"shipped": "false"}, [1, 2]),
        ({"printed": "TRUE", "shipped": "false"}, [1]),
        ({"picked": "false"}, [1, 2]),
        ({"transfer": "false"}, [0, 1, 2]),
        ({"transfer": "true"}, []),
        ({"warehouseId": "3"}, [2]),
        ({"shippedOn": "2026-11-26T10:00:30Z/"}, [0]),
        ({"createdOn": "/2026-11-26T10:00:00Z"}, [0, 1, 2]),
        ({"sort": "shippedOn.DESC"}, [0, 1, 2]),  # nulls last; ties in id order
    ],
)
async def test_goods_out_search(
    client: Client, wall_clock: WallClock, params: dict[str, str], expected: list[int]
) -> None:
    _, notes = await make_notes(client, wall_clock)
    rows = await client.rows(NOTES, **params)
    assert [row["goodsOutNoteId"] for row in rows] == [notes[i] for i in expected]


@pytest.mark.parametrize("value", ["yes", "1", "BAD PARAM"])
async def test_a_boolean_filter_that_is_not_true_or_false_is_a_500(client: Client, value: str) -> None:
    reply = await client.bp("GET", NOTES, params={"shipped": value})
    assert reply.status == 500
    assert reply.body == {
        "errors": [{"code": "CMNC-018", "message": f"The filter shipped={value} cannot be parsed as: BOOLEAN"}]
    }


async def test_goods_out_note_gets(client: Client, wall_clock: WallClock) -> None:
    orders, notes = await make_notes(client, wall_clock)

    async def found(path: str) -> list[int]:
        reply = await client.bp("GET", f"warehouse-service/order/{path}")
        if reply.status == 404:  # none of them exists (API.md 8.1)
            assert reply.body == {"errors": [{"code": "CMNC-404", "message": "No goods out notes found"}]}
            return []
        assert (reply.status, reply.headers["Message-Type"]) == (200, "get-goods-out-note"), reply.text
        assert isinstance(reply.body["response"], dict)
        return sorted(int(note_id) for note_id in reply.body["response"])

    assert await found("*/goods-note/goods-out") == notes
    assert await found(f"*/goods-note/goods-out/{notes[0]},{notes[2]},9999") == [notes[0], notes[2]]
    assert await found(f"{orders[0]},{orders[2]}/goods-note/goods-out/") == [notes[0], notes[2]]
    assert await found(f"{orders[1]}/goods-note/goods-out/{notes[0]}") == []  # not that order's note
    assert await found("*/goods-note/goods-out/9999") == []
    many = await client.bp("GET", "warehouse-service/order/*/goods-note/goods-out/1-501")
    assert many.status == 400
    assert (await client.bp("GET", "warehouse-service/order/*/goods-note/goods-out/1-500")).status == 200
    bad = await client.bp("GET", "warehouse-service/order/x/goods-note/goods-out")
    assert (bad.status, bad.body["errors"][0]["code"]) == (500, "CMNC-018")
    listed = await client.ok("GET", "/goods-out-notes")
    assert listed == {"ids": notes}


async def test_notes_undone_edited_and_deleted(client: Client, wall_clock: WallClock) -> None:
    orders, notes = await make_notes(client, wall_clock)
    shipped, printed, new = notes
    undone = await client.ok("POST", f"/goods-out-notes/{printed}/unstage", {"stage": "printed"})
    assert (undone["stages"], undone["event_codes"]) == ([], ["PLA", "PRI", "UPR"])
    assert [row["goodsOutNoteId"] for row in await client.rows(NOTES, printed="true")] == [shipped]
    edited = await client.ok("PATCH", f"/goods-out-notes/{new}", {"priority": True, "reference": "BOX-1", "boxes": 2})
    assert (edited["priority"], edited["shipping"]) == (True, {"reference": "BOX-1", "shippingMethodId": 0, "boxes": 2})
    body = await client.get(f"warehouse-service/order/*/goods-note/goods-out/{new}")
    assert body["response"][str(new)]["shipping"]["boxes"] == 2
    assert await client.ok("DELETE", f"/goods-out-notes/{new}") == {"id": new, "deleted": True}
    gone = await client.bp("GET", f"warehouse-service/order/*/goods-note/goods-out/{new}")
    assert (gone.status, gone.body) == (404, {"errors": [{"code": "CMNC-404", "message": "No goods out notes found"}]})
    left = await client.get(f"warehouse-service/order/*/goods-note/goods-out/{new},{printed}")
    assert list(left["response"]) == [str(printed)]  # the unknown id left out
    assert [row["goodsOutNoteId"] for row in await client.rows(NOTES)] == [shipped, printed]
    again = await client.ok("POST", f"/orders/{orders[2]}/goods-out-notes", status=201)  # its rows are free again
    assert again["id"] > new
    refused = [
        ("POST", f"/goods-out-notes/{printed}/unstage", {"stage": "printed"}, 409),  # not printed any more
        ("POST", f"/goods-out-notes/{printed}/unstage", {"stage": "shipped"}, 409),
        ("POST", f"/goods-out-notes/{shipped}/unstage", {"stage": "picked"}, 409),
        ("POST", "/goods-out-notes/999/unstage", {"stage": "picked"}, 404),
        ("PATCH", f"/goods-out-notes/{printed}", {}, 400),
        ("PATCH", f"/goods-out-notes/{printed}", {"boxes": -1}, 400),
        ("PATCH", f"/goods-out-notes/{shipped}", {"priority": True}, 409),
        ("DELETE", f"/goods-out-notes/{shipped}", None, 409),
        ("DELETE", f"/goods-out-notes/{new}", None, 404),
    ]
    for method, path, change, status in refused:
        reply = await client.control(method, f"/accounts/acme{path}", change)
        assert reply.status == status, (method, path, change)


BAD_INPUT: list[tuple[str, str, Any, int]] = [
    ("POST", "/stock/receive", {"product_id": 10001, "warehouse_id": 2, "quantity": 0}, 400),
    ("POST", "/stock/receive", {"product_id": 10001, "warehouse_id": 2}, 400),
    ("POST", "/stock/receive", {"product_id": 10001, "warehouse_id": 9, "quantity": 1}, 422),
    ("POST", "/stock/receive", {"product_id": 1, "warehouse_id": 2, "quantity": 1}, 404),
    ("POST", "/stock/receive", {"product_id": 10002, "warehouse_id": 2, "quantity": 1}, 409),  # not tracked
    ("POST", "/stock/correct", {"product_id": 10001, "warehouse_id": 2, "quantity": 0}, 400),
    ("POST", "/stock/correct", {"product_id": 10002, "warehouse_id": 2, "quantity": -1}, 409),
    ("POST", "/orders", {"rows": [{"product_id": 1}]}, 422),
    ("POST", "/orders", {"rows": [{"product_id": 10001, "quantity": 0}]}, 400),
    ("POST", "/orders", {"rows": []}, 400),
    ("POST", "/orders", {"warehouse_id": 9}, 422),
    ("POST", "/orders", {"order_type": "PO", "allocate": True}, 409),
    ("POST", "/orders/999/allocate", None, 404),
    ("POST", "/orders/2/allocate", None, 409),  # a purchase order
    ("POST", "/orders/1/goods-out-notes", None, 409),  # no stock-tracked rows
    ("POST", "/orders/2/goods-out-notes", None, 409),
    ("POST", "/orders/x/goods-out-notes", None, 404),
    ("POST", "/goods-out-notes/999/stage", {"stage": "printed"}, 404),
    ("POST", "/goods-out-notes/abc/stage", {"stage": "printed"}, 404),
    ("POST", "/goods-out-notes/1/stage", {"stage": "lost"}, 400),
    ("PATCH", "/orders/1", {}, 400),
    ("PATCH", "/orders/1", {"delivery_date": "tomorrow"}, 400),
    ("PATCH", "/orders/1", {"add_rows": [{"product_id": 5}]}, 422),
    ("PATCH", "/orders/999", {"reference": "x"}, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_INPUT)
async def test_bad_warehouse_input_is_a_4xx(client: Client, method: str, path: str, body: Any, status: int) -> None:
    await client.products(1)  # 10001
    await client.products(1, stock_tracked=False)  # 10002
    await client.orders(1)  # 1: the recorded row only
    await client.orders(1, order_type="PO")  # 2
    reply = await client.control(method, f"/accounts/acme{path}", body)
    assert reply.status == status, reply.text
    assert reply.body["error"]
    assert client.sandbox.account().stock.movements == {}
    assert client.sandbox.account().goods_out_notes == {}
