"""Answers that stall a naive poller (API.md 8.1), as the sandbox gives them: Cloudflare's HTML pages, empty
bodies, product-availability's 400 for a whole request naming one bad id, and deleted products."""

import pytest

from tests.sandbox.conftest import Client

AVAILABILITY = "warehouse-service/product-availability/"


@pytest.mark.parametrize("status", [403, 502, 520, 521, 522, 523, 524])
async def test_an_html_fault_answers_cloudflare_s_page(client: Client, status: int) -> None:
    await client.ok("POST", "/faults", {"kind": "html", "status": status, "count": 1}, 201)
    reply = await client.bp("GET", "order-service/order/1")
    assert reply.status == status
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Server"] == "cloudflare"
    assert "Brightpearl-Requests-Remaining" not in reply.headers  # Cloudflare answered, not Brightpearl
    assert reply.text.startswith("<!DOCTYPE html>")
    assert ("Attention Required! | Cloudflare" if status == 403 else f"| {status}: ") in reply.text
    assert (await client.bp("GET", "order-service/order/1")).status == 200  # the count ran out


async def test_an_html_fault_refuses_a_status_cloudflare_does_not_give(client: Client) -> None:
    reply = await client.control("POST", "/accounts/acme/faults", {"kind": "html", "status": 500})
    assert reply.status == 400
    faults = await client.ok("GET", "/faults")
    assert faults["faults"] == []


async def test_an_html_fault_is_listed_with_its_status(client: Client) -> None:
    await client.ok("POST", "/faults", {"kind": "html", "status": 522}, 201)
    (listed,) = (await client.ok("GET", "/faults"))["faults"]
    assert (listed["kind"], listed["status"]) == ("html", 522)


async def test_an_empty_fault_answers_200_with_no_body(client: Client) -> None:
    await client.ok("POST", "/faults", {"kind": "empty", "count": 1, "path_contains": "order-search"}, 201)
    reply = await client.bp("GET", "order-service/order-search")
    assert (reply.status, reply.text) == (200, "")
    assert reply.headers["Brightpearl-Requests-Remaining"]
    assert (await client.bp("GET", "order-service/order-search")).text.startswith('{"response"')


async def test_availability_answers_400_for_the_whole_request_naming_an_untracked_product(client: Client) -> None:
    first, second = await client.products(2, stock={"2": 5})
    (untracked,) = await client.products(1, stock_tracked=False)
    reply = await client.bp("GET", f"{AVAILABILITY}{first},{second},{untracked}")
    assert reply.status == 400
    (error,) = reply.body["errors"]
    assert error["code"].startswith("WHS")
    assert str(untracked) in error["message"]
    good = await client.get(f"{AVAILABILITY}{first},{second}")
    assert sorted(good["response"]) == sorted([str(first), str(second)])
    assert await client.get(f"{AVAILABILITY}1007") == {"response": {}}  # an id never held is left out


async def test_a_deleted_product_is_gone_and_poisons_availability(client: Client) -> None:
    first, second = await client.products(2, stock={"2": 5})
    assert await client.ok("DELETE", f"/products/{second}") == {"deleted": second}
    products = (await client.get(f"product-service/product/{first},{second}"))["response"]
    assert [p["id"] for p in products] == [first]
    rows = await client.rows("product-service/product-search", columns="productId")
    assert [row["productId"] for row in rows] == [first]
    assert (await client.bp("GET", f"{AVAILABILITY}{first},{second}")).status == 400
    assert (await client.control("DELETE", f"/accounts/acme/products/{second}")).status == 404


async def test_an_account_set_to_ignore_leaves_bad_ids_out(client: Client) -> None:
    first, second = await client.products(2, stock={"2": 5})
    (untracked,) = await client.products(1, stock_tracked=False)
    await client.ok("DELETE", f"/products/{second}")
    changed = await client.ok("PATCH", "", {"availability_bad_ids": "ignore"})
    assert changed["availability_bad_ids"] == "ignore"
    body = await client.get(f"{AVAILABILITY}{first},{second},{untracked}")
    assert list(body["response"]) == [str(first)]
    created = await client.control("POST", "/accounts", {"code": "beta", "availability_bad_ids": "ignore"})
    assert created.body["availability_bad_ids"] == "ignore"
    refused = await client.control("PATCH", "/accounts/acme", {"availability_bad_ids": "sometimes"})
    assert refused.status == 400
