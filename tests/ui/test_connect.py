"""Connecting an account from the dashboard (issue 16): its page says it waits for an authorization, the Connect to
Brightpearl button goes to Brightpearl (the sandbox, whose authorize page sends the browser straight back), the
callback connects it, the page shows it active, and the first order made after is delivered, signed, and shown as
succeeded. In a real Chromium with JavaScript off, over a relay (API and worker) in this process and the sandbox.

Then over plain HTTP: the page in each authorization state, the link's redirect with a fresh state, and the
refusals: a private app's account (409) and a relay that cannot connect accounts (503)."""

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.crypto import generate_key
from subscriptions.core.models import AccountRecord
from subscriptions.store.oauth_states import OAuthStates
from tests.conftest import FakeClock
from tests.ui.world import TOKEN, Dashboard, Relay, dashboard_alone, relay_in_process
from workers.oauth_accounts import OAuthConfig

pytestmark = pytest.mark.timeout(90)

CONNECT = "Connect to Brightpearl"


@dataclass
class Connecting:
    """The relay, with the sandbox as Brightpearl's OAuth server and API, and the relay's API as its public URL."""

    relay: Relay
    sandbox: SandboxServer

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.sandbox.url}/_sandbox/accounts/acme{path}"
        async with self.relay.http.request(method, url, json=body) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json()

    async def register(self) -> dict[str, Any]:
        body = {
            "code": "acme",
            "base_url": self.sandbox.base_url("acme"),
            "auth": "oauth",
            "resources": ["orders"],
            "hints": False,
            "poll_interval_s": 1,
        }
        view: dict[str, Any] = await self.relay.call("POST", "/v1/accounts", body, expect=201)
        return view


@pytest.fixture
async def connecting(redis_url: str) -> AsyncIterator[Connecting]:
    sandbox = await start_sandbox()
    app = sandbox.account("acme").oauth.app
    settings = {
        "encryption_key": generate_key(),
        "brightpearl_oauth_url": sandbox.oauth_url,
        "brightpearl_app_ref": app.client_id,
        "brightpearl_client_secret": app.client_secret,
        "brightpearl_dev_ref": app.dev_ref,
    }
    try:
        async with relay_in_process(redis_url, public=True, **settings) as relay:
            yield Connecting(relay, sandbox)
    finally:
        await sandbox.close()


async def log_in(page: Page, relay: Relay, token: str = TOKEN) -> None:
    await page.goto(f"{relay.url}/ui/login")
    await page.fill("#token", token)
    await page.click("button:has-text('Log in')")
    await expect(page.locator("h1")).to_have_text("Overview")


async def test_the_whole_connect_flow_in_chromium(connecting: Connecting, page: Page) -> None:
    relay = connecting.relay
    before = (await connecting.control("POST", "/orders", {"count": 2}))["ids"]  # the baseline: never a webhook
    view = await connecting.register()
    assert view["status"]["auth_state"] == "authorization_required"
    sub = await relay.subscribe("acme")
    relay.receiver.secret = sub["secret"]
    relay.receiver.fail_next = 0

    await log_in(page, relay)
    row = page.locator("table tr", has=page.locator("a", has_text="acme"))
    await expect(row.locator(".badge").first).to_have_text("authorization required")  # the Polling column
    await row.locator("a", has_text="acme").click()

    await expect(page).to_have_url(f"{relay.url}/ui/accounts/acme")
    await expect(page.locator("h1 .badge")).to_have_text("authorization required")
    await expect(page.locator(".connect-help")).to_contain_text("First connection")
    await expect(page.locator(".facts")).to_contain_text(connecting.sandbox.base_url("acme"))
    await expect(page.locator("table.resources tbody tr")).to_have_count(1)
    await expect(page.locator("table.resources")).to_contain_text("orders")
    assert (await connecting.control("GET", "/oauth"))["counters"]["api_requests"] == 0

    await page.click(f"a.button.primary:has-text('{CONNECT}')")
    await expect(page).to_have_url(re.compile(re.escape(f"{relay.url}/oauth/callback?") + ".*state=acme\\."))
    await expect(page.locator("h1")).to_have_text("Connected")
    await expect(page.locator(".alert.ok")).to_contain_text("Account acme is connected to Brightpearl")
    counters = (await connecting.control("GET", "/oauth"))["counters"]
    assert counters["tokens_issued"].get("authorization_code") == 1

    await page.click("text=Open account acme in the dashboard")
    await expect(page).to_have_url(f"{relay.url}/ui/accounts/acme")
    await expect(page.locator("h1 .badge")).to_have_text("active")
    await expect(page.locator(".connect-help")).to_contain_text("Reconnect")

    made = (await connecting.control("POST", "/orders", {"count": 1}))["ids"]
    deadline = time.monotonic() + 20
    while not relay.receiver.by_type("order.created"):
        assert time.monotonic() < deadline, f"no order.created arrived; got {relay.receiver.counts()}"
        await page.wait_for_timeout(100)
    [created] = relay.receiver.by_type("order.created")
    assert created.verified  # signed with the subscription's secret
    assert created.body["data"]["id"] == made[0]
    assert created.body["data"]["accountCode"] == "acme"
    assert made[0] not in before

    await page.goto(f"{relay.url}/ui/deliveries")
    rows = page.locator("table.deliveries tbody tr", has_text="order.created")
    badge = rows.first.locator(".badge")
    for _ in range(40):  # bounded: about 10 s (the delivery's record is written just after the receiver answers)
        if await rows.count() == 1 and await badge.text_content() == "succeeded":
            break
        await page.wait_for_timeout(250)
        await page.reload()
    await expect(rows).to_have_count(1)
    await expect(badge).to_have_text("succeeded")
    await page.wait_for_timeout(1500)  # polls every second: a baseline order delivered late would show now
    assert [r.body["data"]["id"] for r in relay.receiver.by_type("order.created")] == made


async def test_another_accounts_key_finds_nothing_and_a_private_apps_account_has_no_button(
    connecting: Connecting, page: Page
) -> None:
    relay = connecting.relay
    await connecting.register()
    await relay.add_account("globex")  # a private app's account
    states = OAuthStates(relay.ctx.redis)
    issued = await states.outstanding("acme")  # the registration's link
    key = await relay.call("POST", "/v1/api-keys", {"account": "globex", "description": "ui test"}, expect=201)

    await log_in(page, relay, key["key"])
    for path in ("/ui/accounts/acme", "/ui/accounts/acme/connect"):
        response = await page.goto(relay.url + path)
        assert response is not None
        assert response.status == 404, path
        await expect(page).to_have_url(relay.url + path)  # not sent on to Brightpearl
        await expect(page.locator("h1")).to_have_text("Not found")
        await expect(page.locator("main")).to_contain_text("account 'acme' does not exist")
    assert await states.outstanding("acme") == issued  # no link was made for it

    response = await page.goto(f"{relay.url}/ui/accounts/globex")
    assert response is not None
    assert response.status == 200
    await expect(page.locator("h1")).to_contain_text("globex")
    await expect(page.locator(".facts")).to_contain_text("private app")
    await expect(page.locator("main")).not_to_contain_text(CONNECT)
    await expect(page.locator("a.button")).to_have_count(0)
    await expect(page.locator("h1 .badge")).to_have_count(0)  # no authorization to show


# plain HTTP


OAUTH = OAuthConfig("https://oauth.example.com", "relay-app", "app-secret", "dev-ref")


@pytest.fixture
async def oauth_dashboard(redis_client: Redis, clock: FakeClock) -> AsyncIterator[Dashboard]:
    async with dashboard_alone(
        redis_client, clock, public_url="https://relay.example.com", oauth_config=OAUTH
    ) as running:
        yield running


def badges(html: str) -> list[str]:
    return re.findall(r'<span class="badge [a-z]+">([^<]*)</span>', html)


def connect_links(html: str) -> list[str]:
    return re.findall(r'<a class="button primary" href="([^"]*)">' + CONNECT + "</a>", html)


async def test_the_account_page_shows_each_authorization_state_and_what_connecting_does(
    oauth_dashboard: Dashboard,
) -> None:
    dashboard = oauth_dashboard
    await dashboard.api("POST", "/v1/accounts", {"code": "initech", "auth": "oauth", "hints": False}, expect=201)
    session = await dashboard.session(TOKEN)
    assert dashboard.ctx.oauth is not None
    store = dashboard.ctx.oauth.tokens.store

    overview = await dashboard.request("GET", "/ui", session=session)
    assert '<a href="/ui/accounts/initech"><strong>initech</strong></a>' in overview.text
    assert '<a href="/ui/accounts/acme"><strong>acme</strong></a>' in overview.text
    assert "authorization required" in badges(overview.text)  # initech's Polling badge

    shown = await dashboard.request("GET", "/ui/accounts/initech", session=session)
    assert shown.status == 200
    assert badges(shown.text)[0] == "authorization required"
    assert "First connection" in shown.text
    assert "named by Brightpearl when the account is connected" in shown.text  # no base URL yet
    assert connect_links(shown.text) == ["/ui/accounts/initech/connect"]
    assert "<script" not in shown.text
    assert "script-src" not in shown.headers["Content-Security-Policy"]  # default-src 'none': no script at all

    await store.require_reauthorization("initech", "invalid_grant: the <b>token</b> was revoked")
    shown = await dashboard.request("GET", "/ui/accounts/initech", session=session)
    assert badges(shown.text)[:2] == ["reauthorization required", "reauthorization required"]  # and Polling
    assert "Authorize again" in shown.text
    assert "Brightpearl said: invalid_grant: the &lt;b&gt;token&lt;/b&gt; was revoked" in shown.text
    assert connect_links(shown.text) == ["/ui/accounts/initech/connect"]

    await store.activate("initech")
    shown = await dashboard.request("GET", "/ui/accounts/initech", session=session)
    assert badges(shown.text)[:2] == ["active", "not polled yet"]
    assert "Reconnect" in shown.text
    assert "Brightpearl said" not in shown.text

    private = await dashboard.request("GET", "/ui/accounts/acme", session=session)
    assert private.status == 200
    assert connect_links(private.text) == []
    assert CONNECT not in private.text
    assert "http://127.0.0.1:9/public-api/acme" in private.text

    for path in ("/ui/accounts/nobody", "/ui/accounts/nobody/connect", "/ui/accounts/acme%3Astatus/connect"):
        missing = await dashboard.request("GET", path, session=session)
        assert missing.status == 404, path
        assert "Not found" in missing.text
    signed_out = await dashboard.request("GET", "/ui/accounts/initech/connect")
    assert signed_out.status == 303
    assert signed_out.headers["Location"].startswith("/ui/login?next=")


async def test_the_connect_link_sends_the_browser_to_brightpearl_with_a_fresh_state(oauth_dashboard: Dashboard) -> None:
    dashboard = oauth_dashboard
    await dashboard.api("POST", "/v1/accounts", {"code": "initech", "auth": "oauth", "hints": False}, expect=201)
    session = await dashboard.session(TOKEN)
    states = OAuthStates(dashboard.ctx.redis)
    issued = await states.outstanding("initech")

    sent = []
    for _ in range(2):
        answer = await dashboard.request("GET", "/ui/accounts/initech/connect", session=session)
        assert answer.status == 303, answer.text
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == "https://oauth.example.com/authorize/initech"
        query = parse_qs(location.query)
        assert query["client_id"] == ["relay-app"]
        assert query["redirect_uri"] == ["https://relay.example.com/oauth/callback"]
        sent.append(query["state"][0])
    assert sent[0] != sent[1]
    assert all(state.startswith("initech.") for state in sent)
    assert await states.outstanding("initech") == issued + 2


async def test_a_private_apps_account_is_not_connected_from_a_link(oauth_dashboard: Dashboard) -> None:
    session = await oauth_dashboard.session(TOKEN)
    answer = await oauth_dashboard.request("GET", "/ui/accounts/acme/connect", session=session)
    assert answer.status == 409
    assert "Not connected: account acme polls with a private app&#39;s token" in answer.text
    assert "GET /v1/accounts/acme/authorize" in answer.text
    assert "<h1>acme" in answer.text  # the account's page again, not an error page
    assert await OAuthStates(oauth_dashboard.ctx.redis).outstanding("acme") == 0
    assert (await oauth_dashboard.ctx.store.get_account("acme")).auth == "account_token"


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"oauth_config": OAUTH}, "RELAY_PUBLIC_URL"),
        ({"public_url": "https://relay.example.com"}, "RELAY_BRIGHTPEARL_APP_REF"),
    ],
    ids=["no public URL", "no OAuth app"],
)
async def test_a_relay_that_cannot_connect_accounts_says_why_on_the_accounts_page(
    redis_client: Redis, clock: FakeClock, context: dict[str, Any], named: str
) -> None:
    async with dashboard_alone(redis_client, clock, **context) as dashboard:
        account = AccountRecord(
            code="initech",
            base_url="",
            app_ref="",
            auth="oauth",
            token="",
            poll_interval_s=5,
            resources=["orders"],
            created_at=clock(),
        )
        await dashboard.ctx.store.create_account(account, {}, first_poll_ms=2**50)
        session = await dashboard.session(TOKEN)
        answer = await dashboard.request("GET", "/ui/accounts/initech/connect", session=session)
    assert answer.status == 503
    assert "Not connected: this relay cannot connect accounts" in answer.text
    assert named in answer.text
    assert "Tell the relay&#39;s operator" in answer.text
    assert connect_links(answer.text) == ["/ui/accounts/initech/connect"]  # the page, its button there to try again
    assert "Traceback" not in answer.text
    assert await OAuthStates(redis_client).outstanding("initech") == 0
