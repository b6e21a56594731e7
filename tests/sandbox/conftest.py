"""Fixtures for the sandbox's tests: a sandbox on a free loopback port, a real client session, fake clocks."""

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import SandboxServer, start_sandbox

START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


class WallClock:
    """The account's clock (aware UTC datetimes), moved by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeMonotonic:
    """The throttle's and faults' clock, moved by hand (milliseconds)."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)


@dataclass
class Client:
    """Brightpearl and control-API calls against one sandbox, over real HTTP."""

    sandbox: SandboxServer
    http: aiohttp.ClientSession

    def credentials(self, code: str = "acme") -> dict[str, str]:
        account = self.sandbox.account(code)
        return {"brightpearl-app-ref": account.app_ref, "brightpearl-account-token": account.account_token}

    async def call(self, method: str, url: str, **kwargs: Any) -> Reply:
        async with self.http.request(method, url, allow_redirects=False, **kwargs) as response:
            return Reply(response.status, response.headers, await response.text())

    async def bp(
        self,
        method: str,
        path: str,
        *,
        account: str = "acme",
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A Brightpearl request with the account's credentials unless ``headers`` are given."""
        sent = dict(headers) if headers is not None else self.credentials(account)
        url = f"{self.sandbox.url}/public-api/{account}/{path}"
        return await self.call(method, url, params=params, json=json, headers=sent)

    async def control(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Reply:
        return await self.call(method, f"{self.sandbox.url}/_sandbox{path}", json=json, **kwargs)

    async def orders(self, count: int = 1, account: str = "acme", **extra: Any) -> list[int]:
        reply = await self.control("POST", f"/accounts/{account}/orders", {"count": count, **extra})
        assert reply.status == 201, reply.text
        return list(reply.body["ids"])

    async def search(self, account: str = "acme", **params: str) -> Any:
        reply = await self.bp("GET", "order-service/order-search", account=account, params=params)
        assert reply.status == 200, reply.text
        return reply.body

    async def ok(self, method: str, path: str, json: Any = None, status: int = 200, account: str = "acme") -> Any:
        """A control call on ``/accounts/{account}{path}`` that must answer ``status``; its JSON body."""
        reply = await self.control(method, f"/accounts/{account}{path}", json)
        assert reply.status == status, reply.text
        return reply.body

    async def get(self, path: str, account: str = "acme", **params: str) -> Any:
        """A Brightpearl GET that must answer 200; its JSON body."""
        reply = await self.bp("GET", path, account=account, params=params)
        assert reply.status == 200, reply.text
        return reply.body

    async def products(self, count: int = 1, account: str = "acme", **extra: Any) -> list[int]:
        return list((await self.ok("POST", "/products", {"count": count, **extra}, 201, account))["ids"])

    async def rows(self, path: str, account: str = "acme", **params: str) -> list[dict[str, Any]]:
        """A search's rows as dicts by column name."""
        response = (await self.get(path, account, **params))["response"]
        names = [column["name"] for column in response["metaData"]["columns"]]
        return [dict(zip(names, row, strict=True)) for row in response["results"]]


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def sandbox(wall_clock: WallClock, monotonic: FakeMonotonic) -> AsyncIterator[SandboxServer]:
    """A sandbox whose accounts ``acme`` (-06:00) and ``kiwi`` (+11:00) run on hand-moved clocks."""
    accounts = [
        SandboxAccount("acme", clock=wall_clock, monotonic_ms=monotonic),
        SandboxAccount("kiwi", offset_minutes=660, clock=wall_clock, monotonic_ms=monotonic),
    ]
    server = await start_sandbox(accounts=accounts)
    yield server
    await server.close()


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(sandbox, http)
