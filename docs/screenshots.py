"""Pictures of the dashboard for the README: ``make screenshots`` (``python -m docs.screenshots``).

Runs the relay on the embedded store (no Redis needed) with the Brightpearl sandbox, two accounts that it
really polls, four subscriptions (one healthy receiver, one that fails now and then, one that is down, one
more account's), and a day of history: events committed through the queue at times spread over the last 24
hours, as a poller would have. Then Debian's Chromium, logged in as the admin, writes ``docs/img/*.png``.
"""

import asyncio
import json
import math
import random
import sys
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import SandboxServer, start_sandbox
from relay.service import bound_port
from subscriptions.core.models import DeliveryStatus
from tests.ui.world import TOKEN, Relay, chromium, relay_in_process

OUT = Path(__file__).parent / "img"
VIEWPORT = {"width": 1280, "height": 860}


async def receiver(fail_every: int) -> tuple[web.AppRunner, str]:
    """A receiver answering 200, except a 503 with a JSON error for every ``fail_every``-th order."""

    async def answer(request: web.Request) -> web.Response:
        order = json.loads(await request.read())["data"]["id"]
        if fail_every and order % fail_every == 0:
            problem = {"error": "warehouse API unavailable", "detail": "upstream timed out after 10 s", "order": order}
            return web.json_response(problem, status=503)
        return web.json_response({"received": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{bound_port(runner)}"


async def register(relay: Relay, sandbox: SandboxServer, code: str) -> None:
    account = sandbox.account(code)
    body = {
        "code": code,
        "base_url": sandbox.base_url(code),
        "app_ref": account.app_ref,
        "account_token": account.account_token,
        "poll_interval_s": 5,
    }
    await relay.call("POST", "/v1/accounts", body, expect=201)


async def history(relay: Relay, rng: random.Random) -> None:
    """A day of orders: busier in working hours, a few an hour at night; the latest hour is under way."""
    now = relay.ctx.clock()
    order = 4100
    for hours_ago in range(23, -1, -1):
        hour = (now - timedelta(hours=hours_ago)).hour
        busy = max(0.0, math.sin((hour - 6) / 12 * math.pi))
        for account, scale in (("acme", 14), ("globex", 5)):
            for _ in range(int(2 + scale * busy + rng.random() * 3)):
                order += 1
                minutes = rng.uniform(0, 59 if hours_ago else max(now.minute - 1, 1))
                at = now.replace(minute=0, second=0) - timedelta(hours=hours_ago) + timedelta(minutes=minutes)
                event_type = "order.created" if rng.random() < 0.7 else "order.modified.order-status"
                await relay.commit_event(account, order, at=at, event_type=event_type)


async def subscribe(relay: Relay, healthy_url: str, flaky_url: str) -> None:
    """The four subscriptions: an ERP and a warehouse on acme (the warehouse's receiver fails now and then), an
    analytics pipeline and a legacy CRM that is down on globex."""
    subscriptions = [
        {
            "account": "acme",
            "url": f"{healthy_url}/erp/orders",
            "events": ["order.*"],
            "description": "ERP order import",
        },
        {
            "account": "acme",
            "url": f"{flaky_url}/warehouse/hooks",
            "events": ["order.created"],
            "description": "Warehouse picking",
            "retry_schedule_s": [0.3],
        },
        {
            "account": "globex",
            "url": f"{healthy_url}/analytics/ingest",
            "events": ["*"],
            "description": "Analytics pipeline",
        },
        {
            "account": "globex",
            "url": "http://127.0.0.1:9/legacy/webhook",
            "events": ["order.modified.*"],
            "description": "Legacy CRM (being retired)",
            "retry_schedule_s": [0.3, 3600],
        },
    ]
    for body in subscriptions:
        await relay.call("POST", "/v1/subscriptions", body, expect=201)


async def photograph(relay: Relay, failed_delivery_id: str | None) -> None:
    """Log in to the dashboard as the admin and take the pictures: the overview, the deliveries, and one failed
    delivery opened (when there is one)."""
    async with chromium() as browser:
        context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=2)
        page = await context.new_page()
        await page.goto(f"{relay.url}/ui/login")
        await page.fill("#token", TOKEN)
        await page.click("button:has-text('Log in')")
        await page.wait_for_url(f"{relay.url}/ui")
        await page.screenshot(path=OUT / "overview.png", full_page=True)
        await page.goto(f"{relay.url}/ui/deliveries")
        await page.screenshot(path=OUT / "deliveries.png")
        if failed_delivery_id is not None:
            await page.goto(f"{relay.url}/ui/deliveries/{failed_delivery_id}")
            await page.click("summary")
            await page.screenshot(path=OUT / "delivery.png", full_page=True)
        await context.close()


async def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)  # noqa: S311 - made-up traffic, the same every run
    sandbox = await start_sandbox(accounts=[SandboxAccount("acme"), SandboxAccount("globex")])
    healthy, healthy_url = await receiver(fail_every=0)
    flaky, flaky_url = await receiver(fail_every=9)
    try:
        async with relay_in_process(None, budget_share=1.0) as relay:
            for code in ("acme", "globex"):
                await register(relay, sandbox, code)
            await subscribe(relay, healthy_url, flaky_url)
            await history(relay, rng)
            await asyncio.sleep(4)  # every delivery attempted, every account polled
            failed = await relay.ctx.store.list_deliveries(limit=1, cursor=None, status=DeliveryStatus.failed)
            await photograph(relay, failed.items[0].id if failed.items else None)
    finally:
        await healthy.cleanup()
        await flaky.cleanup()
        await sandbox.close()
    for name in ("overview", "deliveries", "delivery"):
        print(OUT / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
