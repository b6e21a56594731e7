"""Brightpearl tokens and webhook signing secrets encrypted at rest, as an operator meets it: through the HTTP API,
the stored bytes in Redis, webhooks checked with the Standard Webhooks library, restarts with the key added, rotated,
wrong or missing, and the command line."""

import base64
import binascii
import contextlib
import json
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis
from standardwebhooks import Webhook

from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import StartupError, running
from relay.settings import Settings
from subscriptions.core.crypto import TokenCipher, generate_key
from subscriptions.core.models import AccountRecord, SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store.records import Store
from tests.e2e import account_record, wait_for
from tests.relay.test_cli import LONG_TOKEN, relay

TOKEN = "encryption-api-token-0123456789abcd"
KEY, NEW_KEY, WRONG_KEY = generate_key(), generate_key(), generate_key()


class Api:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            payload = await response.json(content_type=None) if response.status != 204 else None
            assert response.status == expect, payload
            return payload

    async def polled(self, code: str = "acme") -> dict[str, Any]:
        """The account once a poll has succeeded since now."""
        before = (await self.call("GET", f"/v1/accounts/{code}"))["status"]["last_success_at"]

        async def succeeded() -> bool:
            status = (await self.call("GET", f"/v1/accounts/{code}"))["status"]
            return bool(status["last_success_at"]) and status["last_success_at"] != before

        await wait_for(succeeded, 20, f"a successful poll of {code}")
        account: dict[str, Any] = await self.call("GET", f"/v1/accounts/{code}")
        return account


def settings_with(redis_url: str, key: str | None) -> Settings:
    return Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        allow_private_targets=True,
        encryption_key=SecretStr(key) if key else None,
    )


@contextlib.asynccontextmanager
async def relay_run(redis_url: str, key: str | None, *, worker: bool = True) -> AsyncIterator[Api]:
    """The API (and the workers, unless ``worker`` is false) in this process, as `relay run` starts them."""
    async with (
        running(settings_with(redis_url, key), api=True, worker=worker, api_port=0) as parts,
        aiohttp.ClientSession() as http,
    ):
        assert parts.api_url is not None
        yield Api(parts.api_url, http)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = await start_sandbox()
    yield server
    await server.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client that reads bytes: snapshots are zlib-compressed."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Hooks:
    """A webhook receiver keeping each request's exact bytes and headers, by path, for signatures checked later."""

    def __init__(self) -> None:
        self.received: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.setdefault(request.match_info["name"], []).append((await request.read(), headers))
        return web.Response(status=204)

    def first(self, name: str) -> tuple[bytes, dict[str, str]]:
        return self.received[name][0]


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    receiver = Hooks()
    app = web.Application()
    app.router.add_post("/hooks/{name}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/"
    yield receiver
    await runner.cleanup()


def account_body(sandbox: SandboxServer) -> dict[str, Any]:
    account = sandbox.account("acme")
    return {
        "code": "acme",
        "base_url": sandbox.base_url("acme"),
        "app_ref": account.app_ref,
        "account_token": account.account_token,
        "resources": ["orders"],
    }


async def stored_token(redis_client: Redis) -> str:
    raw = await redis_client.get("relay:account:acme")
    assert raw is not None
    token: str = json.loads(raw)["token"]
    return token


async def everything_in_redis(raw_redis: Redis) -> list[tuple[str, bytes]]:
    """Every key of the database with every byte string it holds: its name, string values, hash fields and
    values, list items, set and sorted-set members, stream entries, and the inflated text of compressed ones."""
    found: list[tuple[str, bytes]] = []
    async for key in raw_redis.scan_iter(count=1000):
        kind = (await raw_redis.type(key)).decode()
        values: list[bytes] = [key]
        if kind == "string":
            values.append(await raw_redis.get(key) or b"")
        elif kind == "hash":
            values += [part for item in (await raw_redis.hgetall(key)).items() for part in item]
        elif kind == "list":
            values += await raw_redis.lrange(key, 0, -1)
        elif kind == "set":
            values += await raw_redis.smembers(key)
        elif kind == "zset":
            values += await raw_redis.zrange(key, 0, -1)
        elif kind == "stream":
            entries = await raw_redis.xrange(key)
            values += [part for _, fields in entries for item in fields.items() for part in item]
        else:
            raise AssertionError(f"{key!r} is a {kind}, which this scan does not read")
        found += [(key.decode(), text) for value in values for text in (value, *inflated(value))]
    return found


def inflated(value: bytes) -> list[bytes]:
    """What a compressed value holds: zlib, or base64 of zlib as snapshots are stored; nothing for other values."""
    candidates = [value]
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(value, validate=True))
    found = []
    for candidate in candidates:
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(candidate))
    return found


async def revealed_in_redis(raw_redis: Redis, secrets: list[str], tokens: list[str]) -> list[str]:
    """What any key of the database gives away: the ``whsec_`` prefix, a signing secret's base64 part or its
    key bytes, or a Brightpearl token; one line per finding, naming the key."""
    needles = {b"whsec_": "the whsec_ prefix"}
    for secret in secrets:
        encoded = secret.removeprefix("whsec_")
        needles[encoded.encode()] = f"the base64 part of {secret[:10]}…"
        needles[base64.b64decode(encoded)] = f"the key bytes of {secret[:10]}…"
    for token in tokens:
        needles[token.encode()] = f"the Brightpearl token {token[:6]}…"
    return [
        f"{key}: {what}"
        for key, value in await everything_in_redis(raw_redis)
        for needle, what in needles.items()
        if needle in value
    ]


async def stored_subscription(redis_client: Redis, sub_id: str) -> dict[str, Any]:
    raw = await redis_client.get(f"relay:sub:{sub_id}")
    assert raw is not None
    stored: dict[str, Any] = json.loads(raw)
    return stored


async def subscribe(api: Api, hooks: Hooks, name: str) -> dict[str, Any]:
    body = {"account": "acme", "url": hooks.url + name, "events": ["order.created"]}
    created: dict[str, Any] = await api.call("POST", "/v1/subscriptions", body, 201)
    return created


async def rotate(api: Api, sub_id: str) -> str:
    rotated: str = (await api.call("POST", f"/v1/subscriptions/{sub_id}/rotate-secret"))["secret"]
    return rotated


async def secret_shown(api: Api, sub_id: str) -> str:
    shown: str = (await api.call("GET", f"/v1/subscriptions/{sub_id}/secret"))["secret"]
    return shown


async def an_order_reaches(sandbox: SandboxServer, hooks: Hooks, *names: str) -> None:
    sandbox.account("acme").create_orders(1)
    await wait_for(lambda: all(hooks.received.get(name) for name in names), 20, f"order.created at {names}")


def verifies(secret: str, webhook: tuple[bytes, dict[str, str]]) -> bool:
    """Whether the Standard Webhooks reference library accepts ``webhook`` signed with ``secret``."""
    body, headers = webhook
    try:
        Webhook(secret).verify(body, headers)
    except Exception:
        return False
    return True


async def test_signing_secrets_are_sealed_so_nothing_in_redis_reveals_a_secret_or_a_token_and_webhooks_verify(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis, raw_redis: Redis, hooks: Hooks
) -> None:
    token = sandbox.account("acme").account_token
    async with relay_run(redis_url, KEY) as api:
        await api.call("POST", "/v1/accounts", account_body(sandbox) | {"poll_interval_s": 1}, 201)
        rotating, steady = await subscribe(api, hooks, "rotating"), await subscribe(api, hooks, "steady")
        first_secret = rotating["secret"]
        second_secret = await rotate(api, rotating["id"])
        assert await secret_shown(api, rotating["id"]) == second_secret
        assert await secret_shown(api, steady["id"]) == steady["secret"]

        await an_order_reaches(sandbox, hooks, "rotating", "steady")
        during_rotation = hooks.first("rotating")
        assert len(during_rotation[1]["webhook-signature"].split()) == 2
        assert verifies(second_secret, during_rotation)  # the new secret signs
        assert verifies(first_secret, during_rotation)  # and so does the old one, during its grace
        assert verifies(steady["secret"], hooks.first("steady"))
        assert not verifies(steady["secret"], during_rotation)  # (the check can fail)

        async def recorded() -> bool:
            deliveries = (await api.call("GET", "/v1/deliveries"))["items"]
            return len(deliveries) == 2 and all(d["status"] == "succeeded" for d in deliveries)

        await wait_for(recorded, 20, "both deliveries recorded as succeeded")
        secrets = [first_secret, second_secret, steady["secret"]]
        assert await revealed_in_redis(raw_redis, secrets, [token]) == []

    stored = await stored_subscription(redis_client, rotating["id"])
    assert stored["secret"].startswith("enc:v1:")
    assert stored["previous_secret"].startswith("enc:v1:")
    assert TokenCipher([KEY]).decrypt(stored["secret"]) == second_secret
    assert TokenCipher([KEY]).decrypt(stored["previous_secret"]) == first_secret
    assert await revealed_in_redis(raw_redis, secrets, [token]) == []


async def test_secrets_stored_before_the_key_are_sealed_at_start_and_rotation_reseals_them(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis, raw_redis: Redis, hooks: Hooks
) -> None:
    token = sandbox.account("acme").account_token
    async with relay_run(redis_url, None, worker=False) as api:
        await api.call("POST", "/v1/accounts", account_body(sandbox) | {"poll_interval_s": 1}, 201)
        sub = await subscribe(api, hooks, "hook")
        first_secret, second_secret = sub["secret"], await rotate(api, sub["id"])
    stored = await stored_subscription(redis_client, sub["id"])
    assert (stored["secret"], stored["previous_secret"]) == (second_secret, first_secret)  # no key: as they are

    async with relay_run(redis_url, KEY, worker=False) as api:
        stored = await stored_subscription(redis_client, sub["id"])
        assert TokenCipher([KEY]).decrypt(stored["secret"]) == second_secret
        assert TokenCipher([KEY]).decrypt(stored["previous_secret"]) == first_secret
        assert await secret_shown(api, sub["id"]) == second_secret
    assert await revealed_in_redis(raw_redis, [first_secret, second_secret], [token]) == []

    async with relay_run(redis_url, f"{NEW_KEY},{KEY}", worker=False) as api:  # rotating: new key first, old after
        assert await secret_shown(api, sub["id"]) == second_secret
    stored = await stored_subscription(redis_client, sub["id"])
    assert TokenCipher([NEW_KEY]).decrypt(stored["secret"]) == second_secret
    assert TokenCipher([NEW_KEY]).decrypt(stored["previous_secret"]) == first_secret

    async with relay_run(redis_url, NEW_KEY) as api:  # the old key is no longer needed
        assert await secret_shown(api, sub["id"]) == second_secret
        await an_order_reaches(sandbox, hooks, "hook")
        assert verifies(second_secret, hooks.first("hook"))
        assert verifies(first_secret, hooks.first("hook"))
    assert await revealed_in_redis(raw_redis, [first_secret, second_secret], [token]) == []


def sealed_subscriptions(count: int) -> list[SubscriptionRecord]:
    now = datetime.now(UTC)
    return [
        SubscriptionRecord(
            id=f"sub_{letter}",
            account="acme",
            url=f"https://example.com/{letter}",
            events=["*"],
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        for letter in "abcdefgh"[:count]
    ]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            WRONG_KEY,
            "RELAY_ENCRYPTION_KEY cannot decrypt the signing secrets of 4 subscription(s) "
            "('sub_a', 'sub_b', 'sub_c' and more): none of its keys",
        ),
        (
            None,
            "the signing secrets of 4 subscription(s) ('sub_a', 'sub_b', 'sub_c' and more) are encrypted but "
            "RELAY_ENCRYPTION_KEY is not set",
        ),
    ],
    ids=["wrong key", "no key"],
)
async def test_a_process_without_the_key_of_the_secrets_refuses_to_start(
    redis_url: str, redis_client: Redis, key: str | None, message: str
) -> None:
    store = Store(redis_client, TokenCipher([KEY]))
    for sub in sealed_subscriptions(4):
        await store.create_subscription(sub)
    before = {sub_id: await redis_client.get(f"relay:sub:{sub_id}") for sub_id in ("sub_a", "sub_d")}
    with pytest.raises(StartupError) as caught:
        async with relay_run(redis_url, key):
            pass
    assert message in str(caught.value)
    assert "set RELAY_ENCRYPTION_KEY to that key" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert {sub_id: await redis_client.get(f"relay:sub:{sub_id}") for sub_id in before} == before  # nothing rewritten


async def test_a_worker_without_the_key_of_tokens_and_secrets_stops_with_one_line_naming_both(
    redis_url: str, redis_client: Redis
) -> None:
    store = Store(redis_client, TokenCipher([KEY]))
    record = account_record("acme").model_copy(update={"token": "the-token"})
    await store.create_account(record, {}, first_poll_ms=2**50)
    (sub,) = sealed_subscriptions(1)
    await store.create_subscription(sub)
    result = relay("worker", env={"RELAY_REDIS_URL": redis_url, "RELAY_ENCRYPTION_KEY": WRONG_KEY})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(lines) == 1, result.stderr
    assert (
        "RELAY_ENCRYPTION_KEY cannot decrypt the Brightpearl tokens of 1 stored account(s) ('acme') and the signing "
        "secrets of 1 subscription(s) ('sub_a'): none of its keys is the one that encrypted them" in lines[0]
    )
    assert sub.secret not in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_registered_token_is_encrypted_at_rest_and_the_account_polls(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis, raw_redis: Redis
) -> None:
    token = sandbox.account("acme").account_token
    async with relay_run(redis_url, KEY) as api:
        created = await api.call("POST", "/v1/accounts", account_body(sandbox), 201)
        assert token not in json.dumps(created)
        stored = await stored_token(redis_client)
        assert stored.startswith("enc:v1:")
        assert token not in (await redis_client.get("relay:account:acme") or "")
        assert TokenCipher([KEY]).decrypt(stored) == token

        account = await api.polled()
        assert account["status"]["last_error"] is None
        await api.call("PATCH", "/v1/accounts/acme", {"poll_interval_s": 7})
        assert (await stored_token(redis_client)).startswith("enc:v1:")
        await api.polled()
        assert await revealed_in_redis(raw_redis, [], [token]) == []


async def test_tokens_stored_before_the_key_are_encrypted_at_start_and_rotation_reencrypts(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis
) -> None:
    token = sandbox.account("acme").account_token
    async with relay_run(redis_url, None) as api:
        await api.call("POST", "/v1/accounts", account_body(sandbox), 201)
    assert await stored_token(redis_client) == token  # no key: stored as it is (with a warning at start)

    async with relay_run(redis_url, KEY) as api:
        stored = await stored_token(redis_client)
        assert stored.startswith("enc:v1:")
        assert TokenCipher([KEY]).decrypt(stored) == token
        await api.polled()

    async with relay_run(redis_url, f"{NEW_KEY},{KEY}") as api:  # rotating: the new key first, the old after it
        await api.polled()
    assert TokenCipher([NEW_KEY]).decrypt(await stored_token(redis_client)) == token

    async with relay_run(redis_url, NEW_KEY) as api:  # the old key is no longer needed
        await api.polled()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (WRONG_KEY, "RELAY_ENCRYPTION_KEY cannot decrypt the Brightpearl tokens of 1 stored account(s) ('acme')"),
        (None, "the Brightpearl tokens of 1 stored account(s) ('acme') are encrypted but RELAY_ENCRYPTION_KEY is not"),
    ],
)
async def test_a_process_without_the_right_key_refuses_to_start(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis, key: str | None, message: str
) -> None:
    async with relay_run(redis_url, KEY) as api:
        await api.call("POST", "/v1/accounts", account_body(sandbox), 201)
    before = await redis_client.get("relay:account:acme")
    with pytest.raises(StartupError) as caught:
        async with relay_run(redis_url, key):
            pass
    assert message in str(caught.value)
    assert "set RELAY_ENCRYPTION_KEY to that key" in str(caught.value)
    assert await redis_client.get("relay:account:acme") == before  # nothing rewritten, nothing lost


async def test_an_account_stored_under_a_key_a_worker_lacks_shows_the_error_in_its_status(
    sandbox: SandboxServer, redis_url: str, redis_client: Redis
) -> None:
    """Processes started with different keys (a deployment half done): the worker that cannot decrypt a token
    records why in the account's status, which the API of a process with the right key shows."""
    settings = settings_with(redis_url, WRONG_KEY)
    async with running(settings, api=False, worker=True, worker_port=0):
        account = sandbox.account("acme")
        record = AccountRecord(
            code="acme",
            base_url=sandbox.base_url("acme"),
            app_ref=account.app_ref,
            auth="account_token",
            token=account.account_token,
            poll_interval_s=1,
            resources=["orders"],
            created_at=datetime.now(UTC),
        )
        await Store(redis_client, TokenCipher([KEY])).create_account(record, {}, first_poll_ms=0)

        async def recorded() -> bool:
            return "RELAY_ENCRYPTION_KEY" in (await redis_client.hget("relay:account:acme:status", "last_error") or "")

        await wait_for(recorded, 20, "the poll to record that it cannot decrypt the token")
        polls = await redis_client.zscore("relay:polls", "acme")
        assert polls is not None
        assert polls > datetime.now(UTC).timestamp() * 1000 + 30_000  # not again at once: a person must act

    async with relay_run(redis_url, KEY, worker=False) as api:
        shown = await api.call("GET", "/v1/accounts/acme")
    last_error = shown["status"]["last_error"]
    assert "RELAY_ENCRYPTION_KEY cannot decrypt the Brightpearl token of account 'acme'" in last_error
    assert account.account_token not in last_error


async def test_removing_an_account_needs_no_key(sandbox: SandboxServer, redis_url: str, redis_client: Redis) -> None:
    async with relay_run(redis_url, KEY) as api:
        await api.call("POST", "/v1/accounts", account_body(sandbox), 201)
    await Store(redis_client).delete_account("acme")  # e.g. the key is lost: the account can still be removed
    assert not await redis_client.exists("relay:account:acme")
    async with relay_run(redis_url, None) as api:
        assert (await api.call("GET", "/v1/accounts"))["items"] == []


def test_a_malformed_key_is_one_line_that_says_how_to_make_one() -> None:
    secret = "my-secret-but-not-a-fernet-key"
    result = relay("run", env={"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_ENCRYPTION_KEY": secret})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("relay: error: RELAY_ENCRYPTION_KEY: ")
    assert "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'" in lines[0]
    assert secret not in result.stderr  # a key, even a malformed one, is never echoed into a terminal or a log
    assert "Traceback" not in result.stderr


async def test_a_worker_with_the_wrong_key_stops_with_one_line(redis_url: str, redis_client: Redis) -> None:
    record = account_record("acme").model_copy(update={"token": "the-token"})
    await Store(redis_client, TokenCipher([KEY])).create_account(record, {}, first_poll_ms=2**50)
    result = relay("worker", env={"RELAY_REDIS_URL": redis_url, "RELAY_ENCRYPTION_KEY": WRONG_KEY})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(lines) == 1, result.stderr
    assert "RELAY_ENCRYPTION_KEY cannot decrypt the Brightpearl tokens of 1 stored account(s) ('acme')" in lines[0]
    assert "Traceback" not in result.stderr
