"""The way in: authentication, the request cap, the headers on every answer, and injected faults."""

import json
import time
import uuid
from typing import Any

import pytest

from tests.recorded import load
from tests.sandbox.conftest import Client, FakeMonotonic, Reply

RECORDED_EXPIRED = load("client_error_expired.yml.0.txt")
RECORDED_INVALID = load("client_error_invalid.yml.1.txt")
THROTTLED = {"response": "You have sent too many requests. Please wait before sending another request"}
FIXED_HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "Cache-Control": "no-cache, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "Mon, 20 Dec 1998 01:00:00 GMT",
}


def assert_brightpearl_headers(reply: Reply, message_type: str | None = None) -> None:
    for name, value in FIXED_HEADERS.items():
        assert reply.headers[name] == value, name
    assert 0 <= int(reply.headers["Brightpearl-Requests-Remaining"]) <= 199
    assert 0 < int(reply.headers["Brightpearl-Next-Throttle-Period"]) < 60_000
    assert uuid.UUID(reply.headers["Ruid"]).version == 4
    if message_type is not None:
        assert reply.headers["Message-Type"] == message_type


async def test_valid_credentials_either_token(client: Client) -> None:
    account = client.sandbox.account()
    assert (await client.bp("GET", "order-service/order/1")).status == 200
    staff = {"brightpearl-app-ref": account.app_ref, "brightpearl-staff-token": account.staff_token}
    assert (await client.bp("GET", "order-service/order/1", headers=staff)).status == 200
    shouting = {"BRIGHTPEARL-APP-REF": account.app_ref, "Brightpearl-Account-Token": account.account_token}
    assert (await client.bp("GET", "order-service/order/1", headers=shouting)).status == 200
    assert account.app_ref == "acme_relay"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "Not authenticated. You must provide a valid authentication token."),
        ({"brightpearl-app-ref": "acme_relay"}, "Not authenticated. You must provide a valid authentication token."),
        ({"brightpearl-account-token": "{token}"}, "Not authenticated. You must provide a valid authentication token."),
        (
            {"brightpearl-app-ref": "acme_relay", "brightpearl-account-token": "INVALID_STUFF"},
            "Invalid instance token: INVALID_STUFF",
        ),
        (
            {"brightpearl-app-ref": "acme_relay", "brightpearl-staff-token": "{token}"},
            "Invalid instance token: {token}",
        ),
        (
            {"brightpearl-app-ref": "other_app", "brightpearl-account-token": "{token}"},
            "Invalid instance token: {token}",
        ),
    ],
)
async def test_authentication_failures(client: Client, headers: dict[str, str], expected: str) -> None:
    token = client.sandbox.account().account_token
    sent = {name: value.replace("{token}", token) for name, value in headers.items()}
    reply = await client.bp("GET", "order-service/order/1", headers=sent)
    assert reply.status == 401
    assert reply.body == {"response": expected.replace("{token}", token)}
    assert_brightpearl_headers(reply, "api-proxy")


async def test_the_recorded_invalid_token_answer(client: Client) -> None:
    headers = {"brightpearl-app-ref": "acme_relay", "brightpearl-account-token": "INVALID_STUFF"}
    reply = await client.bp("GET", "product-service/product/1", headers=headers)
    assert (reply.status, reply.body) == (RECORDED_INVALID.status, json.loads(RECORDED_INVALID.body))
    assert reply.headers["Message-Type"] == RECORDED_INVALID.headers["Message-Type"]


async def test_every_answer_carries_the_headers_and_every_request_counts(client: Client) -> None:
    calls: list[tuple[str, str, dict[str, str] | None, int, str]] = [
        ("GET", "order-service/order-search", None, 200, "bulk-data-search"),
        ("GET", "order-service/order-search?orderStatusId=x", None, 500, "bulk-data-search"),
        ("GET", "order-service/order/1", None, 200, "get-order"),
        ("GET", "order-service/order/1", {}, 401, "api-proxy"),
        ("GET", "order-service/nothing", None, 404, "api-proxy"),
        ("POST", "order-service/order", None, 400, "post-order"),
        ("GET", "order-service/order-status", None, 200, "get-order-status"),
    ]
    for count, (method, path, headers, status, message_type) in enumerate(calls, start=1):
        reply = await client.bp(method, path, headers=headers)
        assert reply.status == status, path
        assert_brightpearl_headers(reply, message_type)
        assert reply.headers["Brightpearl-Requests-Remaining"] == str(200 - count)
    requests = (await client.control("GET", "/accounts/acme/requests")).body
    assert requests["total"] == len(calls)
    assert requests["by_path"]["order-service/order/1"] == 2
    assert requests["by_route"]["order-service/order-search"] == 2
    assert requests["throttled"] == 0


async def test_the_201st_request_in_a_minute_is_throttled(client: Client, monotonic: FakeMonotonic) -> None:
    spent = await client.control("POST", "/accounts/acme/spend", {"requests": 199})
    assert spent.body["requests_remaining"] == 1
    monotonic.advance(5_000)
    last = await client.bp("GET", "order-service/order-search")
    assert last.status == 200
    assert last.headers["Brightpearl-Requests-Remaining"] == "0"
    monotonic.advance(15_000)
    throttled = await client.bp("GET", "order-service/order-search")
    assert (throttled.status, throttled.body) == (503, THROTTLED)
    assert_brightpearl_headers(throttled)
    assert throttled.headers["Brightpearl-Requests-Remaining"] == "0"
    assert throttled.headers["Brightpearl-Next-Throttle-Period"] == "40000"  # until the first 199 leave
    monotonic.advance(40_000)
    again = await client.bp("GET", "order-service/order-search")
    assert again.status == 200
    assert again.headers["Brightpearl-Requests-Remaining"] == "198"  # the 200th is still in the window
    assert again.headers["Brightpearl-Next-Throttle-Period"] == "5000"
    requests = (await client.control("GET", "/accounts/acme/requests")).body
    assert (requests["total"], requests["throttled"]) == (3, 1)


async def test_accounts_are_throttled_separately(client: Client) -> None:
    await client.control("POST", "/accounts/acme/spend", {"requests": 200})
    assert (await client.bp("GET", "order-service/order/1")).status == 503
    assert (await client.bp("GET", "order-service/order/1", account="kiwi")).status == 200


async def fault(client: Client, **body: Any) -> str:
    reply = await client.control("POST", "/accounts/acme/faults", body)
    assert reply.status == 201, reply.text
    return str(reply.body["id"])


async def test_throttle_fault(client: Client, monotonic: FakeMonotonic) -> None:
    await fault(client, kind="throttle", for_s=1.5)
    reply = await client.bp("GET", "order-service/order-search")
    assert (reply.status, reply.body) == (503, THROTTLED)
    assert reply.headers["Brightpearl-Requests-Remaining"] == "0"
    assert reply.headers["Brightpearl-Next-Throttle-Period"] == "1500"
    monotonic.advance(1_000)
    assert (await client.bp("GET", "order-service/order-search")).headers["Brightpearl-Next-Throttle-Period"] == "500"
    monotonic.advance(500)
    assert (await client.bp("GET", "order-service/order-search")).status == 200
    assert (await client.control("GET", "/accounts/acme/requests")).body["throttled"] == 2


async def test_throttle_fault_bounded_by_count(client: Client) -> None:
    await fault(client, kind="throttle", count=2, next_throttle_period_ms=250)
    replies = [await client.bp("GET", "order-service/order/1") for _ in range(3)]
    assert [r.status for r in replies] == [503, 503, 200]
    assert replies[0].headers["Brightpearl-Next-Throttle-Period"] == "250"


@pytest.mark.parametrize(
    ("kind", "status", "body", "message_type"),
    [
        ("error_500", 500, {"errors": [{"code": "CMNU-003", "message": "Internal Server Error"}]}, "get-order"),
        ("unavailable", 503, {"response": "Service Unavailable"}, "api-proxy"),
        ("expire_token", 401, {"response": "Authorization token expired"}, "api-proxy"),
    ],
)
async def test_faults_that_answer_instead(
    client: Client, kind: str, status: int, body: dict[str, Any], message_type: str
) -> None:
    await fault(client, kind=kind, count=2, path_contains="order-service/order/")
    for _ in range(2):
        reply = await client.bp("GET", "order-service/order/1")
        assert (reply.status, reply.body) == (status, body)
        assert_brightpearl_headers(reply, message_type)
        assert (await client.bp("GET", "order-service/order-search")).status == 200  # not this path
    assert (await client.bp("GET", "order-service/order/1")).status == 200  # the count is spent


async def test_expired_token_until_cleared_as_recorded(client: Client) -> None:
    await fault(client, kind="expire_token")
    for _ in range(3):
        reply = await client.bp("GET", "order-service/order/1")
        assert (reply.status, reply.body) == (RECORDED_EXPIRED.status, json.loads(RECORDED_EXPIRED.body))
    assert (await client.control("DELETE", "/accounts/acme/faults")).body == {"cleared": 1}
    assert (await client.bp("GET", "order-service/order/1")).status == 200


async def test_slow_fault(client: Client) -> None:
    await fault(client, kind="slow", delay_ms=200, count=1, path_contains="order-search")
    started = time.monotonic()
    reply = await client.bp("GET", "order-service/order-search")
    assert time.monotonic() - started >= 0.2
    assert reply.status == 200
    assert "results" in reply.body["response"]
    started = time.monotonic()
    await client.bp("GET", "order-service/order-search")
    assert time.monotonic() - started < 0.2


async def test_malformed_fault(client: Client) -> None:
    await client.orders(1)
    await fault(client, kind="malformed", count=1)
    reply = await client.bp("GET", "order-service/order/1")
    assert reply.status == 200
    assert reply.text.startswith('{"response":[{"id":1')
    with pytest.raises(ValueError):  # noqa: PT011 (json.JSONDecodeError)
        json.loads(reply.text)
    assert_brightpearl_headers(reply, "get-order")
    assert (await client.bp("GET", "order-service/order/1")).body["response"][0]["id"] == 1


async def test_faults_after_counting(client: Client) -> None:
    await fault(client, kind="error_500")
    await client.bp("GET", "order-service/order/1")
    reply = await client.bp("GET", "order-service/order/1")
    assert reply.headers["Brightpearl-Requests-Remaining"] == "198"
    listed = (await client.control("GET", "/accounts/acme/faults")).body["faults"]
    assert [f["kind"] for f in listed] == ["error_500"]


async def test_slow_and_error_together(client: Client) -> None:
    await fault(client, kind="slow", delay_ms=50, count=1)
    await fault(client, kind="error_500", count=1)
    started = time.monotonic()
    reply = await client.bp("GET", "order-service/order-search")
    assert reply.status == 500
    assert time.monotonic() - started >= 0.05
