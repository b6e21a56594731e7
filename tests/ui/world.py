"""The relay (API and worker in this process) over a test's Redis, a receiver, and Debian's Chromium; and the
dashboard alone over plain HTTP, on a clock the test moves, for its sessions and logins.

Accounts, subscriptions and deliveries are made without Brightpearl: an account record that is never polled,
subscriptions through the API, events committed through the queue as a poller would. That keeps the
dashboard's tests fast; ``docs/screenshots.py`` uses the same pieces.
"""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, async_playwright
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from relay.receiver import Receiver
from relay.service import bound_port, free_loopback_port, running
from relay.settings import Settings
from subscriptions.core.envelope import resource_event
from subscriptions.core.models import DeliveryRecord, Resource
from subscriptions.store.records import Store
from tests.e2e import account_record, register_unpolled

TOKEN = "ui-admin-token-0123456789abcdefghij"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NEVER_MS = 10**13  # a first poll due in the year 2286: these accounts are never polled


@dataclass
class Relay:
    url: str
    ctx: ApiContext
    receiver: Receiver
    receiver_url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None, *, token: str = TOKEN, expect: int = 200) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            payload = await response.json(content_type=None)
            assert response.status == expect, payload
            return payload

    async def add_account(self, code: str, *, resources: tuple[Resource, ...] = ("orders",)) -> None:
        """An account record the relay never polls (its first poll is centuries away)."""
        account = account_record(code, self.ctx.clock()).model_copy(update={"resources": list(resources)})
        await self.ctx.store.create_account(account, {}, NEVER_MS)

    async def subscribe(self, account: str, url: str | None = None, description: str = "") -> dict[str, Any]:
        body = {"account": account, "url": url or self.receiver_url, "events": ["order.*"], "description": description}
        sub: dict[str, Any] = await self.call("POST", "/v1/subscriptions", body, expect=201)
        return sub

    async def commit_event(
        self, account: str, order_id: int, *, at: datetime | None = None, event_type: str = "order.created"
    ) -> list[DeliveryRecord]:
        """An event as a poller would commit it, fanned out to the account's subscriptions and sent at once."""
        now = at or self.ctx.clock()
        resource = {"id": order_id, "orderTypeCode": "SO", "reference": f"#{order_id}"}
        event = resource_event(account, event_type, order_id, resource, now.replace(microsecond=0))
        subs = await self.ctx.store.account_subscriptions(account)
        created = await self.ctx.queue.commit([event], subs, now=now)
        self.ctx.on_deliveries()
        return created

    async def wait_status(self, delivery_id: str, status: str, timeout_s: float = 10.0) -> DeliveryRecord:
        deadline = time.monotonic() + timeout_s
        while True:
            delivery = await self.ctx.store.get_delivery(delivery_id)
            if delivery.status == status:
                return delivery
            assert time.monotonic() < deadline, f"{delivery_id} is {delivery.status}, not {status}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def relay_in_process(redis_url: str | None, *, public: bool = False, **settings: Any) -> AsyncIterator[Relay]:
    """The relay's API and worker in this process, and a receiver that fails until told otherwise.

    One retry 0.2 s after the first attempt: a delivery to a failing receiver is ``failed`` within a second.
    ``public``: the API's own URL is its ``RELAY_PUBLIC_URL`` (Brightpearl sends browsers back to it), so its port
    is chosen before it starts.
    """
    api_port = 0
    if public:
        api_port = free_loopback_port()
        settings = {"public_url": f"http://127.0.0.1:{api_port}", **settings}
    receiver = Receiver(fail_next=10**9, fail_status=500)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    config = Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        host="127.0.0.1",
        allow_private_targets=True,
        retry_schedule_s=(0.2,),
        delivery_timeout_s=5,
        **settings,
    )
    try:
        async with (
            running(config, api=True, worker=True, api_port=api_port) as parts,
            aiohttp.ClientSession() as http,
        ):
            assert parts.api is not None
            assert parts.api_url is not None
            receiver_url = f"http://127.0.0.1:{bound_port(runner)}/hooks"
            yield Relay(parts.api_url, parts.api, receiver, receiver_url, http)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium under Playwright (Playwright's own browser download cannot work here)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per test, a stat call
        raise RuntimeError(f"no {CHROMIUM}: apt-get install -y chromium chromium-driver (.ci/run does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    cookies: dict[str, str]  # what the answer set (an empty value: deleted)


@dataclass
class Dashboard:
    """The API and dashboard with no worker, over plain HTTP with no cookie jar: each request names its cookie."""

    url: str
    ctx: ApiContext
    http: aiohttp.ClientSession

    async def request(
        self,
        method: str,
        path: str,
        *,
        session: str | None = None,
        cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> Answer:
        jar = dict(cookies or {})
        if session is not None:
            jar["relay_ui_session"] = session
        sent = {"Origin": self.url, **(headers or {})}
        if jar:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        async with self.http.request(
            method, self.url + path, headers=sent, data=data, allow_redirects=False
        ) as response:
            set_cookies = {name: morsel.value for name, morsel in response.cookies.items()}
            return Answer(response.status, dict(response.headers), await response.text(), set_cookies)

    async def log_in(self, token: str, *, headers: dict[str, str] | None = None, next_: str = "/ui") -> Answer:
        return await self.request("POST", "/ui/login", data={"token": token, "next": next_}, headers=headers)

    async def session(self, token: str) -> str:
        """A session opened with ``token`` (which must be good): the cookie's value."""
        answer = await self.log_in(token)
        assert answer.status == 303, answer.text
        return answer.cookies["relay_ui_session"]

    async def api(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {self.ctx.admin_token}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as response:
            payload = await response.json(content_type=None) if response.status != 204 else None
            assert response.status == expect, payload
            return payload


@contextlib.asynccontextmanager
async def dashboard_alone(redis: "Redis", clock: Callable[[], datetime], **context: Any) -> AsyncIterator[Dashboard]:
    """The API's application (dashboard included) on a loopback port, with an account ``acme`` never polled;
    ``context``: more of :class:`ApiContext`'s settings (``public_url``, ``oauth_config``...)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        ctx = ApiContext(
            redis=redis,
            admin_token=TOKEN,
            brightpearl_session=http,
            budget_per_minute=100,
            allow_private_targets=True,
            clock=clock,
            **context,
        )
        await register_unpolled(Store(redis), "acme", clock())
        runner = web.AppRunner(create_app(ctx), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield Dashboard(f"http://127.0.0.1:{bound_port(runner)}", ctx, http)
        finally:
            await runner.cleanup()
