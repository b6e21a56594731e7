"""Fixtures of the dashboard's tests: the relay in this process, the dashboard alone, and a Chromium page."""

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page
from redis.asyncio import Redis

from tests.conftest import FakeClock
from tests.ui.world import Dashboard, Relay, chromium, dashboard_alone, relay_in_process


@pytest.fixture
async def relay(redis_url: str) -> AsyncIterator[Relay]:
    async with relay_in_process(redis_url) as running:
        yield running


@pytest.fixture
async def dashboard(redis_client: Redis, clock: FakeClock) -> AsyncIterator[Dashboard]:
    async with dashboard_alone(redis_client, clock) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    # JavaScript off: the dashboard must work without it (Playwright's own locators still run)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()
