"""The relay's Brightpearl webhooks against the sandbox's: subscribed at registration, refused events listed, hints
fired by the sandbox arriving, removed (only the relay's own) when hints go off or the account goes, and put back
when a worker starts."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import running
from relay.settings import Settings
from subscriptions.store import keyspace
from tests.e2e import wait_for
from tests.relay.test_hints_api import KEY, TOKEN, Api, free_port

FOREIGN_URL = "http://127.0.0.1:9/someone-else"
RESOURCES = ["orders", "stock", "products", "contacts"]


class World:
    def __init__(self, api: Api, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self.sandbox: SandboxServer = api.sandbox

    @property
    def control(self) -> str:
        return f"{self.sandbox.url}/_sandbox/accounts/acme"

    async def webhooks(self) -> list[dict[str, Any]]:
        async with self.api.http.get(f"{self.control}/webhooks") as response:
            assert response.status == 200
            return list((await response.json())["webhooks"])

    async def own(self) -> dict[str, str]:
        prefix = f"{self.settings.public_url}/hooks/brightpearl/acme/"
        return {
            w["subscribeTo"]: w["uriTemplate"] for w in await self.webhooks() if w["uriTemplate"].startswith(prefix)
        }

    async def brightpearl(self, method: str, path: str, body: Any = None) -> Any:
        """A request to the sandbox's Brightpearl API with the account's credentials (another integration)."""
        account = self.sandbox.account("acme")
        headers = {"brightpearl-app-ref": account.app_ref, "brightpearl-account-token": account.account_token}
        url = f"{self.sandbox.base_url('acme')}/{path}"
        async with self.api.http.request(method, url, json=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@pytest.fixture
async def world(redis_url: str) -> AsyncIterator[World]:
    sandbox = await start_sandbox()
    port = free_port()
    settings = Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        allow_private_targets=True,
        encryption_key=SecretStr(KEY),
        public_url=f"http://127.0.0.1:{port}",
    )
    try:
        async with running(settings, api=True, worker=False, api_port=port) as parts, aiohttp.ClientSession() as http:
            assert parts.api_url is not None
            assert parts.api is not None
            yield World(Api(parts.api_url, http, sandbox, parts.api), settings)
    finally:
        await sandbox.close()


def body(world: World, **extra: Any) -> dict[str, Any]:
    return world.api.account_body(**{"resources": RESOURCES, **extra})


async def test_registration_subscribes_and_lists_the_refused(world: World, redis_client: Redis) -> None:
    created = await world.api.call("POST", "/v1/accounts", body(world), 201)
    hints = created["status"]["hints"]
    assert hints["subscribed"] == ["order.modified", "order.modified.order-status", "product"]
    assert hints["refused"] == ["contact.created", "contact.modified", "order.created"]
    assert hints["covered"] == ["orders", "stock", "products"]
    assert (hints["state"], hints["error"]) == ("healthy", None)
    token = await world.api.hint_token()
    url = f"{world.settings.public_url}/hooks/brightpearl/acme/{token}"
    assert await world.own() == dict.fromkeys(hints["subscribed"], url)
    assert token not in json.dumps(created)
    # the sandbox fires a hint at the relay when an order is made: its ids are queued for a read
    async with world.api.http.post(f"{world.control}/orders", json={"count": 3}) as response:
        assert response.status == 201

    async def queued() -> bool:
        return bool(await redis_client.scard(keyspace.hint_ids("acme", "orders")))  # type: ignore[misc]

    await wait_for(queued, 5, "the sandbox's hint to be queued")
    assert await redis_client.smembers(keyspace.hint_ids("acme", "orders")) == {"1", "2", "3"}  # type: ignore[misc]
    async with world.api.http.get(f"{world.control}/hints") as response:
        calls = (await response.json())["calls"]
    assert {c["outcome"] for c in calls} == {"delivered"}
    # a second reconcile changes nothing
    again = await world.api.call("PATCH", "/v1/accounts/acme", {"resources": RESOURCES})
    assert again["status"]["hints"]["subscribed"] == hints["subscribed"]
    assert len(await world.webhooks()) == 3


async def test_hints_off_removes_only_the_relays_own(world: World, redis_client: Redis) -> None:
    await world.api.call("POST", "/v1/accounts", body(world), 201)
    foreign = await world.brightpearl(
        "POST",
        "integration-service/webhook",
        {
            "subscribeTo": "product",
            "httpMethod": "POST",
            "uriTemplate": FOREIGN_URL,
            "bodyTemplate": "{}",
            "contentType": "application/json",
        },
    )
    await redis_client.sadd(keyspace.hint_ids("acme", "orders"), "5")  # type: ignore[misc]
    off = await world.api.call("PATCH", "/v1/accounts/acme", {"hints": False})
    assert off["status"]["hints"]["state"] == "off"
    assert off["status"]["hints"]["subscribed"] == []
    assert [(w["id"], w["uriTemplate"]) for w in await world.webhooks()] == [(foreign["response"], FOREIGN_URL)]
    assert not await redis_client.exists(keyspace.hint_ids("acme", "orders"))  # its hints forgotten
    on = await world.api.call("PATCH", "/v1/accounts/acme", {"hints": True})
    assert len(on["status"]["hints"]["subscribed"]) == 3
    assert len(await world.webhooks()) == 4


async def test_a_stale_webhook_of_its_own_is_replaced(world: World) -> None:
    await world.api.call("POST", "/v1/accounts", body(world, resources=["orders"]), 201)
    stale_url = f"{world.settings.public_url}/hooks/brightpearl/acme/an-old-token"
    stale = {"subscribeTo": "product", "httpMethod": "POST", "uriTemplate": stale_url, "bodyTemplate": "{}"}
    await world.brightpearl("POST", "integration-service/webhook", {**stale, "contentType": "application/json"})
    await world.api.call("PATCH", "/v1/accounts/acme", {"resources": ["orders", "products"]})
    own = await world.own()
    assert set(own) == {"order.modified", "order.modified.order-status", "product"}
    assert stale_url not in own.values()


async def test_deleting_the_account_removes_its_webhooks(world: World) -> None:
    await world.api.call("POST", "/v1/accounts", body(world), 201)
    assert len(await world.own()) == 3
    await world.api.call("DELETE", "/v1/accounts/acme", expect=204)
    assert await world.webhooks() == []


async def test_a_failure_does_not_fail_registration(world: World) -> None:
    fault = {"kind": "html", "status": 502, "count": 50, "path_contains": "integration-service/webhook"}
    async with world.api.http.post(f"{world.control}/faults", json=fault) as response:
        assert response.status == 201
    created = await world.api.call("POST", "/v1/accounts", body(world), 201)
    hints = created["status"]["hints"]
    assert "502" in hints["error"]
    assert await world.api.hint_token() not in hints["error"]
    assert (hints["subscribed"], hints["state"]) == ([], "healthy")
    async with world.api.http.delete(f"{world.control}/faults"):
        pass
    fixed = await world.api.call(
        "PATCH", "/v1/accounts/acme", {"account_token": world.sandbox.account("acme").account_token}
    )
    assert (fixed["status"]["hints"]["error"], len(fixed["status"]["hints"]["subscribed"])) == (None, 3)


async def test_a_worker_starting_puts_back_a_missing_webhook(world: World) -> None:
    await world.api.call("POST", "/v1/accounts", body(world), 201)
    hooks = await world.webhooks()
    gone = next(w for w in hooks if w["subscribeTo"] == "product")
    await world.brightpearl("DELETE", f"integration-service/webhook/{gone['id']}")
    assert "product" not in await world.own()
    async with running(world.settings, api=False, worker=True, worker_port=0):

        async def back() -> bool:
            return "product" in await world.own()

        await wait_for(back, 10, "the worker to subscribe the missing webhook again")
    assert len(await world.own()) == 3


async def test_processes_reconciling_one_account_at_once_create_each_webhook_once(world: World) -> None:
    await world.api.call("POST", "/v1/accounts", body(world), 201)
    for hook in await world.webhooks():
        await world.brightpearl("DELETE", f"integration-service/webhook/{hook['id']}")
    account = await world.api.ctx.store.get_account("acme")
    subscriber = world.api.ctx.subscriber
    await asyncio.gather(*(subscriber.reconcile(account) for _ in range(3)))  # a registration, workers starting
    assert sorted(h["subscribeTo"] for h in await world.webhooks()) == [
        "order.modified",
        "order.modified.order-status",
        "product",
    ]


async def test_the_account_plans_hinted_resources_at_the_safety_poll_and_warns_of_none(world: World) -> None:
    created = await world.api.call("POST", "/v1/accounts", body(world, poll_interval_s=5), 201)
    lanes = created["status"]["resources"]
    assert {r: lanes[r]["effective_poll_interval_s"] for r in ("orders", "stock", "products")} == dict.fromkeys(
        ("orders", "stock", "products"), 60.0
    )
    assert all(lanes[r]["poll_interval_s"] == 5 for r in RESOURCES)  # what was asked stays what was asked
    assert lanes["contacts"]["effective_poll_interval_s"] == 5  # refused: polled as asked
    assert created["warnings"] == []
    unhinted = await world.api.call("PATCH", "/v1/accounts/acme", {"hints": False})
    assert unhinted["status"]["resources"]["orders"]["effective_poll_interval_s"] == 5
