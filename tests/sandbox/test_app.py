"""The app factory, the runner and ``relay sandbox``'s serve-forever, each on a real loopback port."""

import asyncio
import contextlib
import io
import re

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import create_sandbox_app, serve_sandbox_forever, start_sandbox
from relay.sandbox.state import SANDBOX_STATE, UnknownAccount


async def test_the_app_state_is_shared_with_in_process_tests() -> None:
    account = SandboxAccount("shop", app_ref="shop_app", account_token="t0ken", first_order_id=1000)
    app = create_sandbox_app([account])
    assert app[SANDBOX_STATE].account("shop") is account
    [order] = account.create_orders(1, "SO")
    assert order.id == 1000
    async with TestServer(app, host="127.0.0.1", port=0) as server, aiohttp.ClientSession() as http:
        headers = {"brightpearl-app-ref": "shop_app", "brightpearl-account-token": "t0ken"}
        async with http.get(server.make_url("/public-api/shop/order-service/order/1000"), headers=headers) as r:
            assert r.status == 200
            assert [o["id"] for o in (await r.json(content_type=None))["response"]] == [1000]


async def test_start_sandbox_defaults_to_one_account_acme() -> None:
    async with await start_sandbox() as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
        assert sandbox.base_url("acme") == f"{sandbox.url}/public-api/acme"
        assert sandbox.control_url == f"{sandbox.url}/_sandbox"
        account = sandbox.account("acme")
        assert (account.code, account.app_ref, account.offset_minutes) == ("acme", "acme_relay", -360)
        assert len(account.account_token) >= 24
        assert account.account_token != account.staff_token
        assert list(sandbox.state.accounts) == ["acme"]
        with pytest.raises(UnknownAccount):
            sandbox.account("nobody")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(sandbox.url + "/_sandbox"):
                pass


async def test_two_sandboxes_get_their_own_ports_and_tokens() -> None:
    async with await start_sandbox() as one, await start_sandbox() as two:
        assert one.url != two.url
        assert one.account().account_token != two.account().account_token


async def test_serve_sandbox_forever_prints_how_to_reach_it_and_stops_when_cancelled() -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve_sandbox_forever("127.0.0.1", 0, "demo", out=out))
    for _ in range(200):  # up to 2 s for the eight lines
        if out.getvalue().count("\n") >= 8:
            break
        await asyncio.sleep(0.01)
    lines = dict(line.split(None, 1) for line in out.getvalue().splitlines())
    assert list(lines) == [
        "base_url",
        "app_ref",
        "account_token",
        "oauth_url",
        "client_id",
        "client_secret",
        "dev_ref",
        "control",
    ]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/oauth", lines["oauth_url"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/public-api/demo", lines["base_url"])
    assert lines["app_ref"] == "demo_relay"
    assert out.getvalue().startswith("base_url      http://")
    headers = {"brightpearl-app-ref": lines["app_ref"], "brightpearl-account-token": lines["account_token"]}
    async with aiohttp.ClientSession() as http:
        async with http.get(lines["base_url"] + "/order-service/order-status", headers=headers) as reply:
            assert reply.status == 200
        async with http.get(lines["control"] + "/accounts") as reply:
            assert [a["code"] for a in await reply.json()] == ["demo"]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(lines["control"]):
                pass


async def test_a_port_in_use_is_an_error_not_a_hang() -> None:
    async with await start_sandbox() as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        with pytest.raises(OSError):  # noqa: PT011 (address in use)
            await start_sandbox(port=port)
