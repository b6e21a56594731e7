"""Every answer Brightpearl (or Cloudflare in front of it) can give, and what the client makes of it: a table
over the pure classification, then the client against a real HTTP server for the cases that stall a lane."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from workers.brightpearl.answers import EMPTY, read_body, response_of, unwrap
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError, RequestRejected, Unavailable

JSON = "application/json;charset=UTF-8"
HTML = "text/html; charset=UTF-8"
CLOUDFLARE_522 = "<!DOCTYPE html><html><head><title>acme | 522: Connection timed out</title></head><body></body></html>"
CLOUDFLARE_403 = "<html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>"
ERRORS = '{"errors":[{"code":"CMNC-404","message":"No Contact Found"}]}'


@pytest.mark.parametrize(
    ("status", "content_type", "text", "error", "kind"),
    [
        (200, JSON, '{"response":[]}', None, None),
        (200, JSON, "", None, None),  # PUT/DELETE may answer no body; a GET's response_of refuses it
        (200, JSON, '{"response": [{"id": 1', Unavailable, "malformed"),  # cut short
        (200, HTML, CLOUDFLARE_522, Unavailable, "html"),
        (200, "", "  <html>oops</html>", Unavailable, "html"),  # no content type, still a page
        (401, JSON, '{"response":"Authorization token expired"}', AuthenticationFailed, "auth"),
        (401, JSON, "", Unavailable, "empty"),  # an empty 401 says nothing of the token
        (403, HTML, CLOUDFLARE_403, Unavailable, "html"),  # Cloudflare's firewall, not a bad token
        (403, JSON, '{"errors":[{"code":"CMNC-403","message":"Forbidden"}]}', AuthenticationFailed, "auth"),
        (403, JSON, '"Forbidden"', Unavailable, "malformed"),  # JSON, not Brightpearl's envelope
        (404, JSON, ERRORS, RequestRejected, "not_found"),
        (400, JSON, '{"errors":[{"code":"WHSC-097","message":"bad id"}]}', RequestRejected, "rejected"),
        (500, JSON, '{"errors":[{"code":"CMNC-018","message":"cannot be parsed"}]}', RequestRejected, "rejected"),
        (500, JSON, '{"response":"Internal error"}', Unavailable, "unavailable"),
        (502, HTML, "<html><head><title>502 Bad Gateway</title></head></html>", Unavailable, "html"),
        (503, JSON, '{"response":"Service Unavailable"}', Unavailable, "unavailable"),
        (
            520,
            HTML,
            "<html><title>acme | 520: Web server is returning an unknown error</title></html>",
            Unavailable,
            "html",
        ),
        (521, HTML, "<html><title>acme | 521: Web server is down</title></html>", Unavailable, "html"),
        (523, HTML, "<html><title>acme | 523: Origin is unreachable</title></html>", Unavailable, "html"),
        (524, HTML, "<html><title>acme | 524: A timeout occurred</title></html>", Unavailable, "html"),
        (502, "text/plain", "", Unavailable, "empty"),
        (504, "text/plain", "upstream timed out", Unavailable, "malformed"),
    ],
)
def test_classification(
    status: int, content_type: str, text: str, error: type[BrightpearlError] | None, kind: str | None
) -> None:
    def classify() -> Any:
        return unwrap("GET", "u", status, read_body("GET", "u", status, content_type, text))

    if error is None:
        classify()
        return
    with pytest.raises(error) as caught:
        classify()
    assert type(caught.value) is error
    assert caught.value.kind == kind
    assert caught.value.status == status


def test_an_html_page_is_named_by_its_title() -> None:
    with pytest.raises(Unavailable) as caught:
        read_body("GET", "u", 522, HTML, CLOUDFLARE_522)
    assert "522: Connection timed out" in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [(EMPTY, "empty"), ({}, "malformed"), ([], "malformed"), ({"errors": []}, "malformed")],
)
def test_a_get_needs_a_response(payload: Any, kind: str) -> None:
    with pytest.raises(Unavailable) as caught:
        response_of("GET", "u", payload)
    assert caught.value.kind == kind


def test_a_response_is_taken_as_it_is() -> None:
    assert response_of("GET", "u", {"response": 0}) == 0


@pytest.fixture
async def availability() -> AsyncIterator[tuple[str, list[str], set[int]]]:
    """A product-availability that answers 400 for the whole request when an id in ``bad`` is in it."""
    asked: list[str] = []
    bad: set[int] = set()

    async def handle(request: web.Request) -> web.Response:
        id_set = request.match_info["ids"]
        asked.append(id_set)
        ids = set()
        for part in id_set.split(","):
            first, _, last = part.partition("-")
            ids |= set(range(int(first), int(last or first) + 1))
        if ids & bad:
            return web.json_response({"errors": [{"code": "WHSC-097", "message": "bad"}]}, status=400)
        figures = {"total": {"inStock": 1}, "warehouses": {}}
        return web.json_response({"response": {str(i): figures for i in sorted(ids)}})

    app = web.Application()
    app.router.add_get("/public-api/acme/warehouse-service/product-availability/{ids}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/public-api/acme", asked, bad
    await runner.cleanup()


AVAILABILITY = "warehouse-service/product-availability/"


@pytest.mark.parametrize(
    ("count", "bad_ids", "max_requests"),
    [
        (1, {1}, 1),
        (2, {2}, 3),
        (100, {37}, 1 + 2 * 7),  # about 2*log2(n) more
        (200, {1, 200}, 1 + 4 * 8),
        (150, {5, 6, 7}, 1 + 6 * 8),
    ],
)
async def test_a_bad_availability_id_is_split_out_and_dropped(
    availability: tuple[str, list[str], set[int]], count: int, bad_ids: set[int], max_requests: int
) -> None:
    base_url, asked, bad = availability
    bad |= bad_ids
    async with aiohttp.ClientSession() as session:
        bp = BrightpearlClient(session, Credentials(base_url, "a", "b"))
        found = await bp.get_keyed(AVAILABILITY, range(1, count + 1), split_on_rejection=True)
    assert sorted(found) == [i for i in range(1, count + 1) if i not in bad_ids]
    assert sorted(bp.dropped_ids) == sorted(bad_ids)
    assert len(asked) <= max_requests


async def test_without_splitting_a_400_is_raised(availability: tuple[str, list[str], set[int]]) -> None:
    base_url, _, bad = availability
    bad.add(3)
    async with aiohttp.ClientSession() as session:
        bp = BrightpearlClient(session, Credentials(base_url, "a", "b"))
        with pytest.raises(RequestRejected):
            await bp.get_keyed(AVAILABILITY, [1, 2, 3])
    assert bp.dropped_ids == []


async def test_a_request_refused_whatever_its_ids_is_raised_not_dropped(
    availability: tuple[str, list[str], set[int]],
) -> None:
    base_url, asked, bad = availability
    bad |= set(range(1, 41))  # every id refused: the request, not its ids, is wrong
    async with aiohttp.ClientSession() as session:
        bp = BrightpearlClient(session, Credentials(base_url, "a", "b"))
        with pytest.raises(RequestRejected):
            await bp.get_keyed(AVAILABILITY, range(1, 41), split_on_rejection=True)
    assert bp.dropped_ids == []
    assert len(asked) < 40


async def test_the_timeout_is_the_client_s() -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"response": []})

    app = web.Application()
    app.router.add_get("/x/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            bp = BrightpearlClient(
                session, Credentials(f"http://127.0.0.1:{runner.addresses[0][1]}/x", "a", "b"), timeout_s=0.2
            )
            with pytest.raises(Unavailable) as caught:
                await bp.get("order-service/order/1")
        assert caught.value.kind == "timeout"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("split", [False, True])
async def test_a_404_naming_none_of_the_ids_is_an_empty_answer_and_an_html_404_is_not(split: bool) -> None:
    """Goods-out notes answer 404 ``CMNC-404`` when none of the ids exist (API.md 8.1): nothing found. A 404
    page from Cloudflare is no such answer: it is not taken for "none exist"."""
    answers = [
        web.json_response({"errors": [{"code": "CMNC-404", "message": "No goods out notes found"}]}, status=404),
        web.Response(status=404, text="<html><title>404 Not Found</title></html>", content_type="text/html"),
    ]

    async def handle(_: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/x/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/x"
            bp = BrightpearlClient(session, Credentials(base_url, "a", "b"))
            notes = "warehouse-service/order/*/goods-note/goods-out/"
            assert await bp.get_keyed(notes, [7, 8], split_on_rejection=split) == {}
            with pytest.raises(Unavailable) as caught:
                await bp.get_keyed(notes, [7, 8], split_on_rejection=split)
            assert caught.value.kind == "html"
            assert bp.dropped_ids == []
    finally:
        await runner.cleanup()
