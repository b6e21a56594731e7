"""``relay demo``: the whole pipeline on one machine, nothing to configure.

A Brightpearl sandbox, the relay (API and worker in this process, on the embedded store unless
``RELAY_REDIS_URL`` is set) and a receiver, all on free loopback ports. The demo registers the sandbox
account and a subscription to ``*`` through the relay's own HTTP API, then makes orders happen in the sandbox,
and prints every webhook as it arrives with the reference library's verdict on its signature.
"""

import asyncio
import contextlib
import random
import secrets
import signal
import sys
import time
from typing import Any, TextIO

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from relay.receiver import Received, Receiver
from relay.sandbox.app import start_sandbox
from relay.service import bound_port, running
from relay.settings import Settings

POLL_INTERVAL_S = 1.0


class Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0
        self.bad = 0

    def __call__(self, item: Received) -> None:
        self.count += 1
        self.bad += 0 if item.verified else 1
        verdict = "signature ok" if item.verified else "BAD"
        resource = item.body.get("data", {}).get("id", "")
        print(
            f"#{self.count:<4} {item.event_type:<34} {item.webhook_id}  {verdict}   (id {resource})",
            file=self.out,
            flush=True,
        )


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None = None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        payload = await response.json(content_type=None)
        if response.status >= 400:
            raise RuntimeError(f"{method} {url} answered {response.status}: {payload}")
        return payload


async def make_orders_happen(
    session: aiohttp.ClientSession, control: str, stop: asyncio.Event, rng: random.Random
) -> int:
    """Orders in the sandbox, some in bursts sharing one timestamp, and status changes."""
    made: list[int] = []
    while not stop.is_set():
        count = rng.choice([1, 1, 2, 3, 5])
        created = await _call(
            session,
            "POST",
            f"{control}/orders",
            body={"count": count, "order_type": rng.choice(["SO", "SO", "SO", "PO", "SC"])},
        )
        made += created["ids"]
        if made and rng.random() < 0.5:
            order_id = rng.choice(made)
            with contextlib.suppress(RuntimeError):
                await _call(session, "PUT", f"{control}/orders/{order_id}/status", body={"status_id": 4})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.8, 2.0))
    return len(made)


async def run_demo(settings: Settings, *, duration_s: float | None, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when webhooks arrived and every signature verified."""
    token = settings.token() or secrets.token_urlsafe(24)
    settings = settings.model_copy(
        update={"api_token": SecretStr(token), "allow_private_targets": True, "retry_schedule_s": (1.0, 2.0, 5.0)}
    )
    printer = Printer(out)
    receiver = Receiver(on_receive=printer)
    receiver_runner = web.AppRunner(receiver.app(), access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    receiver_url = f"http://127.0.0.1:{bound_port(receiver_runner)}/webhooks"
    sandbox = await start_sandbox()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    made = 0
    started = time.monotonic()
    try:
        async with running(settings, api=True, worker=True, api_port=0) as parts, aiohttp.ClientSession() as http:
            api = parts.api_url
            account = sandbox.account("acme")
            await _call(
                http,
                "POST",
                f"{api}/v1/accounts",
                token,
                {
                    "code": "acme",
                    "base_url": sandbox.base_url("acme"),
                    "app_ref": account.app_ref,
                    "account_token": account.account_token,
                    "poll_interval_s": POLL_INTERVAL_S,
                },
            )
            sub = await _call(
                http,
                "POST",
                f"{api}/v1/subscriptions",
                token,
                {"account": "acme", "url": receiver_url, "events": ["*"], "description": "relay demo"},
            )
            receiver.secret = sub["secret"]
            print(f"relay API    {api}   (token: {token})", file=out)
            print(f"sandbox      {sandbox.base_url('acme')}   (control: {sandbox.url}/_sandbox)", file=out)
            print(f"receiver     {receiver_url}   subscribed to '*' as {sub['id']}", file=out)
            print(
                "making orders happen in the sandbox; each webhook appears here as it arrives\n", file=out, flush=True
            )
            generator_stop = asyncio.Event()
            generator = asyncio.create_task(
                make_orders_happen(http, f"{sandbox.url}/_sandbox/accounts/acme", generator_stop, random.Random())  # noqa: S311
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(duration_s - 4, 1) if duration_s else None)
            generator_stop.set()
            made = await generator
            await _settle(receiver, made, deadline_s=6.0 if not stop.is_set() else 0.5)
    finally:
        await sandbox.close()
        await receiver_runner.cleanup()
    orders = len(receiver.by_type("order.created"))
    print(
        f"\n{printer.count} webhooks in {time.monotonic() - started:.0f} s: {orders} order.created for {made} "
        f"orders made, {printer.count - printer.bad} signatures verified, {printer.bad} BAD",
        file=out,
    )
    return 0 if printer.count > 0 and printer.bad == 0 else 1


async def _settle(receiver: Receiver, orders_made: int, *, deadline_s: float) -> None:
    """Give the last orders time to arrive before the summary."""
    end = time.monotonic() + deadline_s
    while len(receiver.by_type("order.created")) < orders_made and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
