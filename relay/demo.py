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

# the sandbox's whole budget is the demo's; polls as often as 200 requests a minute allow for all five resources
POLL_INTERVAL_S = 1.5
SLOWER_POLLS_S = {"stock": 3, "goods-out-notes": 4, "products": 8, "contacts": 8}


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


async def make_changes_happen(
    session: aiohttp.ClientSession, control: str, stop: asyncio.Event, rng: random.Random, products: list[int]
) -> int:
    """What a shop's back office does all day, in the sandbox: orders (some in bursts sharing one timestamp, some
    allocating stock), status changes, goods received, goods-out notes picked and shipped, products and contacts
    edited. Returns how many orders it made."""
    made: list[int] = []
    notes: list[int] = []
    contacts: list[int] = []

    async def act(method: str, path: str, body: Any = None) -> Any:
        with contextlib.suppress(RuntimeError):  # a change the sandbox refuses (say, a note already shipped)
            return await _call(session, method, f"{control}{path}", body=body)
        return None

    while not stop.is_set():
        rows = [{"product_id": rng.choice(products), "quantity": rng.randint(1, 3)}]
        created = await act("POST", "/orders", {"count": rng.choice([1, 1, 2, 3]), "rows": rows, "allocate": True})
        made += created["ids"] if created else []
        choice = rng.random()
        if choice < 0.25 and made:
            await act("PUT", f"/orders/{rng.choice(made)}/status", {"status_id": rng.choice([2, 4])})
        elif choice < 0.45:
            await act(
                "POST",
                "/stock/receive",
                {"product_id": rng.choice(products), "warehouse_id": 2, "quantity": rng.randint(5, 20)},
            )
        elif choice < 0.65 and made:
            note = await act("POST", f"/orders/{made[-1]}/goods-out-notes")
            notes += [note["id"]] if note else []
        elif choice < 0.8 and notes:
            await act(
                "POST",
                f"/goods-out-notes/{rng.choice(notes)}/stage",
                {"stage": rng.choice(["printed", "packed", "shipped"])},
            )
        elif choice < 0.9:
            await act("PATCH", f"/products/{rng.choice(products)}", {"name": f"Shirt, batch {rng.randint(1, 99)}"})
        else:
            contact = await act("POST", "/contacts", {"count": 1})
            contacts += contact["ids"] if contact else []
            if len(contacts) > 1:
                await act("PATCH", f"/contacts/{contacts[0]}", {"last_name": f"Smith-{rng.randint(1, 99)}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.6, 1.5))
    return len(made)


async def run_demo(settings: Settings, *, duration_s: float | None, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when webhooks arrived and every signature verified."""
    token = settings.token() or secrets.token_urlsafe(24)
    settings = settings.model_copy(
        update={
            "api_token": SecretStr(token),
            "allow_private_targets": True,
            "budget_share": 1.0,
            "retry_schedule_s": (1.0, 2.0, 5.0),
        }
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
            control = f"{sandbox.url}/_sandbox/accounts/acme"
            # a small catalogue that exists before the relay does: its stock is the baseline's
            catalogue = await _call(http, "POST", f"{control}/products", None, {"count": 6, "stock": {"2": 40}})
            products = list(catalogue["ids"])
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
                    "poll_intervals_s": SLOWER_POLLS_S,
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
                "making orders, stock movements, goods-out notes, product and contact changes happen in the sandbox;"
                "\neach webhook appears here as it arrives\n",
                file=out,
                flush=True,
            )
            generator_stop = asyncio.Event()
            generator = asyncio.create_task(
                make_changes_happen(http, control, generator_stop, random.Random(), products)  # noqa: S311
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
