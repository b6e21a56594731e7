"""Brightpearl requests through a proxy from the environment, read once: a real forward proxy on loopback (it
answers for the host asked, as a proxy relaying to Brightpearl would), and ``NO_PROXY`` honoured."""

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import Unavailable
from workers.brightpearl.proxies import Proxies, environment_proxies


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A forward proxy that records the absolute URL of each request and answers it as Brightpearl would."""
    seen: list[str] = []

    async def relay(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"response": [{"id": 1}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


@pytest.fixture
def fresh_environment() -> Iterator[None]:
    environment_proxies.cache_clear()
    yield
    environment_proxies.cache_clear()


def client(session: aiohttp.ClientSession, host: str) -> BrightpearlClient:
    return BrightpearlClient(session, Credentials(f"http://{host}/public-api/acme", "acme_app", "tok"), timeout_s=3)


@pytest.mark.usefixtures("fresh_environment")
async def test_requests_go_through_the_environments_proxy(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with aiohttp.ClientSession(trust_env=False) as session:
        assert await client(session, "brightpearl.invalid").get("order-service/order/1") == [{"id": 1}]
    assert seen == ["http://brightpearl.invalid/public-api/acme/order-service/order/1"]


@pytest.mark.usefixtures("fresh_environment")
async def test_no_proxy_hosts_are_reached_directly(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("NO_PROXY", "brightpearl.invalid")
    async with aiohttp.ClientSession(trust_env=False) as session:
        with pytest.raises(Unavailable):  # straight to a host that does not resolve
            await client(session, "brightpearl.invalid").get("order-service/order/1")
    assert seen == []


@pytest.mark.usefixtures("fresh_environment")
async def test_the_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    first = environment_proxies()
    assert first.for_url("https://euw1.brightpearlconnect.com/public-api/acme/x") == "http://proxy.example:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:3128")
    assert environment_proxies() is first
    assert first.for_url("https://euw1.brightpearlconnect.com/public-api/acme/y") == "http://proxy.example:3128"


def test_without_a_proxy_every_host_is_direct() -> None:
    proxies = Proxies({})
    assert proxies.for_url("https://euw1.brightpearlconnect.com/x") is None
    assert Proxies({"https": "http://p:1"}).for_url("http://plain.example/x") is None  # no proxy for http
