"""Custom fields on orders and products (API.md 6.1, 8.1), and status changes that leave ``updatedOn`` alone
(API.md 8, unconfirmed either way: the sandbox does both)."""

from typing import Any

import pytest

from tests.sandbox.conftest import Client, WallClock

BOTH = "customFields,nullCustomFields"


async def one(client: Client, path: str, include_optional: str | None = None) -> dict[str, Any]:
    params = {"includeOptional": include_optional} if include_optional is not None else {}
    (record,) = (await client.get(path, **params))["response"]
    return dict(record)


async def test_an_orders_custom_fields_come_only_when_asked(client: Client, wall_clock: WallClock) -> None:
    (order_id,) = await client.orders(1)
    path = f"order-service/order/{order_id}"
    plain = await one(client, path)
    assert "customFields" not in plain
    assert (await one(client, path, "customFields"))["customFields"] == {}
    assert (await one(client, path, BOTH))["customFields"] == {"PCF_GIFTWRAP": None, "PCF_DELIVNOTE": None}
    wall_clock.advance(5)
    changed = await client.ok("PATCH", f"/orders/{order_id}", {"custom_fields": {"PCF_GIFTWRAP": True}})
    assert changed["custom_fields"] == {"PCF_GIFTWRAP": True}
    edited = await one(client, path, BOTH)
    assert list(edited)[-1] == "customFields"  # last, after orderWeighting, as the recorded key list has it
    assert edited["customFields"] == {"PCF_GIFTWRAP": True, "PCF_DELIVNOTE": None}
    assert (await one(client, path, "customFields"))["customFields"] == {"PCF_GIFTWRAP": True}
    assert (edited["version"], edited["updatedOn"]) == (plain["version"] + 1, "2026-11-26T04:00:05.000-06:00")
    without = await one(client, path)
    assert "customFields" not in without  # the edit shows only as version and updatedOn (API.md 8.1)
    assert {k: v for k, v in without.items() if k not in ("version", "updatedOn")} == {
        k: v for k, v in plain.items() if k not in ("version", "updatedOn")
    }
    await client.ok("PATCH", f"/orders/{order_id}", {"custom_fields": {"PCF_GIFTWRAP": None}})  # unset
    assert (await one(client, path, "customFields"))["customFields"] == {}


async def test_a_products_custom_fields_come_only_when_asked(client: Client, wall_clock: WallClock) -> None:
    (product_id,) = await client.products(1)
    path = f"product-service/product/{product_id}"
    plain = await one(client, path)
    assert "customFields" not in plain
    wall_clock.advance(2)
    changed = await client.ok("PATCH", f"/products/{product_id}", {"custom_fields": {"PCF_COLOUR": "red"}})
    assert changed["version"] > plain["version"]
    edited = await one(client, path, BOTH)
    assert edited["customFields"] == {"PCF_COLOUR": "red", "PCF_WARRANTY": None}
    assert edited["updatedOn"] == "2026-11-26T04:00:02.000-06:00"
    assert "customFields" not in await one(client, path)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/orders/1", {"custom_fields": {"PCF_NOPE": 1}}, 422),
        ("/orders/1", {"custom_fields": {"PCF_GIFTWRAP": True, "PCF_NOPE": 1}}, 422),
        ("/orders/1", {"custom_fields": {}}, 400),
        ("/orders/1", {"custom_fields": {"PCF_GIFTWRAP": [1]}}, 400),
        ("/products/10001", {"custom_fields": {"PCF_NOPE": "x"}}, 422),
    ],
)
async def test_bad_custom_fields_are_refused_and_change_nothing(
    client: Client, path: str, body: Any, status: int
) -> None:
    await client.orders(1)
    await client.products(1)
    reply = await client.control("PATCH", f"/accounts/acme{path}", body)
    assert reply.status == status, reply.text
    order = await one(client, "order-service/order/1", BOTH)
    assert (order["version"], order["customFields"]["PCF_GIFTWRAP"]) == (1, None)


async def test_a_status_change_that_does_not_move_updated_on(client: Client, wall_clock: WallClock) -> None:
    assert (await client.ok("GET", ""))["status_moves_updated_on"] is True
    (order_id,) = await client.orders(1)
    wall_clock.advance(3)
    changed = await client.ok("PATCH", "", {"status_moves_updated_on": False})
    assert changed["status_moves_updated_on"] is False
    before = await one(client, f"order-service/order/{order_id}")
    reply = await client.bp("PUT", f"order-service/order/{order_id}/status", json={"orderStatusId": 4})
    assert reply.status == 200, reply.text
    after = await one(client, f"order-service/order/{order_id}")
    assert after["orderStatus"]["orderStatusId"] == 4
    assert (after["version"], after.get("updatedOn")) == (before["version"], before.get("updatedOn"))
    [row] = (await client.search(columns="orderId,orderStatusId,updatedOn"))["response"]["results"]
    assert row == [order_id, 4, None]  # the search sees the status; an updatedOn stream does not
    await client.ok("PATCH", "", {"status_moves_updated_on": True})
    await client.ok("PUT", f"/orders/{order_id}/status", {"status_id": 1})
    moved = await one(client, f"order-service/order/{order_id}")
    assert (moved["version"], moved["updatedOn"]) == (before["version"] + 1, "2026-11-26T04:00:03.000-06:00")


async def test_an_account_made_with_status_changes_that_do_not_move_updated_on(client: Client) -> None:
    made = await client.control("POST", "/accounts", {"code": "still", "status_moves_updated_on": False})
    assert made.status == 201, made.text
    assert client.sandbox.account("still").status_moves_updated_on is False
    (order_id,) = await client.orders(1, account="still")
    await client.ok("PUT", f"/orders/{order_id}/status", {"status_id": 4}, account="still")
    (order,) = (await client.get(f"order-service/order/{order_id}", account="still"))["response"]
    assert (order["version"], "updatedOn" in order, order["orderStatus"]["orderStatusId"]) == (1, False, 4)
