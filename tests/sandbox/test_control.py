"""The control API under /_sandbox: accounts, orders, faults, spending and request counts; bad input is a 4xx."""

from typing import Any

import pytest

from tests.sandbox.conftest import Client, WallClock


async def test_accounts_are_listed_with_what_a_client_needs(client: Client) -> None:
    reply = await client.control("GET", "/accounts")
    assert reply.status == 200
    acme, kiwi = reply.body
    account = client.sandbox.account("acme")
    assert acme == {
        "code": "acme",
        "base_url": f"{client.sandbox.url}/public-api/acme",
        "app_ref": "acme_relay",
        "account_token": account.account_token,
        "staff_token": account.staff_token,
        "oauth": {
            "client_id": "relay_oauth",
            "client_secret": account.oauth.app.client_secret,
            "dev_ref": "relay_dev",
            "oauth_url": f"{client.sandbox.url}/oauth",
        },
        "offset_minutes": -360,
        "clock_skew_s": 0.0,
        "availability_bad_ids": "reject",
        "strict": False,
    }
    assert (kiwi["code"], kiwi["offset_minutes"]) == ("kiwi", 660)
    assert account.account_token != client.sandbox.account("kiwi").account_token


async def test_create_an_account_and_use_it(client: Client) -> None:
    reply = await client.control("POST", "/accounts", {"code": "beta", "offset_minutes": 60})
    assert reply.status == 201
    assert reply.body["base_url"] == client.sandbox.base_url("beta")
    assert (await client.control("POST", "/accounts", {"code": "beta"})).status == 409
    assert await client.orders(2, account="beta") == [1, 2]
    answer = await client.search("beta", columns="createdOn")
    assert answer["response"]["results"][0][0].endswith("+01:00")
    fixed = {"code": "gamma", "app_ref": "gamma_x", "account_token": "tok", "staff_token": "staff"}
    assert (await client.control("POST", "/accounts", fixed)).status == 201
    creds = {"brightpearl-app-ref": "gamma_x", "brightpearl-staff-token": "staff"}
    assert (await client.bp("GET", "order-service/order/1", account="gamma", headers=creds)).status == 200


async def test_change_offset_and_clock_skew(client: Client, wall_clock: WallClock) -> None:
    reply = await client.control("PATCH", "/accounts/acme", {"offset_minutes": 330, "clock_skew_s": -3600})
    assert (reply.status, reply.body["offset_minutes"], reply.body["clock_skew_s"]) == (200, 330, -3600)
    created = await client.control("POST", "/accounts/acme/orders", {})
    assert created.body["created_on"] == "2026-11-26T09:00:00Z"  # Brightpearl's clock runs an hour behind
    answer = await client.search(columns="createdOn")
    assert answer["response"]["results"] == [["2026-11-26T14:30:00.000+05:30"]]
    assert (await client.control("GET", "/accounts/acme")).body["offset_minutes"] == 330


async def test_orders_of_one_call_share_a_second(client: Client, wall_clock: WallClock) -> None:
    wall_clock.advance(0.75)
    reply = await client.control("POST", "/accounts/acme/orders", {"count": 3, "order_type": "PC", "status_id": 12})
    assert reply.body == {"ids": [1, 2, 3], "created_on": "2026-11-26T10:00:00Z"}
    late = await client.control(
        "POST", "/accounts/acme/orders", {"created_on": "2026-11-26T03:59:40.250-06:00", "customer_ref": "late"}
    )
    assert late.body == {"ids": [4], "created_on": "2026-11-26T09:59:40Z"}
    assert (await client.control("GET", "/accounts/acme/orders")).body == {"ids": [1, 2, 3, 4]}
    rows = await client.search(columns="orderId,createdOn,customerRef,orderTypeId", sort="createdOn.ASC")
    assert rows["response"]["results"][0] == [4, "2026-11-26T03:59:40.000-06:00", "late", 1]


async def test_change_an_orders_status(client: Client, wall_clock: WallClock) -> None:
    (order_id,) = await client.orders(1)
    wall_clock.advance(12)
    reply = await client.control("PUT", f"/accounts/acme/orders/{order_id}/status", {"status_id": 5})
    assert reply.body == {
        "id": order_id,
        "status_id": 5,
        "name": "Cancelled",
        "version": 2,
        "updated_on": "2026-11-26T10:00:12Z",
    }


async def test_request_counts_and_reset(client: Client) -> None:
    await client.bp("GET", "order-service/order-search")
    await client.bp("GET", "order-service/order/1-3")
    counts = (await client.control("GET", "/accounts/acme/requests")).body
    assert counts["total"] == 2
    assert counts["by_path"] == {"order-service/order-search": 1, "order-service/order/1-3": 1}
    reset = await client.control("DELETE", "/accounts/acme/requests")
    assert (reset.status, reset.body["total"], reset.body["by_path"]) == (200, 0, {})
    assert (await client.control("GET", "/accounts/kiwi/requests")).body["total"] == 0


async def test_spend(client: Client) -> None:
    reply = await client.control("POST", "/accounts/acme/spend", {"requests": 150})
    assert reply.body == {"requests_remaining": 50, "next_throttle_period_ms": 59_999, "in_window": 150}
    await client.bp("GET", "order-service/order/1")
    assert (await client.control("POST", "/accounts/acme/spend", {"requests": 0})).body["in_window"] == 151


async def test_faults_are_listed_and_cleared(client: Client) -> None:
    first = await client.control("POST", "/accounts/acme/faults", {"kind": "slow", "delay_ms": 10, "for_s": 5})
    second = await client.control("POST", "/accounts/acme/faults", {"kind": "unavailable", "count": 1})
    assert (first.status, second.status) == (201, 201)
    assert first.body["id"] != second.body["id"]
    listed = (await client.control("GET", "/accounts/acme/faults")).body["faults"]
    assert [(f["kind"], f["remaining_ms"], f["remaining_count"]) for f in listed] == [
        ("slow", 5000, None),
        ("unavailable", None, 1),
    ]
    assert (await client.control("DELETE", "/accounts/acme/faults")).body == {"cleared": 2}
    assert (await client.control("GET", "/accounts/acme/faults")).body == {"faults": []}


async def test_the_index(client: Client) -> None:
    reply = await client.control("GET", "")
    assert reply.body == {"accounts": f"{client.sandbox.url}/_sandbox/accounts", "codes": ["acme", "kiwi"]}


BAD_INPUT: list[tuple[str, str, Any, int]] = [
    ("POST", "/accounts", {"offset_minutes": 60}, 400),
    ("POST", "/accounts", {"code": "has space"}, 422),
    ("POST", "/accounts", {"code": ""}, 422),
    ("POST", "/accounts", {"code": "acme"}, 409),
    ("POST", "/accounts", {"code": "x", "offset_minutes": 10_000}, 400),
    ("POST", "/accounts", {"code": "x", "offset_minutes": "60"}, 400),
    ("POST", "/accounts", [1, 2], 400),
    ("PATCH", "/accounts/nobody", {"offset_minutes": 0}, 404),
    ("PATCH", "/accounts/acme", {"clock_skew_s": "soon"}, 400),
    ("PATCH", "/accounts/acme", {"colour": "red"}, 400),
    ("POST", "/accounts/nobody/orders", {"count": 1}, 404),
    ("POST", "/accounts/acme/orders", {"count": 0}, 400),
    ("POST", "/accounts/acme/orders", {"count": 1001}, 400),
    ("POST", "/accounts/acme/orders", {"count": True}, 400),
    ("POST", "/accounts/acme/orders", {"count": "3"}, 400),
    ("POST", "/accounts/acme/orders", {"order_type": "XX"}, 400),
    ("POST", "/accounts/acme/orders", {"status_id": 99}, 422),
    ("POST", "/accounts/acme/orders", {"created_on": "yesterday"}, 400),
    ("POST", "/accounts/acme/orders", {"created_on": "2026-11-26T10:00:00"}, 400),  # no offset: ambiguous
    ("PUT", "/accounts/acme/orders/999/status", {"status_id": 4}, 404),
    ("PUT", "/accounts/acme/orders/abc/status", {"status_id": 4}, 404),
    ("PUT", "/accounts/acme/orders/1/status", {"status_id": 99}, 422),
    ("PUT", "/accounts/acme/orders/1/status", {}, 400),
    ("POST", "/accounts/acme/faults", {"kind": "flood"}, 400),
    ("POST", "/accounts/acme/faults", {"kind": "slow"}, 400),
    ("POST", "/accounts/acme/faults", {"kind": "error_500", "count": 0}, 400),
    ("POST", "/accounts/acme/faults", {"kind": "error_500", "for_s": -1}, 400),
    ("POST", "/accounts/acme/faults", {}, 400),
    ("POST", "/accounts/acme/spend", {"requests": -1}, 400),
    ("POST", "/accounts/acme/spend", {}, 400),
    ("GET", "/accounts/nobody/requests", None, 404),
    ("GET", "/nothing-here", None, 404),
    ("DELETE", "/accounts", None, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_INPUT)
async def test_bad_input_is_a_4xx_with_an_error(client: Client, method: str, path: str, body: Any, status: int) -> None:
    await client.orders(1)
    reply = await client.control(method, path, body)
    assert reply.status == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.body["error"], str)
    assert reply.body["error"]


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe"])
async def test_a_body_that_is_not_json_is_a_400(client: Client, data: bytes) -> None:
    reply = await client.control("POST", "/accounts/acme/orders", data=data)
    assert reply.status == 400
    assert "error" in reply.body


async def test_requests_are_counted_by_route(client: Client) -> None:
    (product_id,) = (await client.control("POST", "/accounts/acme/products", {})).body["ids"]
    paths = [
        f"product-service/product/{product_id}",
        "product-service/product-search",
        f"warehouse-service/product-availability/{product_id}",
        f"warehouse-service/product-availability/{product_id},1",
        "warehouse-service/goods-movement-search",
        "warehouse-service/goods-note/goods-out-search",
        "warehouse-service/order/*/goods-note/goods-out/1",
        "warehouse-service/order/1/goods-note/goods-out/",
        "contact-service/contact-search",
        "contact-service/contact/1",
    ]
    for path in paths:
        await client.bp("GET", path)
    by_route = (await client.control("GET", "/accounts/acme/requests")).body["by_route"]
    assert by_route == {
        "product-service/product/{ids}": 1,
        "product-service/product-search": 1,
        "warehouse-service/product-availability/{ids}": 2,
        "warehouse-service/goods-movement-search": 1,
        "warehouse-service/goods-note/goods-out-search": 1,
        "warehouse-service/order/{orders}/goods-note/goods-out/{notes}": 1,
        "warehouse-service/order/{orders}/goods-note/goods-out": 1,
        "contact-service/contact-search": 1,
        "contact-service/contact/{ids}": 1,
    }


async def test_things_made_are_listed(client: Client) -> None:
    products = (await client.control("POST", "/accounts/acme/products", {"count": 3})).body["ids"]
    contacts = (await client.control("POST", "/accounts/acme/contacts", {"count": 2})).body["ids"]
    assert (await client.control("GET", "/accounts/acme/products")).body == {"ids": products}
    assert (await client.control("GET", "/accounts/acme/contacts")).body == {"ids": contacts}
    assert (await client.control("GET", "/accounts/acme/goods-out-notes")).body == {"ids": []}
    assert (products[0], contacts[0]) == (10_001, 1_001)
