"""The Brightpearl client against a real HTTP server answering with recorded Brightpearl exchanges."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from tests.recorded import Exchange, load
from workers.brightpearl.client import BrightpearlClient, Credentials, datacenter_base_url
from workers.brightpearl.errors import AuthenticationFailed, RequestRejected, Unavailable
from workers.budget import RequestBudget

THROTTLED = b'{"response":"You have sent too many requests. Please wait before sending another request"}'


@dataclass
class Scripted:
    """A server that answers each request with the next scripted answer and remembers what it was asked."""

    answers: list[Exchange | Callable[[web.Request], web.Response]] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if callable(answer):
            return answer(request)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    scripted.base_url = f"http://127.0.0.1:{port}/public-api/barulu"
    yield scripted
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def no_sleep(_: float) -> None:
    return None


def client(server: Scripted, session: aiohttp.ClientSession, **kwargs: object) -> BrightpearlClient:
    credentials = Credentials(server.base_url, "barulu_relay", "tok-123")
    return BrightpearlClient(session, credentials, sleep=no_sleep, **kwargs)  # type: ignore[arg-type]


def throttled(wait_ms: int) -> Callable[[web.Request], web.Response]:
    def answer(_: web.Request) -> web.Response:
        return web.Response(
            status=503,
            body=THROTTLED,
            content_type="application/json",
            headers={"Brightpearl-Requests-Remaining": "0", "Brightpearl-Next-Throttle-Period": str(wait_ms)},
        )

    return answer


def test_datacenter_base_url() -> None:
    assert datacenter_base_url("euw1", "acme") == "https://euw1.brightpearlconnect.com/public-api/acme"


async def test_search_maps_rows_through_columns(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers.append(load("order_search.yml.0.txt"))
    page = await client(server, session).search("order-service/order-search", {"customerRef": "#0001"})
    assert [row["orderId"] for row in page.rows] == [322, 323, 324, 325]
    assert page.rows[0]["updatedOn"] is None  # new orders: updatedOn null, as recorded
    assert page.rows[1]["deliveryDate"] == "2022-02-02T10:46:31.000-06:00"
    assert page.more_pages is False
    assert (page.results_available, page.first_result, page.last_result) == (4, 1, 4)
    assert page.sorting == [("orderId", "ASC")]
    assert page.reference["orderTypeNames"]["2"] == "PURCHASE_ORDER"
    request = server.requests[0]
    assert request.path == "/public-api/barulu/order-service/order-search"
    assert request.query["customerRef"] == "#0001"


async def test_every_request_carries_the_auth_headers(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers += [load("order_status_get.yml.0.txt"), load("order_status_get.yml.0.txt")]
    await client(server, session).get("order-service/order-status/1")
    staff = BrightpearlClient(session, Credentials(server.base_url, "barulu_relay", "staff-9", "staff_token"))
    await staff.get("order-service/order-status/1")
    first, second = server.requests
    assert first.headers["brightpearl-app-ref"] == "barulu_relay"
    assert first.headers["brightpearl-account-token"] == "tok-123"
    assert "brightpearl-staff-token" not in first.headers
    assert second.headers["brightpearl-staff-token"] == "staff-9"


async def test_rate_headers_are_read_on_every_answer(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers.append(load("client_error_invalid.yml.1.txt"))
    bp = client(server, session)
    with pytest.raises(AuthenticationFailed):
        await bp.get("product-service/product/1")
    assert bp.rate.requests_remaining == 196
    assert bp.rate.next_throttle_period_ms == 50389


@pytest.mark.parametrize(
    ("recording", "message"),
    [
        ("client_error_expired.yml.0.txt", "Authorization token expired"),
        ("client_error_invalid.yml.1.txt", "Invalid instance token: INVALID_STUFF"),
    ],
)
async def test_401_with_a_string_response(
    server: Scripted, session: aiohttp.ClientSession, recording: str, message: str
) -> None:
    server.answers.append(load(recording))
    with pytest.raises(AuthenticationFailed) as caught:
        await client(server, session).get("order-service/order/1")
    assert caught.value.status == 401
    assert caught.value.messages == [message]
    assert message in str(caught.value)


async def test_bad_filter_is_a_500_with_errors(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers.append(load("order_search_bad_param.yml.0.txt"))
    with pytest.raises(RequestRejected) as caught:
        await client(server, session).search("order-service/order-search", {"orderStatusId": "BAD PARAM"})
    assert caught.value.status == 500
    assert caught.value.messages == ["CMNC-018: The filter orderStatusId=BAD PARAM cannot be parsed as: INTEGER"]


async def test_get_many_accepts_any_order_and_missing_ids(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers += [load("order_get_multiple.yml.0.txt")]
    orders = await client(server, session).get_many("order-service/order/", [321, 1, 320])
    assert sorted(o["id"] for o in orders) == [1, 320, 321]
    assert server.requests[0].path.endswith("/order-service/order/1,320,321")


async def test_get_many_of_nothing_known(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers += [load("order_get_empty_not_found.yml.0.txt"), load("customer__get__empty_not_found.yml.0.txt")]
    bp = client(server, session)
    assert await bp.get_many("order-service/order/", [999]) == []
    assert await bp.get_many("contact-service/contact/", [1]) == []  # contacts answer 404 for none


async def test_get_many_splits_at_200_ids(server: Scripted, session: aiohttp.ClientSession) -> None:
    def empty(_: web.Request) -> web.Response:
        return web.json_response({"response": []})

    server.answers += [empty, empty, empty]
    await client(server, session).get_many("order-service/order/", list(range(1, 451)))
    assert [r.path.rsplit("/", 1)[1] for r in server.requests] == ["1-200", "201-400", "401-450"]


async def test_throttle_waits_the_period_and_retries(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers += [throttled(2381), throttled(1500), load("order_status_get.yml.0.txt")]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    bp = BrightpearlClient(session, Credentials(server.base_url, "a", "b"), sleep=sleep)
    statuses = await bp.get("order-service/order-status/1")
    assert statuses[0]["name"] == "Draft / Quote"
    assert waits == [2.381, 1.5]  # what Brightpearl said, each time
    assert len(server.requests) == 3


async def test_throttle_pauses_the_shared_budget(
    server: Scripted, session: aiohttp.ClientSession, redis_client: Redis
) -> None:
    server.answers += [throttled(300), load("order_status_get.yml.0.txt")]
    budget = RequestBudget(redis_client, "barulu", 100, now_ms=lambda: int(time.time() * 1000))
    bp = BrightpearlClient(session, Credentials(server.base_url, "a", "b"), budget=budget)
    other_process = RequestBudget(redis_client, "barulu", 100, now_ms=lambda: int(time.time() * 1000))
    started = time.monotonic()
    task = asyncio.create_task(bp.get("order-service/order-status/1"))
    await asyncio.sleep(0.1)
    await other_process.acquire(max_wait_s=5)  # another process on the same account also waits the pause out
    assert time.monotonic() - started >= 0.28
    await task
    assert time.monotonic() - started >= 0.28
    assert await budget.used_last_minute() == 3


async def test_throttle_gives_up_after_its_waits(server: Scripted, session: aiohttp.ClientSession) -> None:
    server.answers += [throttled(100)] * 3
    with pytest.raises(Unavailable, match="still throttled"):
        await client(server, session, max_throttle_waits=2).get("order-service/order/1")


async def test_a_503_that_is_not_throttling_is_an_outage(server: Scripted, session: aiohttp.ClientSession) -> None:
    def unavailable(_: web.Request) -> web.Response:
        return web.json_response({"response": "Service Unavailable"}, status=503)

    server.answers.append(unavailable)
    with pytest.raises(Unavailable, match="Service Unavailable"):
        await client(server, session).get("order-service/order/1")
    assert len(server.requests) == 1


async def test_malformed_json_is_unavailable(server: Scripted, session: aiohttp.ClientSession) -> None:
    def truncated(_: web.Request) -> web.Response:
        return web.Response(body=b'{"response": [{"id": 1', content_type="application/json")

    server.answers.append(truncated)
    with pytest.raises(Unavailable, match="not JSON"):
        await client(server, session).get("order-service/order/1")


async def test_no_answer_is_unavailable(session: aiohttp.ClientSession) -> None:
    bp = BrightpearlClient(session, Credentials("http://127.0.0.1:9/public-api/x", "a", "b"))
    with pytest.raises(Unavailable, match="no answer"):
        await bp.get("order-service/order/1")
