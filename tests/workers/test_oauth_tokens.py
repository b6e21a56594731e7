"""An OAuth account's tokens kept valid, against a real token endpoint over loopback and the real Redis: refreshed
before expiry and after a 401, exactly once across tasks and processes, rotation either way, revocation."""

import asyncio
import logging
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenCipher, generate_key, is_encrypted
from subscriptions.store import keyspace
from subscriptions.store.oauth_tokens import OAuthTokenStore
from tests.conftest import FakeClock
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, ReauthorizationRequired
from workers.brightpearl.oauth import OAuthApp, TokenEndpoint, TokenSet
from workers.oauth_tokens import OAuthTokens

CLIENT_ID = "acme_relay"
SECRET = "client+secret/=="
DEV_REF = "dev-1"
INVALID_GRANT = {"error": "invalid_grant", "error_description": "The auth token has either expired or does not exist"}


@dataclass
class OAuthServer:
    """Brightpearl's token endpoint and one API path, as API.md 2 and 2.1 describe them: expiring Bearer tokens,
    refresh tokens that rotate or not, revocation, and counters."""

    lifetime_s: float = 5.0
    rotate: bool = True
    delay_s: float = 0.0  # how long a refresh takes (widens the race the lock must close)
    access: dict[str, float] = field(default_factory=dict)  # token -> loop time it expires
    refresh_tokens: set[str] = field(default_factory=set)
    refreshes: int = 0
    expired_401s: int = 0
    url: str = ""

    def mint(self) -> dict[str, object]:
        access, refresh = secrets.token_urlsafe(16) + "+/=", secrets.token_urlsafe(16) + "+/="
        self.access[access] = asyncio.get_running_loop().time() + self.lifetime_s
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "installation_instance_id": "13",
            "api_domain": "127.0.0.1",
            "token_type": "Bearer",
            "expires_in": self.lifetime_s,
        }

    def revoke(self) -> None:
        self.access.clear()
        self.refresh_tokens.clear()

    async def token(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-www-form-urlencoded"
        form = dict(parse_qsl(await request.text(), strict_parsing=True))
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, SECRET):
            return web.json_response({"error": "invalid_client"}, status=400)
        old = form.get("refresh_token", "")
        if form.get("grant_type") != "refresh_token" or old not in self.refresh_tokens:
            return web.json_response(INVALID_GRANT, status=400)
        self.refreshes += 1
        await asyncio.sleep(self.delay_s)
        answer = self.mint()
        if self.rotate:
            self.refresh_tokens.discard(old)
        else:
            self.refresh_tokens.discard(str(answer["refresh_token"]))
            del answer["refresh_token"]
        return web.json_response(answer)

    async def api(self, request: web.Request) -> web.Response:
        if request.headers.get("brightpearl-app-ref") != CLIENT_ID or request.headers.get("brightpearl-dev-ref") != (
            DEV_REF
        ):
            return web.json_response({"response": "Not authenticated."}, status=401)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self.access.get(token)
        if expires is None:
            return web.json_response({"response": f"Invalid instance token: {token[:4]}"}, status=401)
        if asyncio.get_running_loop().time() >= expires:
            self.expired_401s += 1
            return web.json_response({"response": "Authorization token expired"}, status=401)
        return web.json_response({"response": [{"id": 1}]})


@pytest.fixture
async def oauth_server() -> AsyncIterator[OAuthServer]:
    server = OAuthServer()
    app = web.Application()
    app.router.add_post("/oauth/token/{account}", server.token)
    app.router.add_get("/public-api/{account}/order-service/order/{ids}", server.api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def manager(
    server: OAuthServer, session: aiohttp.ClientSession, redis: Redis, clock: FakeClock | None = None
) -> OAuthTokens:
    now = clock or (lambda: datetime.now(UTC))
    app = OAuthApp(f"{server.url}/oauth", CLIENT_ID, SECRET, DEV_REF)
    endpoint = TokenEndpoint(session, app, clock=now, timeout_s=5, retry_delays_s=(0.05,))
    return OAuthTokens(OAuthTokenStore(redis, CIPHER), endpoint, clock=now, wait_s=5)


CIPHER = TokenCipher([generate_key()])


async def connect(tokens: OAuthTokens, server: OAuthServer, code: str = "acme") -> TokenSet:
    """What the connect flow does once it has exchanged a code: store the tokens."""
    answer = server.mint()
    now = tokens.clock()
    token_set = TokenSet(
        str(answer["access_token"]),
        str(answer["refresh_token"]),
        now + timedelta(seconds=server.lifetime_s),
        now,
        "127.0.0.1",
        "13",
    )
    await tokens.connected(code, token_set)
    return token_set


async def test_tokens_are_stored_sealed_in_one_record(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis
) -> None:
    tokens = manager(oauth_server, session, redis_client)
    first = await connect(tokens, oauth_server)
    stored = await redis_client.get(keyspace.oauth_tokens("acme"))
    assert first.access_token not in stored
    assert first.refresh_token not in stored
    assert '"access_token":"enc:v1:' in stored
    assert is_encrypted(stored.split('"refresh_token":"')[1])
    assert await redis_client.hget(keyspace.account_status("acme"), "auth_state") == "active"
    assert await tokens.current("acme") == first.access_token
    assert oauth_server.refreshes == 0


async def test_refreshed_before_expiry(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis, clock: FakeClock
) -> None:
    tokens = manager(oauth_server, session, redis_client, clock)
    first = await connect(tokens, oauth_server)
    clock.advance(4.4)  # 5 s tokens: refreshed half a second early
    assert await tokens.current("acme") == first.access_token
    clock.advance(0.2)
    second = await tokens.current("acme")
    assert second != first.access_token
    assert oauth_server.refreshes == 1
    assert await tokens.current("acme") == second
    assert oauth_server.refreshes == 1


@pytest.mark.parametrize("rotate", [True, False])
async def test_refreshed_after_401_once_through_the_client(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis, rotate: bool
) -> None:
    oauth_server.rotate = rotate
    oauth_server.lifetime_s = 600  # the relay thinks it is valid for ten minutes ...
    tokens = manager(oauth_server, session, redis_client)
    first = await connect(tokens, oauth_server)
    oauth_server.access[first.access_token] = 0.0  # ... Brightpearl says it has expired
    credentials = Credentials(f"{oauth_server.url}/public-api/acme", CLIENT_ID, "", "oauth", DEV_REF, tokens.of("acme"))
    client = BrightpearlClient(session, credentials)
    assert await client.get("order-service/order/1") == [{"id": 1}]
    assert (oauth_server.expired_401s, oauth_server.refreshes, client.token_refusals) == (1, 1, 1)
    stored, _ = await tokens.store.read("acme")
    assert stored is not None
    assert (stored.refresh_token != first.refresh_token) is rotate  # whatever came back is stored
    assert await client.get("order-service/order/1") == [{"id": 1}]  # the new token from now on
    assert oauth_server.refreshes == 1
    oauth_server.access[stored.access_token] = 0.0
    assert await client.get("order-service/order/1") == [{"id": 1}]  # the (kept or rotated) refresh token works
    assert oauth_server.refreshes == 2


async def test_a_token_replaced_meanwhile_is_not_refreshed_again(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis
) -> None:
    tokens = manager(oauth_server, session, redis_client)
    first = await connect(tokens, oauth_server)
    second = await tokens.after_unauthorized("acme", first.access_token)
    assert await tokens.after_unauthorized("acme", first.access_token) == second  # a late process's 401
    assert oauth_server.refreshes == 1


async def test_three_tasks_refresh_once(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis
) -> None:
    oauth_server.delay_s = 0.3
    processes = [manager(oauth_server, session, Redis.from_url(redis_client_url(redis_client))) for _ in range(3)]
    first = await connect(processes[0], oauth_server)
    try:
        got = await asyncio.gather(*(p.after_unauthorized("acme", first.access_token) for p in processes))
    finally:
        for p in processes:
            await p.store.redis.aclose()
    assert len(set(got)) == 1
    assert got[0] != first.access_token
    assert oauth_server.refreshes == 1
    assert sum(p.refreshes for p in processes) == 1


def redis_client_url(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}?decode_responses=true"


REFRESHER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    import aiohttp
    from redis.asyncio import Redis
    from subscriptions.core.crypto import TokenCipher
    from subscriptions.store.oauth_tokens import OAuthTokenStore
    from workers.brightpearl.oauth import OAuthApp, TokenEndpoint
    from workers.oauth_tokens import OAuthTokens

    async def main() -> None:
        oauth_url, redis_url, key, secret, stale = sys.argv[1:6]
        now = lambda: datetime.now(UTC)
        async with aiohttp.ClientSession() as session:
            redis = Redis.from_url(redis_url, decode_responses=True)
            app = OAuthApp(oauth_url, "acme_relay", secret, "dev-1")
            tokens = OAuthTokens(
                OAuthTokenStore(redis, TokenCipher([key])), TokenEndpoint(session, app, clock=now), clock=now
            )
            sys.stdin.readline()  # start together
            fresh = await tokens.after_unauthorized("acme", stale)
            print(tokens.refreshes, fresh == stale)
            await redis.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_and_a_task_refresh_once(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis, redis_url: str
) -> None:
    oauth_server.delay_s = 0.5
    key = generate_key()
    cipher = TokenCipher([key])
    app = OAuthApp(f"{oauth_server.url}/oauth", CLIENT_ID, SECRET, DEV_REF)
    now = lambda: datetime.now(UTC)  # noqa: E731
    here = OAuthTokens(OAuthTokenStore(redis_client, cipher), TokenEndpoint(session, app, clock=now), clock=now)
    first = await connect(here, oauth_server)
    args = [f"{oauth_server.url}/oauth", redis_url, key, SECRET, first.access_token]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            REFRESHER,
            *args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    await asyncio.sleep(1.5)  # both children imported and waiting
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    mine = await here.after_unauthorized("acme", first.access_token)
    outputs = [(await child.communicate())[0].decode().split() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert oauth_server.refreshes == 1
    assert here.refreshes + sum(int(out[0]) for out in outputs) == 1
    assert [out[1] for out in outputs] == ["False", "False"]
    assert mine == (await here.store.read("acme"))[0].access_token  # type: ignore[union-attr]


async def test_revoked_means_reauthorization_required_and_no_more_calls(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = manager(oauth_server, session, redis_client)
    first = await connect(tokens, oauth_server)
    oauth_server.revoke()
    credentials = Credentials(f"{oauth_server.url}/public-api/acme", CLIENT_ID, "", "oauth", DEV_REF, tokens.of("acme"))
    client = BrightpearlClient(session, credentials)
    with pytest.raises(ReauthorizationRequired) as raised:  # "Invalid instance token": one refresh, refused
        await client.get("order-service/order/1")
    assert raised.value.reason == "The auth token has either expired or does not exist"
    assert (oauth_server.refreshes, client.token_refusals, tokens.endpoint.calls) == (0, 1, 1)
    status = await redis_client.hgetall(keyspace.account_status("acme"))
    assert status["auth_state"] == "reauthorization_required"
    assert status["auth_reason"] == "The auth token has either expired or does not exist"
    assert not await redis_client.exists(keyspace.oauth_refresh_lock("acme"))
    calls = tokens.endpoint.calls
    for _ in range(3):
        with pytest.raises(ReauthorizationRequired):
            await tokens.current("acme")
        with pytest.raises(ReauthorizationRequired):
            await client.get("order-service/order/1")
    assert tokens.endpoint.calls == calls
    shown = [caplog.text, str(raised.value), repr(raised.value), repr(credentials)]
    for secret in (SECRET, first.access_token, first.refresh_token):
        assert not any(secret in text for text in shown)
    second = await connect(tokens, oauth_server)  # authorized again
    assert await tokens.current("acme") == second.access_token
    assert await client.get("order-service/order/1") == [{"id": 1}]
    assert "auth_reason" not in await redis_client.hgetall(keyspace.account_status("acme"))


async def test_not_connected_is_an_authentication_failure(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis
) -> None:
    with pytest.raises(AuthenticationFailed, match="authorized first"):
        await manager(oauth_server, session, redis_client).current("acme")


async def test_private_app_headers_unchanged() -> None:
    assert Credentials("u", "acme_app", "tok").headers() == {
        "brightpearl-app-ref": "acme_app",
        "brightpearl-account-token": "tok",
        "accept": "application/json",
    }
    assert Credentials("u", "acme_app", "tok", "staff_token").headers() == {
        "brightpearl-app-ref": "acme_app",
        "brightpearl-staff-token": "tok",
        "accept": "application/json",
    }
    assert "s3cret-tok" not in repr(Credentials("u", "acme_app", "s3cret-tok"))


async def test_a_refresh_while_the_first_baseline_is_taken_leaves_the_account_waiting(
    oauth_server: OAuthServer, session: aiohttp.ClientSession, redis_client: Redis, clock: FakeClock
) -> None:
    """A first connection stores its tokens but stays ``authorization_required`` (no poll may run without a
    baseline); a token that expires while the baseline is read is refreshed and the state stays until
    ``activate``."""
    tokens = manager(oauth_server, session, redis_client, clock)
    answer = oauth_server.mint()
    now = clock()
    await tokens.connected(
        "acme",
        TokenSet(str(answer["access_token"]), str(answer["refresh_token"]), now + timedelta(seconds=5), now),
        baseline_pending=True,
    )
    assert await redis_client.hget(keyspace.account_status("acme"), "auth_state") == "authorization_required"
    assert await tokens.current("acme") == answer["access_token"]  # usable for the baseline
    clock.advance(4.9)
    refreshed = await tokens.current("acme")
    assert refreshed != answer["access_token"]
    assert oauth_server.refreshes == 1
    assert await redis_client.hget(keyspace.account_status("acme"), "auth_state") == "authorization_required"
    await tokens.activate("acme")
    assert await redis_client.hget(keyspace.account_status("acme"), "auth_state") == "active"
    clock.advance(4.9)
    await tokens.current("acme")
    assert oauth_server.refreshes == 2
    assert await redis_client.hget(keyspace.account_status("acme"), "auth_state") == "active"
