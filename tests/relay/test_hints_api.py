"""Hints over the HTTP API: the settings, the account's hint fields, and receiving hints at
``POST /hooks/brightpearl/{account}/{hint_token}``, with the API running in this process against the sandbox."""

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from relay.api.context import ApiContext
from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import running
from relay.settings import Settings, describe_error
from subscriptions.core.crypto import TokenCipher
from subscriptions.core.models import AccountRecord
from subscriptions.store import keyspace
from subscriptions.store.records import Store

TOKEN = "hints-api-token-0123456789abcdefghij"
KEY = Fernet.generate_key().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, url: str, http: aiohttp.ClientSession, sandbox: SandboxServer, ctx: ApiContext) -> None:
        self.url = url
        self.http = http
        self.sandbox = sandbox
        self.ctx = ctx

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            text = await response.text()
            assert response.status == expect, text
            assert self.ctx.hints is not None
            return json.loads(text) if text else None

    def account_body(self, **extra: Any) -> dict[str, Any]:
        account = self.sandbox.account("acme")
        return {
            "code": "acme",
            "base_url": self.sandbox.base_url("acme"),
            "app_ref": account.app_ref,
            "account_token": account.account_token,
            "resources": ["orders", "stock", "products"],
            **extra,
        }

    async def hint_token(self) -> str:
        return (await self.ctx.store.get_account("acme")).hint_token

    async def hint(self, body: Any, *, token: str | None = None, code: str = "acme") -> aiohttp.ClientResponse:
        token = token if token is not None else await self.hint_token()
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.http.post(f"{self.url}/hooks/brightpearl/{code}/{token}", data=data) as response:
            await response.read()
            return response


def hint_body(ids: str, event: str = "order.modified.order-status", kind: str = "order") -> dict[str, str]:
    lifecycle = event.split(".")[1]
    return {"accountCode": "acme", "resourceType": kind, "id": ids, "lifecycleEvent": lifecycle, "fullEvent": event}


async def start(redis_url: str, public: bool, **settings: Any) -> AsyncIterator[Api]:
    sandbox = await start_sandbox()
    port = free_port()
    config = Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        allow_private_targets=True,
        encryption_key=SecretStr(KEY),
        public_url=f"http://127.0.0.1:{port}/" if public else None,
        **settings,
    )
    try:
        async with running(config, api=True, worker=False, api_port=port) as parts, aiohttp.ClientSession() as http:
            assert parts.api_url is not None
            assert parts.api is not None
            yield Api(parts.api_url, http, sandbox, parts.api)
    finally:
        await sandbox.close()


@pytest.fixture
async def api(redis_url: str) -> AsyncIterator[Api]:
    async for started in start(redis_url, True, hints_per_minute=5):
        yield started


@pytest.fixture
async def plain_api(redis_url: str) -> AsyncIterator[Api]:
    async for started in start(redis_url, False):
        yield started


# settings


def test_public_url_setting() -> None:
    assert Settings(public_url="https://relay.example.com/").public_url == "https://relay.example.com"
    assert Settings(public_url="").public_url is None
    defaults = Settings()
    assert (defaults.public_url, defaults.hints_per_minute, defaults.hint_coalesce_ms) == (None, 600, 30)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("relay.example.com", "absolute http(s) URL"),
        ("ftp://relay.example.com", "absolute http(s) URL"),
        ("https://relay.example.com/?a=1", "without a query or fragment"),
        ("https://relay.example.com/#x", "without a query or fragment"),
    ],
)
def test_a_bad_public_url_is_one_line(value: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(public_url=value)
    line = describe_error(raised.value)
    assert line.startswith("RELAY_PUBLIC_URL: ")
    assert says in line
    assert "\n" not in line


@pytest.mark.parametrize(("name", "value"), [("hints_per_minute", 0), ("hint_coalesce_ms", -1)])
def test_bad_hint_limits(name: str, value: int) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**{name: value})
    assert describe_error(raised.value).startswith(f"RELAY_{name.upper()}: ")


# the account's fields


async def test_without_a_public_url_hints_are_off_and_cannot_be_turned_on(plain_api: Api) -> None:
    created = await plain_api.call("POST", "/v1/accounts", plain_api.account_body(), 201)
    assert (created["hints"], created["safety_poll_interval_s"]) == (False, 60)
    assert created["status"]["hints"]["state"] == "off"
    refused = await plain_api.call("PATCH", "/v1/accounts/acme", {"hints": True}, 422)
    assert "RELAY_PUBLIC_URL" in refused["detail"]
    await plain_api.call("DELETE", "/v1/accounts/acme", expect=204)
    refused = await plain_api.call("POST", "/v1/accounts", plain_api.account_body(hints=True), 422)
    assert "RELAY_PUBLIC_URL" in refused["detail"]
    assert not await plain_api.ctx.store.account_exists("acme")


@pytest.mark.parametrize("interval", [9, 3601, "often"])
async def test_safety_interval_bounds(plain_api: Api, interval: Any) -> None:
    answer = await plain_api.call("POST", "/v1/accounts", plain_api.account_body(safety_poll_interval_s=interval), 422)
    assert "safety_poll_interval_s" in answer["detail"]
    await plain_api.call("POST", "/v1/accounts", plain_api.account_body(), 201)
    await plain_api.call("PATCH", "/v1/accounts/acme", {"safety_poll_interval_s": interval}, 422)


async def test_with_a_public_url_hints_are_on_and_the_token_never_shows(api: Api, redis_client: Redis) -> None:
    created = await api.call("POST", "/v1/accounts", api.account_body(safety_poll_interval_s=30), 201)
    assert (created["hints"], created["safety_poll_interval_s"]) == (True, 30)
    token = await api.hint_token()
    assert len(token) >= 40
    hints = created["status"]["hints"]
    assert hints["state"] == "healthy"
    assert hints["requests_last_minute"]["hints"] == 0
    assert hints["requests_last_minute"]["polls"] == created["status"]["requests_last_minute"]
    assert hints["reconciled_at"] is not None  # tried at registration (this sandbox may have no webhooks)
    stored = await redis_client.get(keyspace.account("acme"))
    assert stored is not None
    assert token not in stored
    answers = [
        created,
        await api.call("GET", "/v1/accounts/acme"),
        await api.call("GET", "/v1/accounts"),
        await api.call("PATCH", "/v1/accounts/acme", {"safety_poll_interval_s": 120}),
    ]
    for answer in answers:
        assert token not in json.dumps(answer)
    assert answers[-1]["safety_poll_interval_s"] == 120
    async with api.http.get(f"{api.url}/ui/", headers={"Authorization": f"Bearer {TOKEN}"}) as page:
        assert token not in await page.text()
    async with api.http.get(f"{api.url}/metrics") as metrics:
        assert token not in await metrics.text()
    # off and on again: a new token (how to rotate one that leaked); the old one opens nothing
    off = await api.call("PATCH", "/v1/accounts/acme", {"hints": False})
    assert (off["hints"], off["status"]["hints"]["state"], off["status"]["hints"]["subscribed"]) == (False, "off", [])
    assert await api.hint_token() == ""
    on = await api.call("PATCH", "/v1/accounts/acme", {"hints": True})
    assert on["hints"] is True
    new_token = await api.hint_token()
    assert len(new_token) >= 40
    assert new_token != token
    assert (await api.hint(hint_body("1"), token=token)).status == 404
    assert (await api.hint(hint_body("1"), token=new_token)).status == 200


async def test_hints_can_be_refused_at_registration(api: Api) -> None:
    created = await api.call("POST", "/v1/accounts", api.account_body(hints=False), 201)
    assert created["hints"] is False
    assert await api.hint_token() == ""
    await api.call("PATCH", "/v1/accounts/acme", {"hints": True})
    assert await api.hint_token() != ""


# receiving


async def queued(redis: Redis, resource: str) -> set[str]:
    return set(await redis.smembers(keyspace.hint_ids("acme", resource)))  # type: ignore[misc]


async def metric(api: Api, outcome: str) -> float:
    return api.ctx.metrics.registry.get_sample_value("relay_hints_received_total", {"outcome": outcome}) or 0.0


async def test_a_hint_queues_its_ids_and_answers_at_once(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    response = await api.hint(hint_body("1-3,7"))
    assert response.status == 200
    assert await response.json() == {}
    assert await queued(redis_client, "orders") == {"1", "2", "3", "7"}
    stock = await api.hint(hint_body("5", "product.modified.on-hand-modified", "product"))
    assert stock.status == 200
    assert await queued(redis_client, "stock") == {"5"}
    assert await queued(redis_client, "products") == set()
    # the same ids again coalesce: nothing more to read
    assert (await api.hint(hint_body("2,3"))).status == 200
    assert await queued(redis_client, "orders") == {"1", "2", "3", "7"}
    account = await api.call("GET", "/v1/accounts/acme")
    assert account["status"]["hints"]["last_hint_at"] is not None
    assert await metric(api, "accepted") == 3


async def test_a_hint_for_nothing_watched_is_ignored(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(resources=["orders"]), 201)
    response = await api.hint(hint_body("4", "goods-out-note.created", "goods-out-note"))
    assert response.status == 200
    assert not await redis_client.exists(keyspace.hint_pending("acme"))
    assert await metric(api, "ignored") == 1


async def test_too_many_ids_ask_for_a_poll_of_the_resource(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    assert (await api.hint(hint_body("1-50000"))).status == 200
    assert await queued(redis_client, "orders") == set()
    assert await redis_client.smembers(keyspace.hint_overflow("acme")) == {"orders"}  # type: ignore[misc]


@pytest.mark.parametrize("case", ["wrong token", "unknown account", "hints off", "empty token"])
async def test_a_forged_hint_is_a_404_that_queues_nothing_and_asks_brightpearl_nothing(
    api: Api, redis_client: Redis, case: str
) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    token = await api.hint_token()
    if case == "hints off":
        await api.call("PATCH", "/v1/accounts/acme", {"hints": False})
    requests_before = api.sandbox.account("acme").requests.total
    budget_before = await api.ctx.budgets.of("acme").used_last_minute()
    if case == "wrong token":
        response = await api.hint(hint_body("1"), token=token[:-1] + ("A" if token[-1] != "A" else "B"))
    elif case == "unknown account":
        response = await api.hint(hint_body("1"), token=token, code="nobody")
    elif case == "empty token":
        async with api.http.post(f"{api.url}/hooks/brightpearl/acme/", data=b"{}") as response:
            pass
    else:
        response = await api.hint(hint_body("1"), token=token)
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert await queued(redis_client, "orders") == set()
    assert api.sandbox.account("acme").requests.total == requests_before
    assert await api.ctx.budgets.of("acme").used_last_minute() == budget_before
    if case != "empty token":
        assert await metric(api, "forged") == 1


async def test_a_body_over_64_kb_is_413_before_anything_else(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    big = json.dumps({**hint_body("1"), "padding": "x" * 70_000}).encode()
    for token in (await api.hint_token(), "forged"):
        response = await api.hint(big, token=token)
        assert response.status == 413
        assert response.content_type == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit, then refused
        for _ in range(20):
            yield b"x" * 8192

    url = f"{api.url}/hooks/brightpearl/acme/{await api.hint_token()}"
    async with api.http.post(url, data=chunks()) as response:
        assert response.status == 413
    assert await queued(redis_client, "orders") == set()
    assert await metric(api, "too_large") == 3


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"id": "1"}).encode(), "fullEvent"),
        (json.dumps({"fullEvent": "order.modified", "id": ""}).encode(), "id"),
        (json.dumps({"fullEvent": "order.modified", "id": "1-x"}).encode(), "id"),
    ],
)
async def test_a_malformed_hint_is_400_naming_what_is_wrong(api: Api, body: bytes, says: str) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    response = await api.hint(body)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    url = f"{api.url}/hooks/brightpearl/acme/{await api.hint_token()}"
    async with api.http.post(url, data=body) as again:
        assert says in (await again.json())["detail"]


async def test_hints_over_the_minutes_limit_are_429(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    for n in range(5):  # the fixture's RELAY_HINTS_PER_MINUTE
        assert (await api.hint(hint_body(str(n + 1)))).status == 200
    limited = await api.hint(hint_body("99"))
    assert limited.status == 429
    assert limited.content_type == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "99" not in await queued(redis_client, "orders")
    assert await metric(api, "limited") == 1


async def test_the_hint_token_is_resealed_with_the_brightpearl_token(redis_client: Redis) -> None:
    account = AccountRecord(
        code="acme",
        base_url="http://127.0.0.1:9/public-api/acme",
        app_ref="app",
        auth="account_token",
        token="bp-token",
        poll_interval_s=5,
        resources=["orders"],
        created_at=datetime(2026, 11, 26, tzinfo=UTC),
        hints=True,
        hint_token="the-hint-token",
    )
    await Store(redis_client).create_account(account, {}, 0)  # stored before RELAY_ENCRYPTION_KEY was set
    assert "the-hint-token" in (await redis_client.get(keyspace.account("acme")) or "")
    sealed = Store(redis_client, TokenCipher.from_setting(KEY))
    assert await sealed.reseal_account_tokens() == (1, [])
    stored = await redis_client.get(keyspace.account("acme")) or ""
    assert "the-hint-token" not in stored
    assert "bp-token" not in stored
    assert (await sealed.get_account("acme")).hint_token == "the-hint-token"


async def test_hints_wait_longer_for_more_once_half_the_budget_is_spent(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    await redis_client.delete(keyspace.budget("acme"))
    now_ms = int(api.ctx.clock().timestamp() * 1000)
    assert (await api.hint(hint_body("1"))).status == 200
    quick = await redis_client.zscore(keyspace.POLLS, "acme")
    assert quick is not None
    assert quick - now_ms < 500  # the base wait: RELAY_HINT_COALESCE_MS
    spent = {f"spent-{n}": now_ms for n in range(api.ctx.budget_per_minute)}  # the minute's budget, all used
    await redis_client.zadd(keyspace.budget("acme"), spent)
    await redis_client.zadd(keyspace.POLLS, {"acme": now_ms + 60_000})  # read since: the next poll is a minute off
    assert (await api.hint(hint_body("2"))).status == 200
    slow = await redis_client.zscore(keyspace.POLLS, "acme")
    assert slow is not None
    assert slow - now_ms >= 1_000  # a second for more to come, read in one request
