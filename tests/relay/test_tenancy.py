"""Tenancy through the HTTP API: keys scoped to one account see and change that account's objects only.

Two accounts, ``acme`` and ``bolt``, each with a subscription, an event and its delivery, and each with a key.
A key asking for the other account's objects gets the 404 of an object that does not exist; on an admin-only
route it gets a 403; once revoked it gets a 401 on its very next request.
"""

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.ids import event_id, random_id
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.conftest import FakeClock
from tests.e2e import register_unpolled

TOKEN = "tenancy-admin-token-0123456789abcdef"
ACCOUNTS = ("acme", "bolt")

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]


async def public_dns(host: str) -> list[str]:
    return ["93.184.215.14"]


@dataclass
class Tenant:
    """One account's objects, and the key scoped to it."""

    code: str
    key_id: str
    key: str
    subscription: str
    event: str
    delivery: str


@dataclass
class World:
    client: Client
    redis: Redis
    clock: FakeClock
    tenants: dict[str, Tenant]

    async def call(self, method: str, path: str, *, token: str = TOKEN, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        payload = await response.json(content_type=None) if response.status != 204 else None
        assert response.status == expect, (method, path, payload)
        if response.status >= 400:
            assert response.content_type == "application/problem+json"
        return payload

    @property
    def acme(self) -> Tenant:
        return self.tenants["acme"]

    @property
    def bolt(self) -> Tenant:
        return self.tenants["bolt"]


@pytest.fixture
async def world(redis_client: Redis, clock: FakeClock) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=clock,
            resolve=public_dns,
        )
        store, queue = Store(redis_client), DeliveryQueue(redis_client)
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            world = World(client, redis_client, clock, {})
            for code in ACCOUNTS:
                await register_unpolled(store, code, datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
                sub = SubscriptionRecord(
                    id=random_id("sub"),
                    account=code,
                    url=f"https://example.com/{code}",
                    events=["*"],
                    secret=new_secret(),
                    created_at=clock(),
                    updated_at=clock(),
                )
                await store.create_subscription(sub)
                evt = event_id(code, "order.created", 1)
                data = {"accountCode": code, "resourceType": "order", "id": 1, "lifecycleEvent": "created"}
                new = NewEvent(
                    evt, "order.created", code, 1, "2026-11-26T10:00:00Z", event_body("order.created", "", data)
                )
                [delivery] = await queue.commit([new], [sub], now=clock())
                key = await world.call(
                    "POST", "/v1/api-keys", body={"account": code, "description": f"{code}'s ERP"}, expect=201
                )
                world.tenants[code] = Tenant(code, key["id"], key["key"], sub.id, evt, delivery.id)
                clock.advance(1)
            yield world


# keys: created by the admin, shown once, stored hashed ---------------------------------------------------------


async def test_a_key_is_shown_once_and_listed_without_it(world: World) -> None:
    created = await world.call("POST", "/v1/api-keys", body={"account": "acme", "description": "ci"}, expect=201)
    assert set(created) == {"id", "key", "account", "description", "created_at"}
    assert created["id"].startswith("key_")
    assert created["key"].startswith("rk_")
    assert len(created["key"]) >= 40
    assert created["account"] == "acme"
    assert created["description"] == "ci"

    listed = await world.call("GET", "/v1/api-keys")
    assert [k["id"] for k in listed["items"]] == [created["id"], world.bolt.key_id, world.acme.key_id]  # newest first
    assert listed["next_cursor"] is None
    for item in listed["items"]:
        assert set(item) == {"id", "account", "description", "created_at", "last_used_at"}
    only_acme = await world.call("GET", "/v1/api-keys?account=acme")
    assert [k["id"] for k in only_acme["items"]] == [created["id"], world.acme.key_id]
    assert (await world.call("GET", "/v1/api-keys?account=nobody"))["items"] == []


async def test_keys_are_paged(world: World) -> None:
    first = await world.call("GET", "/v1/api-keys?limit=1")
    assert [k["id"] for k in first["items"]] == [world.bolt.key_id]
    second = await world.call("GET", f"/v1/api-keys?limit=1&cursor={first['next_cursor']}")
    assert [k["id"] for k in second["items"]] == [world.acme.key_id]
    assert second["next_cursor"] is None
    await world.call("GET", "/v1/api-keys?limit=0", expect=422)
    await world.call("GET", "/v1/api-keys?cursor=nonsense", expect=422)


async def test_redis_holds_no_plaintext_key(world: World) -> None:
    plaintext = [t.key for t in world.tenants.values()]
    stored: list[str] = []
    async for name in world.redis.scan_iter(count=1000):
        stored.append(name)
        kind = await world.redis.type(name)
        if kind == "string":
            stored.append(cast(str, await world.redis.get(name)))
        elif kind == "hash":
            stored += [f"{k}={v}" for k, v in (await world.redis.hgetall(name)).items()]  # type: ignore[misc]
        elif kind == "zset":
            stored += await world.redis.zrange(name, 0, -1)
        elif kind == "set":
            stored += await world.redis.smembers(name)  # type: ignore[misc]
        elif kind == "list":
            stored += await world.redis.lrange(name, 0, -1)  # type: ignore[misc]
    everything = "\n".join(stored)
    for key in plaintext:
        assert key not in everything
        assert hashlib.sha256(key.encode()).hexdigest() in everything  # what is kept instead


async def test_a_key_needs_a_registered_account(world: World) -> None:
    problem = await world.call("POST", "/v1/api-keys", body={"account": "nobody"}, expect=422)
    assert "nobody" in problem["detail"]
    await world.call("POST", "/v1/api-keys", body={"account": "acme", "scope": "all"}, expect=422)
    await world.call("POST", "/v1/api-keys", body={"account": "no spaces"}, expect=422)


async def test_a_key_records_when_it_was_last_used(world: World) -> None:
    listed = await world.call("GET", "/v1/api-keys?account=acme")
    assert listed["items"][0]["last_used_at"] is None
    await world.call("GET", "/v1/accounts", token=world.acme.key)
    used = (await world.call("GET", "/v1/api-keys?account=acme"))["items"][0]["last_used_at"]
    assert datetime.fromisoformat(used) == world.clock()


# revoking ------------------------------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused_at_once(world: World) -> None:
    await world.call("GET", "/v1/accounts", token=world.acme.key)
    await world.call("DELETE", f"/v1/api-keys/{world.acme.key_id}", expect=204)
    problem = await world.call("GET", "/v1/accounts", token=world.acme.key, expect=401)
    assert "not valid" in problem["detail"]
    await world.call("DELETE", f"/v1/api-keys/{world.acme.key_id}", expect=404)
    assert [k["id"] for k in (await world.call("GET", "/v1/api-keys"))["items"]] == [world.bolt.key_id]
    await world.call("GET", "/v1/accounts", token=world.bolt.key)  # the other key still works
    assert await world.redis.exists(f"relay:apikey:{world.bolt.key_id}")
    assert not await world.redis.exists(f"relay:apikey:{world.acme.key_id}")


async def test_removing_an_account_revokes_its_keys(world: World) -> None:
    await world.call("DELETE", "/v1/accounts/bolt", expect=204)
    await world.call("GET", "/v1/accounts", token=world.bolt.key, expect=401)
    assert [k["id"] for k in (await world.call("GET", "/v1/api-keys"))["items"]] == [world.acme.key_id]
    # registering the code again does not bring the old key back
    await register_unpolled(Store(world.redis), "bolt", datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    await world.call("GET", "/v1/accounts", token=world.bolt.key, expect=401)


@pytest.mark.parametrize("token", ["rk_not-a-key", "rk_", "key_x", TOKEN + "x"])
async def test_made_up_keys_are_401(world: World, token: str) -> None:
    problem = await world.call("GET", "/v1/subscriptions", token=token, expect=401)
    assert "not valid" in problem["detail"]


# admin-only routes ---------------------------------------------------------------------------------------------


async def test_admin_only_routes_are_403_for_a_key(world: World) -> None:
    account = {"code": "cove", "base_url": "http://127.0.0.1:9/public-api/cove", "app_ref": "r", "account_token": "t"}
    for method, path, body in [
        ("POST", "/v1/accounts", account),
        ("PATCH", "/v1/accounts/acme", {"poll_interval_s": 10}),
        ("DELETE", "/v1/accounts/acme", None),
        ("POST", "/v1/api-keys", {"account": "acme"}),
        ("GET", "/v1/api-keys", None),
        ("DELETE", f"/v1/api-keys/{world.acme.key_id}", None),
        ("DELETE", f"/v1/api-keys/{world.bolt.key_id}", None),
    ]:
        problem = await world.call(method, path, token=world.acme.key, body=body, expect=403)
        assert "admin token" in problem["detail"]
    assert len((await world.call("GET", "/v1/api-keys"))["items"]) == 2  # nothing was revoked
    assert (await world.call("GET", "/v1/accounts/acme"))["poll_interval_s"] == 5  # nor changed


# what a key sees -----------------------------------------------------------------------------------------------


async def test_a_key_lists_its_own_account_only(world: World) -> None:
    for tenant in world.tenants.values():
        listed = await world.call("GET", "/v1/accounts", token=tenant.key)
        assert [a["code"] for a in listed["items"]] == [tenant.code]
        assert listed["next_cursor"] is None
        assert (await world.call("GET", f"/v1/accounts/{tenant.code}", token=tenant.key))["code"] == tenant.code
    await world.call("GET", "/v1/accounts/bolt", token=world.acme.key, expect=404)
    await world.call("GET", "/v1/accounts/nobody", token=world.acme.key, expect=404)
    admin = await world.call("GET", "/v1/accounts")
    assert [a["code"] for a in admin["items"]] == ["bolt", "acme"]


async def test_a_key_lists_its_own_subscriptions_only(world: World) -> None:
    listed = await world.call("GET", "/v1/subscriptions", token=world.acme.key)
    assert [s["id"] for s in listed["items"]] == [world.acme.subscription]
    own = await world.call("GET", "/v1/subscriptions?account=acme", token=world.acme.key)
    assert [s["id"] for s in own["items"]] == [world.acme.subscription]
    admin = await world.call("GET", "/v1/subscriptions")
    assert {s["id"] for s in admin["items"]} == {world.acme.subscription, world.bolt.subscription}


async def test_a_key_lists_its_own_deliveries_only(world: World) -> None:
    listed = await world.call("GET", "/v1/deliveries", token=world.acme.key)
    assert [d["id"] for d in listed["items"]] == [world.acme.delivery]
    by_status = await world.call("GET", "/v1/deliveries?status=pending", token=world.acme.key)
    assert [d["id"] for d in by_status["items"]] == [world.acme.delivery]
    by_type = await world.call("GET", "/v1/deliveries?type=order.created", token=world.acme.key)
    assert [d["id"] for d in by_type["items"]] == [world.acme.delivery]
    admin = await world.call("GET", "/v1/deliveries")
    assert {d["id"] for d in admin["items"]} == {world.acme.delivery, world.bolt.delivery}


async def test_a_key_lists_its_own_events_only(world: World) -> None:
    listed = await world.call("GET", "/v1/events", token=world.acme.key)
    assert [e["id"] for e in listed["items"]] == [world.acme.event]
    by_type = await world.call("GET", "/v1/events?type=order.created", token=world.acme.key)
    assert [e["id"] for e in by_type["items"]] == [world.acme.event]
    admin = await world.call("GET", "/v1/events")
    assert {e["id"] for e in admin["items"]} == {world.acme.event, world.bolt.event}


async def test_a_key_works_on_its_own_objects(world: World) -> None:
    acme = world.acme
    await world.call("GET", f"/v1/subscriptions/{acme.subscription}", token=acme.key)
    await world.call("GET", f"/v1/subscriptions/{acme.subscription}/secret", token=acme.key)
    changed = await world.call(
        "PATCH", f"/v1/subscriptions/{acme.subscription}", token=acme.key, body={"description": "mine"}
    )
    assert changed["description"] == "mine"
    await world.call("GET", f"/v1/deliveries/{acme.delivery}", token=acme.key)
    await world.call("POST", f"/v1/deliveries/{acme.delivery}/retry", token=acme.key, expect=202)
    await world.call("GET", f"/v1/events/{acme.event}", token=acme.key)
    body = {"account": "acme", "url": "https://example.com/more", "events": ["order.*"]}
    created = await world.call("POST", "/v1/subscriptions", token=acme.key, body=body, expect=201)
    await world.call("DELETE", f"/v1/subscriptions/{created['id']}", token=acme.key, expect=204)


# another account's objects: 404, exactly as if they did not exist ---------------------------------------------


def other_tenants_objects(bolt: Tenant) -> list[tuple[str, str, Any]]:
    since = {"since": "2026-11-26T00:00:00Z"}
    return [
        ("GET", f"/v1/subscriptions/{bolt.subscription}", None),
        ("GET", f"/v1/subscriptions/{bolt.subscription}/secret", None),
        ("PATCH", f"/v1/subscriptions/{bolt.subscription}", {"description": "mine now"}),
        ("PATCH", f"/v1/subscriptions/{bolt.subscription}", {"state": "disabled"}),
        ("POST", f"/v1/subscriptions/{bolt.subscription}/rotate-secret", None),
        ("POST", f"/v1/subscriptions/{bolt.subscription}/test", None),
        ("POST", f"/v1/subscriptions/{bolt.subscription}/recover", since),
        ("DELETE", f"/v1/subscriptions/{bolt.subscription}", None),
        ("GET", f"/v1/deliveries/{bolt.delivery}", None),
        ("POST", f"/v1/deliveries/{bolt.delivery}/retry", None),
        ("GET", f"/v1/events/{bolt.event}", None),
    ]


async def test_another_accounts_objects_are_404(world: World) -> None:
    bolt = world.bolt
    made_up = {bolt.subscription: "sub_madeup", bolt.delivery: "dlv_madeup", bolt.event: "evt_madeup"}
    secret = await world.call("GET", f"/v1/subscriptions/{bolt.subscription}/secret")
    for method, path, body in other_tenants_objects(bolt):
        problem = await world.call(method, path, token=world.acme.key, body=body, expect=404)
        # exactly the answer for an object that does not exist: the key learns nothing about the other tenant
        real, fake = next((r, f) for r, f in made_up.items() if r in path)
        missing = await world.call(method, path.replace(real, fake), body=body, expect=404)
        assert problem["title"] == missing["title"]
        assert problem["detail"] == missing["detail"].replace(fake, real), (method, path)
    # and nothing was touched
    sub = await world.call("GET", f"/v1/subscriptions/{bolt.subscription}")
    assert sub["state"] == "active"
    assert sub["description"] == ""
    assert await world.call("GET", f"/v1/subscriptions/{bolt.subscription}/secret") == secret
    delivery = await world.call("GET", f"/v1/deliveries/{bolt.delivery}")
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == []
    assert len((await world.call("GET", f"/v1/deliveries?subscription={bolt.subscription}"))["items"]) == 1


async def test_subscribing_to_another_account_is_404(world: World) -> None:
    body = {"account": "bolt", "url": "https://example.com/theirs", "events": ["*"]}
    problem = await world.call("POST", "/v1/subscriptions", token=world.acme.key, body=body, expect=404)
    assert "bolt" in problem["detail"]
    admin = await world.call("GET", "/v1/subscriptions?account=bolt")
    assert [s["id"] for s in admin["items"]] == [world.bolt.subscription]


async def test_filters_naming_another_account_are_404(world: World) -> None:
    for path in ["/v1/subscriptions?account=bolt", "/v1/events?account=bolt"]:
        problem = await world.call("GET", path, token=world.acme.key, expect=404)
        assert "bolt" in problem["detail"]


async def test_filters_naming_another_accounts_objects_show_nothing(world: World) -> None:
    """A delivery filter on another account's subscription or event: a 404, or at least no item of theirs."""
    for path in [
        f"/v1/deliveries?subscription={world.bolt.subscription}",
        f"/v1/deliveries?event_id={world.bolt.event}",
    ]:
        response = await world.client.get(path, headers={"Authorization": f"Bearer {world.acme.key}"})
        payload = await response.json(content_type=None)
        assert response.status in (200, 404), payload
        if response.status == 200:
            assert payload["items"] == [], path


# the API's description -----------------------------------------------------------------------------------------


async def test_openapi_describes_keys_and_403s(world: World) -> None:
    spec = await (await world.client.get("/openapi.json")).json()
    validate(spec)
    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/v1/api-keys"])
    assert "delete" in paths["/v1/api-keys/{key_id}"]
    assert "403" in paths["/v1/api-keys"]["post"]["responses"]
    assert "404" in paths["/v1/api-keys/{key_id}"]["delete"]["responses"]
    assert "403" in paths["/v1/accounts"]["post"]["responses"]
    assert {"ApiKeyCreate", "ApiKeyCreated", "ApiKeyView"} <= set(spec["components"]["schemas"])
    assert "key" not in spec["components"]["schemas"]["ApiKeyView"]["properties"]


async def test_admin_routes_answer_403_before_reading_the_body(world: World) -> None:
    for method, path in [("POST", "/v1/accounts"), ("POST", "/v1/api-keys"), ("PATCH", "/v1/accounts/acme")]:
        problem = await world.call(method, path, token=world.acme.key, body={"nonsense": True}, expect=403)
        assert "admin token" in problem["detail"]
