"""Accounts over the HTTP API, with the relay running in this process (``relay run``) against the sandbox."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import running
from relay.settings import Settings
from tests.e2e import wait_for

TOKEN = "accounts-api-token-0123456789abcdef"


class Api:
    def __init__(self, url: str, http: aiohttp.ClientSession, sandbox: SandboxServer) -> None:
        self.url = url
        self.http = http
        self.sandbox = sandbox

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            payload = await response.json(content_type=None) if response.status != 204 else None
            assert response.status == expect, payload
            return payload

    def account_body(self, **extra: Any) -> dict[str, Any]:
        account = self.sandbox.account("acme")
        return {
            "code": "acme",
            "base_url": self.sandbox.base_url("acme"),
            "app_ref": account.app_ref,
            "account_token": account.account_token,
            **extra,
        }


@pytest.fixture
async def api(redis_url: str) -> AsyncIterator[Api]:
    sandbox = await start_sandbox()
    settings = Settings(redis_url=redis_url, api_token=SecretStr(TOKEN), budget_share=0.25, allow_private_targets=True)
    try:
        async with running(settings, api=True, worker=True, api_port=0) as parts, aiohttp.ClientSession() as http:
            assert parts.api_url is not None
            yield Api(parts.api_url, http, sandbox)
    finally:
        await sandbox.close()


async def test_registration_takes_stock_figures_and_shows_polling(api: Api, redis_client: Redis) -> None:
    async with api.http.post(
        f"{api.sandbox.url}/_sandbox/accounts/acme/products", json={"count": 30, "stock": {"2": 4}}
    ) as response:
        assert response.status == 201
    created = await api.call("POST", "/v1/accounts", api.account_body(poll_intervals_s={"contacts": 300}), 201)
    assert created["poll_intervals_s"] == {"contacts": 300}
    assert created["status"]["resources"]["contacts"]["poll_interval_s"] == 300
    assert created["status"]["resources"]["orders"]["poll_interval_s"] == 5
    assert created["status"]["stock_sweep"]["mode"] == "idle"  # a small catalogue is read at registration
    assert await redis_client.hlen("relay:stock:acme") == 30  # the figures every first change is compared with
    assert created["status"]["budget_per_minute"] == 50
    # the registration answer already says what the budget allows, and what to do about it
    shown = {r: v["effective_poll_interval_s"] for r, v in created["status"]["resources"].items()}
    assert shown == {"orders": 5, "stock": 9.16, "goods-out-notes": 18.321, "products": 36.641, "contacts": 300}
    assert created["warnings"][0] == (
        "stock is polled every 9.16 s, not every 5 s as asked: the relay's 50 requests a minute on this account "
        "do not cover every resource at the intervals asked. Ask longer intervals (poll_intervals_s), watch fewer "
        "resources, or raise RELAY_BUDGET_SHARE."
    )
    assert len(created["warnings"]) == 3  # orders keep 5 s, and contacts are polled every 300 s, as asked

    async def polled() -> bool:
        account = await api.call("GET", "/v1/accounts/acme")
        return all(r["last_poll_at"] for r in account["status"]["resources"].values())

    await wait_for(polled, 20, "every resource to be polled")
    account = await api.call("GET", "/v1/accounts/acme")
    resources = account["status"]["resources"]
    # 50 requests a minute cannot pay for five resources every 5 s: the lower priorities wait, orders keep 5 s
    assert resources["orders"]["effective_poll_interval_s"] == 5
    assert resources["contacts"]["effective_poll_interval_s"] >= 300
    assert 5 < resources["stock"]["effective_poll_interval_s"] < resources["products"]["effective_poll_interval_s"]
    assert [w.split(" ")[0] for w in account["warnings"]] == ["stock", "goods-out-notes", "products"]
    assert resources["orders"]["requests_per_poll"] > 0
    status_sweep = account["status"]["status_sweep"]  # the first sweep of order statuses: an interval after
    assert (status_sweep["last_completed_at"], status_sweep["next_sweep_at"] is not None) == (None, True)
    assert account["status"]["requests_last_minute"] > 0


async def test_intervals_the_budget_covers_give_no_warning(api: Api) -> None:
    created = await api.call("POST", "/v1/accounts", api.account_body(resources=["orders", "stock"]), 201)
    assert created["warnings"] == []
    assert created["status"]["resources"]["orders"]["effective_poll_interval_s"] == 5
    assert (await api.call("GET", "/v1/accounts/acme"))["warnings"] == []
    changed = await api.call("PATCH", "/v1/accounts/acme", {"poll_interval_s": 1})  # 2 + 1 searches a second
    assert [w.split(" ")[0] for w in changed["warnings"]] == ["orders", "stock"]


async def test_dropping_a_resource_forgets_its_state(api: Api, redis_client: Redis) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(resources=["orders", "stock"]), 201)
    assert await redis_client.exists("relay:cursor:acme:stock.movements")
    changed = await api.call("PATCH", "/v1/accounts/acme", {"resources": ["orders"]})
    assert changed["resources"] == ["orders"]
    assert "stock" not in changed["status"]["resources"]
    assert not await redis_client.exists("relay:cursor:acme:stock.movements", "relay:stock:acme")
    await api.call("PATCH", "/v1/accounts/acme", {"resources": ["orders", "contacts"]})
    assert await redis_client.exists("relay:cursor:acme:contacts.created")  # a fresh baseline


@pytest.mark.parametrize(
    "body",
    [{"poll_intervals_s": {"contacts": 0}}, {"poll_intervals_s": {"invoices": 5}}, {"poll_intervals_s": [5]}],
)
async def test_bad_intervals(api: Api, body: dict[str, Any]) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(resources=["orders"]), 201)
    problem = await api.call("PATCH", "/v1/accounts/acme", body, 422)
    assert "poll_intervals_s" in problem["detail"]


async def test_brightpearl_refusing_the_credentials_is_a_422_naming_the_account(api: Api) -> None:
    problem = await api.call("POST", "/v1/accounts", api.account_body(account_token="not-the-token"), 422)
    assert problem["title"] == "Unprocessable"
    assert problem["detail"].startswith("Brightpearl rejected the credentials for 'acme' (HTTP 401: ")
    assert problem["detail"].endswith("); check app_ref and the token")
    await api.call("POST", "/v1/accounts", api.account_body(), 201)
    problem = await api.call("PATCH", "/v1/accounts/acme", {"account_token": "not-the-token"}, 422)
    assert problem["detail"].startswith("Brightpearl rejected the credentials for 'acme' (HTTP 401: ")


async def test_brightpearl_refusing_the_request_is_a_422_naming_the_url(api: Api) -> None:
    body = api.account_body(base_url=api.sandbox.base_url("acme") + "/no-such-service")
    problem = await api.call("POST", "/v1/accounts", body, 422)
    assert problem["title"] == "Unprocessable"
    assert problem["detail"].startswith(f"Brightpearl refused a request to {body['base_url']}/")
    assert problem["detail"].endswith("; check base_url or datacenter and the code")
