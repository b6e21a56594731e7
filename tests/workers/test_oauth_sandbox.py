"""OAuth tokens against the sandbox's OAuth server (a real HTTP server, its counters the judge) and the real Redis:
connecting by the redirect and the code exchange, refreshing before expiry and after a 401, once across tasks and
processes, every rotation reading, revocation, and no token or secret in logs or errors."""

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from yarl import URL

from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.crypto import TokenCipher, generate_key
from subscriptions.store import keyspace
from subscriptions.store.oauth_tokens import OAuthTokenStore
from tests.conftest import FakeClock
from tests.workers.test_oauth_tokens import REFRESHER
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, OAuthClientRejected, ReauthorizationRequired
from workers.brightpearl.oauth import OAuthApp, TokenEndpoint
from workers.oauth_tokens import OAuthTokens

REDIRECT = "http://127.0.0.1:8080/oauth/callback"
KEY = generate_key()
PATH = "order-service/order-status"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = await start_sandbox()
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def app_of(sandbox: SandboxServer, secret: str | None = None) -> OAuthApp:
    app = sandbox.account("acme").oauth.app
    return OAuthApp(sandbox.oauth_url, app.client_id, secret or app.client_secret, app.dev_ref)


def tokens_for(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis: Redis, clock: Any = now, **kwargs: Any
) -> OAuthTokens:
    endpoint = TokenEndpoint(http, app_of(sandbox, **kwargs), clock=clock, timeout_s=5, retry_delays_s=(0.05,))
    return OAuthTokens(OAuthTokenStore(redis, TokenCipher([KEY])), endpoint, clock=clock, wait_s=5)


def client_for(sandbox: SandboxServer, http: aiohttp.ClientSession, tokens: OAuthTokens) -> BrightpearlClient:
    app = app_of(sandbox)
    credentials = Credentials(sandbox.base_url("acme"), app.client_id, "", "oauth", app.dev_ref, tokens.of("acme"))
    return BrightpearlClient(http, credentials)


async def control(http: aiohttp.ClientSession, sandbox: SandboxServer, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, f"{sandbox.url}/_sandbox/accounts/acme/oauth{path}", json=body) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def counters(http: aiohttp.ClientSession, sandbox: SandboxServer) -> dict[str, Any]:
    return dict((await control(http, sandbox, "GET", ""))["counters"])


async def connect(sandbox: SandboxServer, http: aiohttp.ClientSession, tokens: OAuthTokens) -> str:
    """The connect flow's part: follow the authorize URL, exchange the code, store the tokens. The access token."""
    app = app_of(sandbox)
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT, "state": "s+t/="}
    async with http.get(f"{sandbox.oauth_url}/authorize/acme", params=query, allow_redirects=False) as response:
        assert response.status == 302
        location = URL(response.headers["Location"])
    assert location.query["state"] == "s+t/="
    token_set = await tokens.endpoint.exchange_code("acme", location.query["code"], REDIRECT)
    assert token_set.installation_instance_id == sandbox.account("acme").oauth.installation_instance_id
    await tokens.connected("acme", token_set)
    return token_set.access_token


async def test_connected_by_the_code_exchange_then_calls_with_bearer_headers(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis
) -> None:
    tokens = tokens_for(sandbox, http, redis_client)
    await connect(sandbox, http, tokens)
    client = client_for(sandbox, http, tokens)
    assert isinstance(await client.get(PATH), list)
    seen = await counters(http, sandbox)
    assert seen["tokens_issued"] == {"authorization_code": 1}
    assert seen["api_requests"] == 1
    assert seen["unauthorized"] == {}


async def test_refreshed_before_expiry_without_a_401(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis, clock: FakeClock
) -> None:
    await control(http, sandbox, "PATCH", "", {"access_token_lifetime_s": 600})
    tokens = tokens_for(sandbox, http, redis_client, clock)
    first = await connect(sandbox, http, tokens)
    client = client_for(sandbox, http, tokens)
    await client.get(PATH)
    clock.advance(541)  # within the last minute of its ten: refreshed before use
    await client.get(PATH)
    assert await tokens.current("acme") != first
    seen = await counters(http, sandbox)
    assert (seen["refreshes"], seen["unauthorized"], client.token_refusals) == (1, {}, 0)


@pytest.mark.parametrize("rotation", ["rotate", "same", "omitted"])
async def test_refreshed_after_401_with_every_rotation(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis, rotation: str
) -> None:
    await control(http, sandbox, "PATCH", "", {"refresh_rotation": rotation})
    tokens = tokens_for(sandbox, http, redis_client)
    await connect(sandbox, http, tokens)
    client = client_for(sandbox, http, tokens)
    for expiry in (1, 2, 3):
        await control(http, sandbox, "POST", "/expire")
        assert isinstance(await client.get(PATH), list)
        seen = await counters(http, sandbox)
        assert (seen["refreshes"], seen["unauthorized"].get("expired")) == (expiry, expiry)
    assert seen["token_errors"] == {}
    assert client.token_refusals == 3


async def test_three_tasks_and_two_processes_refresh_once(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis, redis_url: str
) -> None:
    here = tokens_for(sandbox, http, redis_client)
    stale = await connect(sandbox, http, here)
    await control(http, sandbox, "POST", "/expire")
    app = app_of(sandbox)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            REFRESHER.replace('"acme_relay"', repr(app.client_id)),
            sandbox.oauth_url,
            redis_url,
            KEY,
            app.client_secret,
            stale,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    await asyncio.sleep(1.5)  # both children started and waiting
    clients = [Redis.from_url(redis_url, decode_responses=True) for _ in range(3)]
    managers = [tokens_for(sandbox, http, r) for r in clients]
    try:
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        got = await asyncio.gather(*(m.after_unauthorized("acme", stale) for m in managers))
        outputs = [(await child.communicate())[0].decode().split() for child in children]
    finally:
        for r in clients:
            await r.aclose()
    assert all(child.returncode == 0 for child in children)
    assert [out[1] for out in outputs] == ["False", "False"]
    assert len(set(got)) == 1
    assert got[0] != stale
    seen = await counters(http, sandbox)
    assert seen["refreshes"] == 1
    assert seen["token_errors"] == {}  # a second refresh with the rotated-away token would be invalid_grant
    assert sum(m.refreshes for m in managers) + sum(int(out[0]) for out in outputs) == 1


async def test_revoked_is_reauthorization_required_with_no_more_token_calls(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = tokens_for(sandbox, http, redis_client)
    first = await connect(sandbox, http, tokens)
    stored, _ = await tokens.store.read("acme")
    assert stored is not None
    client = client_for(sandbox, http, tokens)
    await control(http, sandbox, "POST", "/revoke")
    with pytest.raises(ReauthorizationRequired) as raised:
        await client.get(PATH)
    status = await redis_client.hgetall(keyspace.account_status("acme"))
    assert status["auth_state"] == "reauthorization_required"
    assert status["auth_reason"] == "The auth token has either expired or does not exist"
    errors = []
    for _ in range(3):
        with pytest.raises(ReauthorizationRequired) as again:
            await client.get(PATH)
        errors.append(again.value)
    seen = await counters(http, sandbox)
    assert seen["token_errors"] == {"invalid_grant": 1}
    assert seen["unauthorized"] == {"invalid": 1}
    app = app_of(sandbox)
    shown = [caplog.text, str(raised.value), repr(raised.value), *map(str, errors), repr(client.credentials)]
    for secret in (app.client_secret, first, stored.refresh_token):
        assert not any(secret in text for text in shown)
    await connect(sandbox, http, tokens)  # authorized again: calls resume
    assert isinstance(await client.get(PATH), list)
    assert (await redis_client.hgetall(keyspace.account_status("acme")))["auth_state"] == "active"


async def test_a_refused_token_is_not_quoted_in_the_error(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis
) -> None:
    """The sandbox, like Brightpearl, quotes the token it refuses ("Invalid instance token: …")."""
    tokens = tokens_for(sandbox, http, redis_client)
    first = await connect(sandbox, http, tokens)
    app = app_of(sandbox)
    wrong = Credentials(sandbox.base_url("acme"), app.client_id, "", "oauth", app.dev_ref, Fixed(first + "x"))
    with pytest.raises(AuthenticationFailed) as raised:
        await BrightpearlClient(http, wrong).get(PATH)
    assert "Invalid instance token" in str(raised.value)
    assert first not in str(raised.value)


class Fixed:
    """A token source that always gives the same (wrong) token."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def current(self) -> str:
        return self.token

    async def after_unauthorized(self, token_used: str) -> str:
        return self.token


async def test_a_wrong_client_secret_names_the_settings(
    sandbox: SandboxServer, http: aiohttp.ClientSession, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tokens_for(sandbox, http, redis_client)
    await connect(sandbox, http, tokens)
    await control(http, sandbox, "POST", "/expire")
    wrong = tokens_for(sandbox, http, redis_client, secret="not+the/secret=")
    with pytest.raises(OAuthClientRejected) as raised:
        await client_for(sandbox, http, wrong).get(PATH)
    assert "RELAY_BRIGHTPEARL_CLIENT_SECRET" in str(raised.value)
    assert "not+the/secret=" not in str(raised.value) + caplog.text
    assert not await redis_client.exists(keyspace.oauth_refresh_lock("acme"))  # released: the next may try
    assert "auth_reason" not in await redis_client.hgetall(keyspace.account_status("acme"))
