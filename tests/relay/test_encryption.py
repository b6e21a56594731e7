"""Brightpearl tokens encrypted at rest, as an operator meets it: through the HTTP API, the stored bytes in Redis,
restarts with the key added, rotated, wrong or missing, and the command line."""

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import StartupError, running
from relay.settings import Settings
from subscriptions.crypto import TokenCipher, generate_key
from subscriptions.models import AccountRecord
from subscriptions.store import Store
from tests.e2e import wait_for
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


async def token_appears_in_redis(raw_redis: Redis, token: str) -> list[str]:
    """Every key whose value holds ``token`` in plain text."""
    found = []
    async for key in raw_redis.scan_iter(count=1000):
        kind = (await raw_redis.type(key)).decode()
        if kind == "string":
            values = [await raw_redis.get(key) or b""]
        elif kind == "hash":
            values = list((await raw_redis.hgetall(key)).values())
        elif kind == "list":
            values = await raw_redis.lrange(key, 0, -1)
        else:
            continue
        if any(token.encode() in value for value in values):
            found.append(key.decode())
    return found


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
        assert await token_appears_in_redis(raw_redis, token) == []


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
    record = AccountRecord(
        code="acme",
        base_url="http://127.0.0.1:9/public-api/acme",
        app_ref="acme_relay",
        auth="account_token",
        token="the-token",
        poll_interval_s=5,
        resources=["orders"],
        created_at=datetime.now(UTC),
    )
    await Store(redis_client, TokenCipher([KEY])).create_account(record, {}, first_poll_ms=2**50)
    result = relay("worker", env={"RELAY_REDIS_URL": redis_url, "RELAY_ENCRYPTION_KEY": WRONG_KEY})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(lines) == 1, result.stderr
    assert "RELAY_ENCRYPTION_KEY cannot decrypt the Brightpearl tokens of 1 stored account(s) ('acme')" in lines[0]
    assert "Traceback" not in result.stderr
