"""Hostile ids and headers get the API's ordinary 4xx answers: never a 5xx, never a look at another key.

Ids in paths become Redis key names, so an id such as ``sub_…:health`` or ``sha256:<digest>`` would read a key of
another kind (a 500 or a 503 WRONGTYPE, or worse on a DELETE) and answer differently for objects that exist. Every
malformed id must get exactly the answer of a well-formed id that does not exist, and a scoped key asking for
another tenant's object the same again; a query filter that names a key is a 422 naming the parameter.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from yarl import URL

from relay.api.app import create_app
from relay.api.context import ApiContext
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.ids import event_id, random_id
from subscriptions.core.models import Attempt, SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store import keyspace
from subscriptions.store.api_keys import ApiKeys, key_digest
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store
from subscriptions.store.recovery import Recoveries
from tests.e2e import register_unpolled

TOKEN = "hostile-admin-token-0123456789abcdef"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]


@dataclass
class Tenant:
    code: str
    sub: str
    event: str
    delivery: str
    recovery: str
    key_id: str
    key: str


@dataclass
class World:
    client: Client
    redis: Redis
    acme: Tenant
    bolt: Tenant

    async def answer(
        self, method: str, path: str, *, token: str = TOKEN, body: Any = None
    ) -> tuple[int, str, dict[str, Any]]:
        """Status, content type and body of a request to ``path`` sent exactly as written (already encoded)."""
        headers = {"Authorization": f"Bearer {token}"}
        response = await self.client.request(method, URL(path, encoded=True), json=body, headers=headers)
        payload = await response.json(content_type=None) if response.status != 204 else {}
        return response.status, response.content_type, payload


async def public_dns(host: str) -> list[str]:
    return ["93.184.215.14"]


async def tenant(redis: Redis, code: str) -> Tenant:
    """An account with a subscription, an event, a delivery that failed once, a recovery and a key, and every
    key a subscription and a delivery come with (health, recent outcomes, rate limit, attempts)."""
    store, queue = Store(redis), DeliveryQueue(redis)
    await register_unpolled(store, code, NOW)
    sub = SubscriptionRecord(
        id=random_id("sub"),
        account=code,
        url=f"https://example.com/{code}",
        events=["*"],
        secret=new_secret(),
        created_at=NOW,
        updated_at=NOW,
    )
    await store.create_subscription(sub)
    evt = event_id(code, "order.created", 1)
    body = event_body("order.created", "2026-11-26T10:00:00Z", {"accountCode": code, "id": 1})
    new = NewEvent(evt, "order.created", code, 1, "2026-11-26T10:00:00Z", body)
    [delivery] = await queue.commit([new], [sub], now=NOW)
    attempt = Attempt(at=NOW, status_code=500, error=None, duration_ms=5, response_excerpt="no")
    await queue.record([Outcome(delivery, attempt, succeeded=False, jitter=0.0, schedule_s=[])], NOW)
    await redis.set(keyspace.subscription_rate(sub.id), "1764151200000")
    recovery = await Recoveries(store, queue).start(sub.id, NOW - timedelta(hours=1), NOW, NOW)
    record, key = await ApiKeys(redis).create(code, "integrator", NOW)
    await store.update_account_status(code, {"last_error": "timed out"})
    for name in (
        keyspace.subscription_health(sub.id),
        keyspace.subscription_recent(sub.id),
        keyspace.subscription_rate(sub.id),
        keyspace.attempts(delivery.id),
        keyspace.account_status(code),
    ):
        assert await redis.exists(name), name  # each hostile id below names a key that is really there
    return Tenant(code, sub.id, evt, delivery.id, recovery.id, record.id, key)


@pytest.fixture
async def world(redis_client: Redis) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: NOW,
            resolve=public_dns,
        )
        acme, bolt = await tenant(redis_client, "acme"), await tenant(redis_client, "bolt")
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            yield World(client, redis_client, acme, bolt)


def encoded(value: str) -> str:
    """``value`` as one path segment, every byte but letters, digits, ``_`` and ``-`` percent-encoded (``..``
    included, which a client would otherwise resolve away)."""
    safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in value.encode())


def normalised(answer: tuple[int, str, dict[str, Any]], ids: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    """An answer with each id it may name replaced by ``<kind>``: what must be equal between two requests."""
    status, content_type, body = answer
    detail = str(body.get("detail", ""))
    for kind, value in sorted(ids.items(), key=lambda item: -len(item[1])):  # longest first: ids contain ids
        detail = detail.replace(repr(value), f"<{kind}>")
    return status, content_type, {**body, "detail": detail}


# Each route with an id, the id's kind, and the rest of the request: which parameter the hostile value goes into.
ROUTES: list[tuple[str, str, str, Any]] = [
    ("GET", "/v1/subscriptions/{sub}", "sub", None),
    ("PATCH", "/v1/subscriptions/{sub}", "sub", {"description": "changed"}),
    ("DELETE", "/v1/subscriptions/{sub}", "sub", None),
    ("GET", "/v1/subscriptions/{sub}/secret", "sub", None),
    ("POST", "/v1/subscriptions/{sub}/rotate-secret", "sub", None),
    ("POST", "/v1/subscriptions/{sub}/test", "sub", None),
    ("POST", "/v1/subscriptions/{sub}/recover", "sub", {"since": "2026-11-26T09:00:00Z"}),
    ("GET", "/v1/subscriptions/{sub}/recover/{rec}", "sub", None),
    ("GET", "/v1/subscriptions/{sub}/recover/{rec}", "rec", None),
    ("GET", "/v1/deliveries/{dlv}", "dlv", None),
    ("POST", "/v1/deliveries/{dlv}/retry", "dlv", None),
    ("GET", "/v1/events/{evt}", "evt", None),
    ("GET", "/v1/accounts/{code}", "code", None),
    ("PATCH", "/v1/accounts/{code}", "code", {"poll_interval_s": 10}),
    ("DELETE", "/v1/accounts/{code}", "code", None),
    ("DELETE", "/v1/api-keys/{key}", "key", None),
]


def hostile_ids(acme: Tenant) -> list[str]:
    """Ids that name other keys than their kind's, or nothing an id could be."""
    return [
        f"{acme.sub}:rate",
        f"{acme.sub}:health",
        f"{acme.sub}:recent",
        f"{acme.delivery}:attempts",
        f"sha256:{key_digest(acme.key)}",
        "acme:status",
        "..",
        "%3a",
        "%ff",
        f"{acme.sub}\n",
        "sub_" + "a" * 5000,
        "sub_é",
        "😀",
        "a b",
    ]


GHOST = Tenant("nobody", "sub_missing0", "evt_missing0", "dlv_missing0", "rec_missing0", "key_missing0", "rk_none")


def path(template: str, tenant: Tenant, kind: str, value: str) -> tuple[str, dict[str, str]]:
    """``template`` filled with ``tenant``'s ids but ``value`` as the ``kind`` one, and the ids it holds."""
    ids = {"sub": tenant.sub, "rec": tenant.recovery, "dlv": tenant.delivery, "evt": tenant.event}
    ids |= {"code": tenant.code, "key": tenant.key_id, kind: value}
    return template.format(**{name: encoded(v) for name, v in ids.items()}), ids


@pytest.mark.parametrize(("method", "template", "kind", "body"), ROUTES)
async def test_a_malformed_id_gets_the_answer_of_a_missing_one(
    world: World, method: str, template: str, kind: str, body: Any
) -> None:
    target, ids = path(template, world.acme, kind, getattr(GHOST, FIELDS[kind]))
    expected = normalised(await world.answer(method, target, body=body), ids)
    assert expected[0] == 404, expected
    for value in hostile_ids(world.acme):
        target, ids = path(template, world.acme, kind, value)
        assert normalised(await world.answer(method, target, body=body), ids) == expected, value
    assert (
        await world.redis.exists(keyspace.account("acme"), keyspace.subscription(world.acme.sub)) == 2
    )  # nothing deleted
    assert await world.redis.exists(keyspace.account_status("acme"), keyspace.subscription_health(world.acme.sub)) == 2


FIELDS = {"sub": "sub", "rec": "recovery", "dlv": "delivery", "evt": "event", "code": "code", "key": "key_id"}
SCOPED_ROUTES = [r for r in ROUTES if not r[1].startswith(("/v1/api-keys", "/v1/accounts/{code}")) or r[0] == "GET"]


@pytest.mark.parametrize(("method", "template", "kind", "body"), SCOPED_ROUTES)
async def test_a_scoped_key_gets_the_same_answer_for_another_tenants_objects_as_for_missing_ones(
    world: World, method: str, template: str, kind: str, body: Any
) -> None:
    """bolt's key, on paths naming acme's objects or objects that do not exist: the same answers, whether the id
    in ``kind``'s place is acme's real one (the ghost's own there) or a hostile one."""
    token = world.bolt.key
    cases = [(getattr(world.acme, FIELDS[kind]), getattr(GHOST, FIELDS[kind]))]
    cases += [(value, value) for value in hostile_ids(world.acme)]
    for acme_value, ghost_value in cases:
        target, ids = path(template, world.acme, kind, acme_value)
        got = normalised(await world.answer(method, target, token=token, body=body), ids)
        target, ids = path(template, GHOST, kind, ghost_value)
        expected = normalised(await world.answer(method, target, token=token, body=body), ids)
        assert expected[0] == 404, expected
        assert got == expected, acme_value


async def test_a_scoped_key_gets_403_on_admin_routes_whatever_the_id(world: World) -> None:
    for value in [world.acme.key_id, world.bolt.key_id, "key_missing0", f"sha256:{key_digest(world.bolt.key)}"]:
        status, _, body = await world.answer("DELETE", f"/v1/api-keys/{encoded(value)}", token=world.bolt.key)
        assert status == 403, body
    assert await ApiKeys(world.redis).find(world.bolt.key) is not None


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/deliveries?subscription={sub}:rate", "subscription"),
        ("/v1/deliveries?subscription=..", "subscription"),
        ("/v1/deliveries?event_id={evt}:x", "event_id"),
        ("/v1/deliveries?event_id=%F0%9F%98%80", "event_id"),
        ("/v1/events?account=acme:status", "account"),
        ("/v1/events?account=acme%0A", "account"),
        ("/v1/subscriptions?account=acme:due", "account"),
        ("/v1/api-keys?account=acme:x", "account"),
        ("/v1/api-keys?account=", "account"),
    ],
)
async def test_a_query_filter_that_is_not_an_id_is_a_422_naming_it(world: World, path: str, parameter: str) -> None:
    target = path.format(sub=world.acme.sub, evt=world.acme.event)
    for token in (TOKEN, world.acme.key):
        status, content_type, body = await world.answer("GET", target, token=token)
        if token != TOKEN and target.startswith("/v1/api-keys"):
            assert status == 403  # admin only, before any input is read
            continue
        assert (status, content_type) == (422, "application/problem+json"), body
        assert [e["loc"] for e in body["errors"]] == [parameter]


async def test_well_formed_filters_still_filter(world: World) -> None:
    _, _, found = await world.answer("GET", f"/v1/deliveries?subscription={world.acme.sub}")
    assert [d["id"] for d in found["items"]] == [world.acme.delivery]
    _, _, found = await world.answer("GET", f"/v1/deliveries?event_id={world.acme.event}")
    assert [d["id"] for d in found["items"]] == [world.acme.delivery]
    _, _, found = await world.answer("GET", "/v1/events?account=bolt")
    assert [e["id"] for e in found["items"]] == [world.bolt.event]
    status, _, _ = await world.answer("GET", "/v1/events?account=bolt", token=world.acme.key)
    assert status == 404  # another tenant's account: the 404 of an account that does not exist


# headers: bytes that are not UTF-8 ------------------------------------------------------------------------------


async def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` byte for byte; the answer's status, headers (lower-case names) and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xff\xfe\xfd",
        b"Bearer " + TOKEN.encode() + b"\x80",
        b"Bearer rk_\xc3\x28",  # an invalid two-byte sequence
        b"\xff\xfe " + TOKEN.encode(),
        b"Bearer \xed\xa0\x80",  # a UTF-8-encoded surrogate
    ],
)
async def test_an_authorization_header_that_is_not_utf8_is_a_401(world: World, authorization: bytes) -> None:
    assert world.client.port is not None
    for target in (b"/v1/accounts", b"/v1/deliveries/dlv_x", b"/v1/subscriptions"):
        request = b"GET " + target + b" HTTP/1.1\r\nHost: relay\r\nAuthorization: " + authorization
        status, headers, body = await raw_request(world.client.port, request + b"\r\nConnection: close\r\n\r\n")
        assert status == 401, body
        assert headers["content-type"].startswith("application/problem+json")
        assert headers["www-authenticate"] == "Bearer"
        assert b'"status":401' in body
