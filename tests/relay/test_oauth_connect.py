"""Connecting an account through Brightpearl (CONTRACT "OAuth instance apps"): registered with ``"auth": "oauth"``,
connected by following its ``authorize_url`` (the sandbox's authorize endpoint redirects at once, as an admin who
allows the app would be sent back), the callback exchanging the code; then polled by the real poller. The real
API over loopback, the real Redis, the sandbox's OAuth server and its counters the judge."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.crypto import TokenCipher, generate_key
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.oauth_states import MAX_PER_ACCOUNT, OAuthStates, digest
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.brightpearl.oauth import TokenSet
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthConfig
from workers.poller import Poller, PollPolicy

ADMIN = "admin-token-for-oauth-connect"
KEY = generate_key()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class World:
    sandbox: SandboxServer
    http: aiohttp.ClientSession
    api: str
    store: Store
    poller: Poller
    redis: Redis

    @property
    def control(self) -> str:
        return f"{self.sandbox.url}/_sandbox/accounts/acme"

    async def sandbox_call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.control}{path}", json=body) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json()

    async def call(self, method: str, path: str, body: Any = None, token: str = ADMIN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, f"{self.api}{path}", json=body, headers=headers) as answer:
            return answer.status, await answer.json()

    async def follow(self, url: str) -> tuple[int, str]:
        """A browser following ``url``: Brightpearl's authorize page, then its redirect to the callback."""
        async with self.http.get(url, allow_redirects=True) as answer:
            return answer.status, await answer.text()

    async def counters(self) -> dict[str, Any]:
        return dict((await self.sandbox_call("GET", "/oauth"))["counters"])

    async def emitted(self) -> list[int]:
        page = await self.store.list_events(limit=1000, cursor=None, account="acme", type_="order.created")
        return [int(e.resource_id) for e in page.items]  # type: ignore[arg-type]

    async def auth_state(self) -> str | None:
        _, view = await self.call("GET", "/v1/accounts/acme")
        return view["status"]["auth_state"]  # type: ignore[no-any-return]


def config_of(sandbox: SandboxServer, client_secret: str | None = None) -> OAuthConfig:
    app = sandbox.account("acme").oauth.app
    return OAuthConfig(sandbox.oauth_url, app.client_id, client_secret or app.client_secret, app.dev_ref, 0.9)


async def serve(
    redis: Redis, http: aiohttp.ClientSession, sandbox: SandboxServer, *, public: bool = True, secret: str | None = None
) -> TestServer:
    port = unused_port()
    ctx = ApiContext(
        redis=redis,
        admin_token=ADMIN,
        brightpearl_session=http,
        budget_per_minute=100,
        allow_private_targets=False,
        clock=now,
        cipher=TokenCipher([KEY]),
        oauth_config=config_of(sandbox, secret),
        public_url=f"http://127.0.0.1:{port}" if public else None,
    )
    server = TestServer(create_app(ctx), host="127.0.0.1", port=port)
    await server.start_server()
    return server


@pytest.fixture
async def world(redis_client: Redis) -> AsyncIterator[World]:
    sandbox = await start_sandbox()
    async with aiohttp.ClientSession() as http:
        server = await serve(redis_client, http, sandbox)
        store = Store(redis_client, TokenCipher([KEY]))
        oauth = config_of(sandbox).access(redis_client, http, TokenCipher([KEY]), now)
        poller = Poller(
            store,
            DeliveryQueue(redis_client),
            redis_client,
            http,
            PollPolicy(overlap_s=60, budget_per_minute=100, page_size=7),
            Metrics(),
            clock=now,
            on_deliveries=lambda: None,
            oauth=oauth,
        )
        try:
            yield World(sandbox, http, str(server.make_url("")).rstrip("/"), store, poller, redis_client)
        finally:
            await server.close()
            await sandbox.close()


async def register(world: World, **extra: Any) -> dict[str, Any]:
    body = {
        "code": "acme",
        "base_url": world.sandbox.base_url("acme"),
        "auth": "oauth",
        "resources": ["orders"],
        "hints": False,
        **extra,
    }
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


async def cursors(world: World) -> dict[str, str | None]:
    keys = sorted([k async for k in world.redis.scan_iter(match=keyspace.position("acme", "*"))])
    return {k: await world.redis.get(k) for k in keys}


async def test_registered_waits_for_its_authorization_without_a_call_to_brightpearl(world: World) -> None:
    before = await world.sandbox_call("POST", "/orders", {"count": 2})
    view = await register(world)
    assert view["auth"] == "oauth"
    assert view["status"]["auth_state"] == "authorization_required"
    assert view["base_url"] == world.sandbox.base_url("acme")
    url = urlsplit(view["authorize_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{world.sandbox.oauth_url}/authorize/acme"
    query = parse_qs(url.query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [world.sandbox.account("acme").oauth.app.client_id]
    assert query["redirect_uri"] == [f"{world.api}/oauth/callback"]
    assert query["state"][0].startswith("acme.")
    await world.poller.poll_now("acme")
    counters = await world.counters()
    assert counters["api_requests"] == 0
    assert not counters["unauthorized"]
    assert counters["tokens_issued"] == {}
    assert await cursors(world) == {}  # no baseline, so no poll may run
    assert await world.emitted() == []
    _, listed = await world.call("GET", "/v1/accounts/acme")
    assert "authorize_url" not in listed  # only the registration's answer holds one (each is a new state)
    assert before["ids"]


async def test_following_the_authorize_url_connects_and_takes_the_baseline(world: World) -> None:
    await world.sandbox_call("POST", "/orders", {"count": 2})  # made before: the baseline, never a webhook
    view = await register(world)
    status, page = await world.follow(view["authorize_url"])
    assert status == 200, page
    assert "Connected" in page
    assert "acme is connected" in page
    assert await world.auth_state() == "active"
    counters = await world.counters()
    assert counters["tokens_issued"].get("authorization_code") == 1
    assert await cursors(world)
    made = (await world.sandbox_call("POST", "/orders", {"count": 3}))["ids"]
    await world.poller.poll_now("acme")
    emitted = await world.emitted()
    assert sorted(emitted) == sorted(made)
    stored = await world.redis.get(keyspace.oauth_tokens("acme"))
    assert stored is not None
    assert "Bearer" not in page
    status, page = await world.follow(view["authorize_url"])  # the same link again: its state is spent
    assert status == 400
    assert "cannot be used" in page
    assert (await world.counters())["tokens_issued"].get("authorization_code") == 1
    assert await world.redis.get(keyspace.oauth_tokens("acme")) == stored


async def test_unknown_expired_forged_or_reused_states_change_nothing(world: World) -> None:
    view = await register(world)
    state = parse_qs(urlsplit(view["authorize_url"]).query)["state"][0]
    callback = f"{world.api}/oauth/callback"
    for bad in ("", "nonsense", "acme.", "acme.AAAA", state + "x", "other." + state.partition(".")[2]):
        async with world.http.get(callback, params={"code": "c", "state": bad}) as answer:
            assert answer.status == 400, bad
            assert answer.content_type == "text/html"
    # expired: its score is in the past (the key lives on until Redis drops it)
    await world.redis.zadd(keyspace.oauth_states("acme"), {digest(state): ms(now()) - 1})
    status, page = await world.follow(view["authorize_url"])
    assert status == 400
    assert "expired" in page
    assert await world.auth_state() == "authorization_required"
    assert not await world.redis.exists(keyspace.oauth_tokens("acme"))
    assert (await world.counters())["tokens_issued"] == {}


async def test_authorized_again_after_revocation_every_order_made_meanwhile_arrives_once(world: World) -> None:
    view = await register(world)
    assert (await world.follow(view["authorize_url"]))[0] == 200
    first = (await world.sandbox_call("POST", "/orders", {"count": 2}))["ids"]
    await world.poller.poll_now("acme")
    await world.sandbox_call("POST", "/oauth/revoke")
    await world.poller.poll_now("acme")
    assert await world.auth_state() == "reauthorization_required"
    positions = await cursors(world)
    meanwhile = (await world.sandbox_call("POST", "/orders", {"count": 3}))["ids"]
    await world.poller.poll_now("acme")  # paused: nothing read
    assert await cursors(world) == positions
    status, link = await world.call("GET", "/v1/accounts/acme/authorize")
    assert status == 200, link
    status, page = await world.follow(link["authorize_url"])
    assert status == 200, page
    assert "authorized again" in page
    assert await world.auth_state() == "active"
    assert await cursors(world) == positions  # not a new baseline: polling resumes where it stopped
    await world.poller.poll_now("acme")
    emitted = await world.emitted()
    assert sorted(emitted) == sorted(first + meanwhile)
    assert len(emitted) == len(set(emitted))


async def test_brightpearl_answering_an_error_spends_the_state(world: World) -> None:
    view = await register(world)
    state = parse_qs(urlsplit(view["authorize_url"]).query)["state"][0]
    params = {"error": "access_denied", "error_description": "The <b>admin</b> declined", "state": state}
    async with world.http.get(f"{world.api}/oauth/callback", params=params) as answer:
        page = await answer.text()
        assert answer.status == 400
    assert "access_denied" in page
    assert "<b>admin</b>" not in page  # escaped
    assert await world.auth_state() == "authorization_required"
    status, page = await world.follow(view["authorize_url"])
    assert status == 400


async def test_a_callback_without_code_or_state_says_what_is_missing(world: World) -> None:
    async with world.http.get(f"{world.api}/oauth/callback") as answer:
        page = await answer.text()
        assert answer.status == 400
    assert "no code and no state" in page


async def test_authorize_links_are_limited_per_account_and_scoped_keys_see_their_own(world: World) -> None:
    view = await register(world)
    other = {"code": "other", "base_url": world.sandbox.base_url("acme"), "auth": "oauth", "hints": False}
    assert (await world.call("POST", "/v1/accounts", other))[0] == 201
    status, key = await world.call("POST", "/v1/api-keys", {"account": "acme", "description": "integrator"})
    assert status == 201, key
    status, link = await world.call("GET", "/v1/accounts/acme/authorize", token=key["key"])
    assert status == 200, link
    status, problem = await world.call("GET", "/v1/accounts/other/authorize", token=key["key"])
    assert status == 404, problem
    for _ in range(MAX_PER_ACCOUNT + 5):
        assert (await world.call("GET", "/v1/accounts/acme/authorize"))[0] == 200
    assert await OAuthStates(world.redis).outstanding("acme") == MAX_PER_ACCOUNT
    status, _ = await world.follow(view["authorize_url"])  # the oldest was pushed out
    assert status == 400
    status, _ = await world.follow(link["authorize_url"])
    assert status == 400


async def test_patching_an_unconnected_account_keeps_it_waiting_and_tokens_brought_connect_it(world: World) -> None:
    await register(world)
    status, view = await world.call("PATCH", "/v1/accounts/acme", {"poll_interval_s": 7})
    assert status == 200, view
    assert view["status"]["auth_state"] == "authorization_required"
    assert (await world.counters())["api_requests"] == 0
    tokens = await world.sandbox_call("POST", "/oauth/tokens")
    grant = {k: tokens[k] for k in ("access_token", "refresh_token", "expires_in", "api_domain")}
    status, view = await world.call("PATCH", "/v1/accounts/acme", {"oauth": grant})
    assert status == 200, view
    assert view["status"]["auth_state"] == "active"
    assert await cursors(world)
    made = (await world.sandbox_call("POST", "/orders", {"count": 2}))["ids"]
    await world.poller.poll_now("acme")
    assert sorted(await world.emitted()) == sorted(made)


async def test_connecting_needs_a_public_url(redis_client: Redis) -> None:
    sandbox = await start_sandbox()
    async with aiohttp.ClientSession() as http:
        server = await serve(redis_client, http, sandbox, public=False)
        try:
            body = {"code": "acme", "base_url": sandbox.base_url("acme"), "auth": "oauth"}
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with http.post(str(server.make_url("/v1/accounts")), json=body, headers=headers) as answer:
                status, problem = answer.status, await answer.json()
        finally:
            await server.close()
            await sandbox.close()
    assert status == 422
    assert "RELAY_PUBLIC_URL" in str(problem)
    assert not await redis_client.exists(keyspace.account("acme"))


async def test_a_refused_app_says_what_the_operator_must_check(redis_client: Redis) -> None:
    sandbox = await start_sandbox()
    async with aiohttp.ClientSession() as http:
        server = await serve(redis_client, http, sandbox, secret="not-the-secret")
        try:
            body = {"code": "acme", "base_url": sandbox.base_url("acme"), "auth": "oauth", "hints": False}
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with http.post(str(server.make_url("/v1/accounts")), json=body, headers=headers) as answer:
                view = await answer.json()
                assert answer.status == 201, view
            async with http.get(view["authorize_url"]) as answer:
                status, page = answer.status, await answer.text()
            state = await redis_client.hget(keyspace.account_status("acme"), "auth_state")
        finally:
            await server.close()
            await sandbox.close()
    assert status == 502
    assert "RELAY_BRIGHTPEARL_CLIENT_SECRET" in page
    assert "not-the-secret" not in page
    assert state == "authorization_required"


async def test_no_poll_runs_between_the_tokens_and_the_baseline(world: World) -> None:
    """The moment inside a first connection: tokens stored, baseline not yet. A poll then would take every order
    the account ever had for new; it must leave the account alone."""
    await world.sandbox_call("POST", "/orders", {"count": 3})
    await register(world)
    tokens = await world.sandbox_call("POST", "/oauth/tokens")
    oauth = world.poller.oauth
    assert oauth is not None
    issued = now()
    await oauth.tokens.connected(
        "acme",
        TokenSet(tokens["access_token"], tokens["refresh_token"], issued + timedelta(hours=1), issued),
        baseline_pending=True,
    )
    before = await world.counters()
    await world.poller.poll_now("acme")
    assert (await world.counters())["api_requests"] == before["api_requests"]
    assert await world.emitted() == []
    assert await cursors(world) == {}


async def test_without_a_base_url_the_host_comes_from_the_token_answer_and_a_failure_leaves_it_waiting(
    world: World,
) -> None:
    """Registered without a base URL, the account's host is ``https://{api_domain}/public-api/{code}`` from
    Brightpearl's token answer. The sandbox's api_domain serves plain HTTP, so the baseline there fails: the page
    says so, and the account keeps waiting (nothing polled) until a connection succeeds."""
    status, view = await world.call(
        "POST", "/v1/accounts", {"code": "acme", "auth": "oauth", "resources": ["orders"], "hints": False}
    )
    assert status == 201, view
    assert view["base_url"] is None
    status, page = await world.follow(view["authorize_url"])
    assert status == 502, page
    assert "connect again" in page
    _, view = await world.call("GET", "/v1/accounts/acme")
    assert view["status"]["auth_state"] == "authorization_required"
    assert view["base_url"] is None
    assert await cursors(world) == {}
    status, view = await world.call("PATCH", "/v1/accounts/acme", {"base_url": world.sandbox.base_url("acme")})
    assert status == 200, view
    _, link = await world.call("GET", "/v1/accounts/acme/authorize")
    status, page = await world.follow(link["authorize_url"])
    assert status == 200, page
    assert await world.auth_state() == "active"
