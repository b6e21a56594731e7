"""What one tenant may ask of the relay through its scoped key, and what it gets beyond that: bounded delivery
options and event patterns (422), a cap on subscriptions and on test pings a minute (429), and filters that
speak the subscription pattern syntax."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.ids import event_id
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.conftest import FakeClock
from tests.e2e import register_unpolled

TOKEN = "limits-admin-token-0123456789abcdef"
Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]


async def public_dns(host: str) -> list[str]:
    return ["93.184.215.14"]


@dataclass
class Api:
    client: Client
    redis: Redis
    clock: FakeClock
    keys: dict[str, str]  # account -> its scoped key

    async def call(self, method: str, path: str, *, key: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key or TOKEN}"}
        response = await self.client.request(method, path, json=body, headers=headers)
        payload = await response.json(content_type=None) if response.status != 204 else None
        if response.status >= 400:
            assert response.content_type == "application/problem+json"
        if response.status == 429 and "retry-after" in response.headers:
            payload["retry-after"] = response.headers["Retry-After"]
        return response.status, payload

    async def subscribe(self, account: str = "acme", **fields: Any) -> tuple[int, Any]:
        body = {"account": account, "url": f"https://example.com/{account}", "events": ["*"], **fields}
        return await self.call("POST", "/v1/subscriptions", key=self.keys[account], body=body)


@pytest.fixture
async def api(redis_client: Redis, clock: FakeClock) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=clock,
            resolve=public_dns,
            max_subscriptions_per_account=3,
            test_pings_per_minute=2,
        )
        store = Store(redis_client)
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            api = Api(client, redis_client, clock, {})
            for code in ("acme", "bolt"):
                await register_unpolled(store, code, clock())
                status, key = await api.call("POST", "/v1/api-keys", body={"account": code})
                assert status == 201
                api.keys[code] = key["key"]
            yield api


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"rate_limit_per_s": 1e-300}, "rate_limit_per_s"),  # jammed every other tenant's deliveries
        ({"rate_limit_per_s": 0}, "rate_limit_per_s"),
        ({"rate_limit_per_s": 0.009}, "rate_limit_per_s"),
        ({"rate_limit_per_s": 1e9}, "rate_limit_per_s"),
        ({"timeout_s": 0.01}, "timeout_s"),
        ({"timeout_s": 301}, "timeout_s"),
        ({"timeout_s": 1e308}, "timeout_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 10**9}, "max_concurrency"),
        ({"retry_schedule_s": [-1]}, "retry_schedule_s"),
        ({"retry_schedule_s": [1e308]}, "retry_schedule_s"),
        ({"retry_schedule_s": [5] * 31}, "retry_schedule_s"),
        ({"events": [f"order.{'*' * i}created" for i in range(1, 22)]}, "events"),  # 21 patterns
        ({"events": ["order." + "c" * 200]}, "events"),
    ],
)
async def test_options_delivery_cannot_honour_are_422(api: Api, options: dict[str, Any], field: str) -> None:
    status, body = await api.subscribe(**options)
    assert status == 422, body
    assert field in body["detail"]
    status, _ = await api.subscribe()
    assert status == 201  # the account is not harmed by having asked


async def test_numbers_that_are_not_finite_are_refused(api: Api) -> None:
    """JSON has no NaN or Infinity, but Python's parser takes them."""
    for text in ('{"timeout_s": NaN}', '{"rate_limit_per_s": Infinity}', '{"max_concurrency": -Infinity}'):
        body = text[:-1] + ', "account": "acme", "url": "https://example.com/h", "events": ["*"]}'
        response = await api.client.post(
            "/v1/subscriptions", data=body, headers={"Authorization": f"Bearer {api.keys['acme']}"}
        )
        assert response.status == 422, await response.text()


async def test_the_slowest_rate_and_a_pattern_of_stars_are_accepted(api: Api) -> None:
    status, body = await api.subscribe(rate_limit_per_s=0.01, events=["*" * 145 + "created", "order.**"])
    assert status == 201, body
    assert body["rate_limit_per_s"] == 0.01
    assert body["events"] == ["*created", "order.*"]  # runs of stars stored as one


async def test_a_pattern_of_145_stars_that_matches_nothing_is_a_prompt_422(api: Api) -> None:
    status, body = await api.subscribe(events=["*" * 145 + "a"])
    assert status == 422
    assert "matches no event" in body["detail"]


async def test_an_account_may_have_so_many_subscriptions_and_no_more(api: Api) -> None:
    for _ in range(3):
        assert (await api.subscribe())[0] == 201
    status, body = await api.subscribe()
    assert status == 429
    assert "RELAY_MAX_SUBSCRIPTIONS_PER_ACCOUNT" in body["detail"]
    assert (await api.subscribe("bolt"))[0] == 201  # another account has its own


async def test_a_burst_of_creations_cannot_pass_the_limit_together(api: Api) -> None:
    results = await asyncio.gather(*(api.subscribe() for _ in range(12)))
    assert sorted(status for status, _ in results) == [201] * 3 + [429] * 9
    _, listed = await api.call("GET", "/v1/subscriptions?account=acme")
    assert len(listed["items"]) == 3


async def test_test_pings_are_limited_per_account_with_a_true_retry_after(api: Api) -> None:
    _, acme = await api.subscribe()
    _, bolt = await api.subscribe("bolt")
    key = api.keys["acme"]
    for _ in range(2):
        assert (await api.call("POST", f"/v1/subscriptions/{acme['id']}/test", key=key))[0] == 202
    api.clock.advance(20)
    status, body = await api.call("POST", f"/v1/subscriptions/{acme['id']}/test", key=key)
    assert status == 429
    assert "RELAY_TEST_PINGS_PER_MINUTE" in body["detail"]
    assert body["retry-after"] == "40"  # the first ping leaves the minute 40 s from now
    status, _ = await api.call("POST", f"/v1/subscriptions/{bolt['id']}/test", key=api.keys["bolt"])
    assert status == 202  # another account's pings are its own
    api.clock.advance(41)
    assert (await api.call("POST", f"/v1/subscriptions/{acme['id']}/test", key=key))[0] == 202


async def test_deliveries_and_events_filter_by_pattern(api: Api) -> None:
    _, sub = await api.subscribe()
    record = await Store(api.redis).get_subscription(sub["id"])
    events = [
        NewEvent(event_id("acme", name, 1), name, "acme", 1, "2026-11-26T10:00:00Z", event_body(name, "t", {}))
        for name in ("order.created", "order.modified.order-status", "contact.created")
    ]
    await DeliveryQueue(api.redis).commit(events, [record], now=datetime.now(UTC))
    key = api.keys["acme"]
    _, found = await api.call("GET", "/v1/deliveries?type=order.*", key=key)
    assert sorted(d["type"] for d in found["items"]) == ["order.created", "order.modified.order-status"]
    _, found = await api.call("GET", "/v1/events?type=*created", key=key)
    assert sorted(e["type"] for e in found["items"]) == ["contact.created", "order.created"]
    _, found = await api.call("GET", "/v1/deliveries?type=contact.created", key=key)
    assert [d["type"] for d in found["items"]] == ["contact.created"]
    status, body = await api.call("GET", "/v1/deliveries?type=invoice.*", key=key)
    assert status == 422
    assert "matches no event" in body["detail"]


async def test_an_account_registration_reports_every_problem_at_once(api: Api) -> None:
    status, body = await api.call("POST", "/v1/accounts", body={"code": "b"})
    assert status == 422
    assert "app_ref" in body["detail"]
    assert "exactly one of base_url and datacenter" in body["detail"]
    assert "exactly one of account_token and staff_token" in body["detail"]
    status, body = await api.call(
        "PATCH", "/v1/accounts/acme", body={"base_url": "http://x", "datacenter": "euw1", "poll_interval_s": 0}
    )
    assert status == 422
    assert "at most one of base_url and datacenter" in body["detail"]
    assert "poll_interval_s" in body["detail"]
