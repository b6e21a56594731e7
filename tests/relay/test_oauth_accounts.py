"""OAuth accounts that bring their own tokens, end to end: registered through the real API over loopback, polled by
the real poller, both against the sandbox's OAuth server (its counters the judge), tokens sealed in the real Redis."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.crypto import TokenCipher, generate_key
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.oauth_tokens import OAuthTokenStore
from subscriptions.store.polls import Polls
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthConfig
from workers.poller import Poller, PollPolicy

ADMIN = "admin-token-for-oauth-accounts"
KEY = generate_key()
GRANT_FIELDS = ("access_token", "refresh_token", "expires_in", "api_domain")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class World:
    sandbox: SandboxServer
    http: aiohttp.ClientSession
    api: str
    store: Store
    poller: Poller
    metrics: Metrics
    redis: Redis

    @property
    def control(self) -> str:
        return f"{self.sandbox.url}/_sandbox/accounts/acme"

    async def sandbox_call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.control}{path}", json=body) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with self.http.request(method, f"{self.api}{path}", json=body, headers=headers) as answer:
            return answer.status, await answer.json()

    async def grant(self) -> dict[str, Any]:
        tokens = await self.sandbox_call("POST", "/oauth/tokens")
        return {k: tokens[k] for k in GRANT_FIELDS}

    async def emitted(self) -> list[int]:
        page = await self.store.list_events(limit=1000, cursor=None, account="acme", type_="order.created")
        return [int(e.resource_id) for e in page.items]  # type: ignore[arg-type]


def config_of(sandbox: SandboxServer) -> OAuthConfig:
    app = sandbox.account("acme").oauth.app
    return OAuthConfig(sandbox.oauth_url, app.client_id, app.client_secret, app.dev_ref, 0.9)


@pytest.fixture
async def world(redis_client: Redis) -> AsyncIterator[World]:
    sandbox = await start_sandbox()
    cipher = TokenCipher([KEY])
    async with aiohttp.ClientSession() as http:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=ADMIN,
            brightpearl_session=http,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=now,
            cipher=cipher,
            oauth_config=config_of(sandbox),
        )
        server = TestServer(create_app(ctx), host="127.0.0.1")
        await server.start_server()
        store = Store(redis_client, cipher)
        metrics = Metrics()
        oauth = config_of(sandbox).access(
            redis_client,
            http,
            cipher,
            now,
            on_reauthorization_required=lambda code: metrics.oauth_reauthorizations.inc(),
        )
        poller = Poller(
            store,
            DeliveryQueue(redis_client),
            redis_client,
            http,
            PollPolicy(overlap_s=60, budget_per_minute=100, page_size=7),
            metrics,
            clock=now,
            on_deliveries=lambda: None,
            oauth=oauth,
        )
        try:
            yield World(sandbox, http, str(server.make_url("")).rstrip("/"), store, poller, metrics, redis_client)
        finally:
            await server.close()
            await sandbox.close()


async def register(world: World, grant: dict[str, Any]) -> dict[str, Any]:
    body = {"code": "acme", "base_url": world.sandbox.base_url("acme"), "oauth": grant, "resources": ["orders"]}
    status, view = await world.call("POST", "/v1/accounts", body)
    assert status == 201, view
    await world.store.create_subscription(
        SubscriptionRecord(
            id="sub_acme",
            account="acme",
            url="https://example.com/h",
            events=["*"],
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            created_at=now(),
            updated_at=now(),
        )
    )
    return dict(view)


async def test_registered_with_tokens_polled_through_revocation_and_a_new_grant(world: World) -> None:
    grant = await world.grant()
    view = await register(world, grant)
    assert view["auth"] == "oauth"
    assert view["status"]["auth_state"] == "active"
    assert view["status"]["budget_per_minute"] == 180
    text = str(view)
    assert grant["access_token"] not in text
    assert grant["refresh_token"] not in text

    ids = (await world.sandbox_call("POST", "/orders", {"count": 3}))["ids"]
    await world.poller.poll_now("acme")
    assert sorted(await world.emitted()) == sorted(ids)

    await world.sandbox_call("POST", "/oauth/revoke")
    await world.poller.poll_now("acme")
    status, view = await world.call("GET", "/v1/accounts/acme")
    assert view["status"]["auth_state"] == "reauthorization_required"
    assert view["status"]["auth_reason"] == "The auth token has either expired or does not exist"
    assert reauthorizations(world) == 1
    positions = await cursors(world)
    before = (await world.sandbox_call("GET", "/oauth"))["counters"]
    meanwhile = (await world.sandbox_call("POST", "/orders", {"count": 2}))["ids"]
    await world.poller.poll_now("acme")
    after = (await world.sandbox_call("GET", "/oauth"))["counters"]
    assert after["api_requests"] == before["api_requests"]
    assert after["refreshes"] == before["refreshes"]
    assert sum(after["token_errors"].values()) == sum(before["token_errors"].values())
    assert await cursors(world) == positions  # paused where it stopped
    unauthorized = {"resource": "orders", "outcome": "unauthorized"}
    assert world.metrics.registry.get_sample_value("relay_polls_total", unauthorized) == 1  # the pause polls nothing
    plan = await Polls(world.redis).plan("acme")
    assert plan.due_ms["orders"] >= ms(now()) + 55_000  # looked at again in a minute
    assert reauthorizations(world) == 1  # a transition, counted once

    fresh = await world.grant()
    status, view = await world.call("PATCH", "/v1/accounts/acme", {"oauth": fresh})
    assert status == 200, view
    assert view["status"]["auth_state"] == "active"
    assert view["status"]["auth_reason"] is None
    assert fresh["access_token"] not in str(view)
    await world.poller.poll_now("acme")
    assert sorted(await world.emitted()) == sorted(ids + meanwhile)


def reauthorizations(world: World) -> float:
    value = world.metrics.registry.get_sample_value("relay_oauth_reauthorization_required_total")
    return value or 0.0


async def cursors(world: World) -> dict[str, str | None]:
    keys = sorted([k async for k in world.redis.scan_iter(match=keyspace.position("acme", "*"))])
    assert keys
    return {k: await world.redis.get(k) for k in keys}


async def test_tokens_expiring_every_few_seconds_refresh_once_per_expiry(world: World) -> None:
    await world.sandbox_call("PATCH", "/oauth", {"access_token_lifetime_s": 3})
    await register(world, await world.grant())
    await world.sandbox_call("DELETE", "/oauth/counters")
    ids: list[int] = []
    for _ in range(3):
        await world.sandbox_call("POST", "/oauth/expire")
        ids += (await world.sandbox_call("POST", "/orders", {"count": 2}))["ids"]
        await world.poller.poll_now("acme")
    counters = (await world.sandbox_call("GET", "/oauth"))["counters"]
    assert counters["refreshes"] == 3
    assert counters["token_errors"] == {} or not any(counters["token_errors"].values())
    emitted = await world.emitted()
    assert sorted(emitted) == sorted(ids)
    assert len(emitted) == len(set(emitted))


async def test_tokens_expiring_in_real_time_are_refreshed_before_they_expire(world: World) -> None:
    await world.sandbox_call("PATCH", "/oauth", {"access_token_lifetime_s": 2})
    grant = await world.grant()
    assert grant["expires_in"] == 2
    await register(world, grant)
    await world.sandbox_call("DELETE", "/oauth/counters")
    ids: list[int] = []
    started = time.monotonic()
    while time.monotonic() - started < 6.5:
        ids += (await world.sandbox_call("POST", "/orders", {"count": 1}))["ids"]
        await world.poller.poll_now("acme")
        await asyncio.sleep(0.3)
    counters = (await world.sandbox_call("GET", "/oauth"))["counters"]
    assert 3 <= counters["refreshes"] <= 4  # one per 2-second life (each refreshed 0.2 s early)
    assert counters["unauthorized"].get("expired", 0) == 0  # never sent an expired token
    assert not any(counters["token_errors"].values())
    emitted = await world.emitted()
    assert sorted(emitted) == sorted(ids)
    assert len(emitted) == len(set(emitted))


@pytest.mark.parametrize(
    "body",
    [
        {"account_token": "t", "app_ref": "a"},
        {},
    ],
)
async def test_oauth_with_token_fields_is_refused(world: World, body: dict[str, Any]) -> None:
    grant = await world.grant()
    status, problem = await world.call(
        "POST", "/v1/accounts", {"code": "acme", "base_url": world.sandbox.base_url("acme"), "oauth": grant, **body}
    )
    if body:
        assert status == 422, problem
        assert grant["access_token"] not in str(problem)
    else:
        assert status == 201


async def test_oauth_needs_the_app_settings(redis_client: Redis) -> None:
    sandbox = await start_sandbox()
    async with aiohttp.ClientSession() as http:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=ADMIN,
            brightpearl_session=http,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=now,
            oauth_config=OAuthConfig(sandbox.oauth_url, app_ref="relay_oauth"),
        )
        server = TestServer(create_app(ctx), host="127.0.0.1")
        await server.start_server()
        try:
            async with http.post(f"{sandbox.url}/_sandbox/accounts/acme/oauth/tokens") as answer:
                grant = {k: v for k, v in (await answer.json()).items() if k in GRANT_FIELDS}
            headers = {"Authorization": f"Bearer {ADMIN}"}
            body = {"code": "acme", "base_url": sandbox.base_url("acme"), "oauth": grant}
            async with http.post(str(server.make_url("/v1/accounts")), json=body, headers=headers) as answer:
                status, problem = answer.status, await answer.json()
        finally:
            await server.close()
            await sandbox.close()
    assert status == 422
    text = str(problem)
    assert "RELAY_BRIGHTPEARL_CLIENT_SECRET" in text
    assert "RELAY_BRIGHTPEARL_DEV_REF" in text
    assert "RELAY_BRIGHTPEARL_APP_REF" not in text
    assert grant["access_token"] not in text
    assert not await redis_client.exists("relay:account:acme", "relay:account:acme:oauth")


async def test_key_rotation_reseals_oauth_tokens(world: World) -> None:
    await register(world, await world.grant())
    stored_before = await world.redis.get("relay:account:acme:oauth")
    new_key = generate_key()
    rotated = Store(world.redis, TokenCipher([new_key, KEY]))
    resealed, unreadable = await rotated.reseal_account_tokens()
    assert (resealed, unreadable) == (2, [])  # the account's record and its OAuth tokens
    stored = await world.redis.get("relay:account:acme:oauth")
    assert stored != stored_before
    tokens, auth = await OAuthTokenStore(world.redis, TokenCipher([new_key])).read("acme")
    assert tokens is not None
    assert auth.state == "active"
    assert await rotated.reseal_account_tokens() == (0, [])
    _, unreadable = await Store(world.redis, TokenCipher([generate_key()])).reseal_account_tokens()
    assert unreadable == ["acme"]
