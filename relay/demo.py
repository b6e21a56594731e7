"""``relay demo``: the whole pipeline on one machine, nothing to configure.

A Brightpearl sandbox, the relay (API and worker in this process, on the embedded store unless
``RELAY_REDIS_URL`` is set) and a receiver, all on free loopback ports. The demo registers the sandbox
account and a subscription to ``*`` through the relay's own HTTP API, sends the subscription a test ping, then
makes a shop's back office happen in the sandbox: first an opening act that makes every kind of event happen
at least once (a product, a customer and orders appear, then change; an order's goods-out note reaches each stage,
has it undone and reaches it again, then ships; another note is edited, then deleted), then random activity.
It prints every webhook as it arrives with the reference library's verdict on its signature, and at the end how
many of each event type arrived.

With ``oauth`` (``relay demo --oauth``) the relay is the sandbox's OAuth instance app instead: the account is
registered with ``"auth": "oauth"``, connected by following its ``authorize_url`` as the admin's browser would (the
sandbox's authorize page sends it straight back to the relay's callback), and its access tokens live
:data:`ACCESS_TOKEN_LIFETIME_S`, so the run shows them refreshed; the summary adds the sandbox's OAuth counters.
"""

import asyncio
import contextlib
import html
import random
import re
import secrets
import signal
import sys
import time
from collections import Counter
from typing import Any, TextIO

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from relay.back_office import BackOffice, call
from relay.receiver import Received, Receiver
from relay.sandbox.app import DEFAULT_ACCOUNT_CODE, SandboxServer, start_sandbox
from relay.service import bound_port, free_loopback_port, running
from relay.settings import Settings
from subscriptions.core.events import EVENT_TYPES

# The sandbox's whole budget (200 requests a minute) is the demo's, and the relay plans to use 150 of them (it
# holds a quarter back). What each resource is asked to be polled at must fit in that with what polls really
# cost while things change (about 4 requests an orders poll, 2 a stock poll, 2-3 a goods-out notes poll, 3-4 a
# products or contacts poll: searches, reads, and the newest second read again), or the relay stretches the last
# resources' intervals (contacts, then products) towards one poll a minute and a short demo would not see them.
# These cost about 150 a minute, and every resource is polled at least every 7 s.
POLL_INTERVAL_S = 5.0  # orders
SLOWER_POLLS_S = {"stock": 6.0, "goods-out-notes": 6.0, "products": 7.0, "contacts": 7.0}

# every event the opening act makes happen, in the order it does
SHOWN_EVENT_TYPES = (
    "ping",
    "product.created",
    "contact.created",
    "order.created",
    "product.modified.on-hand-modified",
    "product.modified",
    "contact.modified",
    "order.modified.order-status",
    "order.modified",
    "goods-out-note.created",
    "goods-out-note.modified.printed",
    "goods-out-note.modified.picked",
    "goods-out-note.modified.packed",
    "goods-out-note.modified.un-printed",
    "goods-out-note.modified.un-picked",
    "goods-out-note.modified.un-packed",
    "goods-out-note.modified.shipped",
    "goods-out-note.modified",
    "goods-out-note.destroyed",
)
ACCOUNT = DEFAULT_ACCOUNT_CODE  # the sandbox's one account
# an OAuth account's access tokens, as the demo's sandbox issues them: short, so that a 30-second run sees the relay
# refresh them a few times (it does so a tenth of a token's life before it expires)
ACCESS_TOKEN_LIFETIME_S = 10.0
SETTLE_S = 6.0  # after the changes stop, the longest the demo waits for their webhooks
ACT_WAIT_S = 15.0  # the longest the opening act waits for new things to be seen before changing them


class Printer:
    """Prints one line per webhook as it arrives."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0
        self.bad = 0

    def __call__(self, item: Received) -> None:
        self.count += 1
        self.bad += 0 if item.verified else 1
        verdict = "signature ok" if item.verified else "BAD"
        resource = item.body.get("data", {}).get("id")
        about = "" if resource is None else f"   (id {resource})"  # a ping is about no resource
        print(
            f"#{self.count:<4} {item.event_type:<34} {item.webhook_id}  {verdict}{about}",
            file=self.out,
            flush=True,
        )


async def run_demo(
    settings: Settings, *, duration_s: float | None, out: TextIO = sys.stdout, oauth: bool = False
) -> int:
    """Run the demo (``oauth``: connected as the sandbox's OAuth app); 0 when webhooks arrived and every signature
    verified."""
    token = settings.token() or secrets.token_urlsafe(24)
    settings = _demo_settings(settings, token)
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
    api_port = free_loopback_port()  # known before the API starts: it is where the sandbox sends its hints
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{api_port}"})
    if oauth:
        settings = _oauth_app_settings(settings, sandbox)
    hints: dict[str, Any] = {}
    oauth_counters: dict[str, Any] | None = None
    try:
        async with (
            running(settings, api=True, worker=True, api_port=api_port) as parts,
            aiohttp.ClientSession() as http,
        ):
            relay = RelayApi(http, str(parts.api_url), token)
            control = f"{sandbox.control_url}/accounts/{ACCOUNT}"
            # a small catalogue that exists before the relay does: its stock is the baseline's
            catalogue = await call(http, "POST", f"{control}/products", None, {"count": 6, "stock": {"2": 40}})
            if oauth:  # before the authorization: a token lives as long as the server said when it issued it
                await call(
                    http, "PATCH", f"{control}/oauth", None, {"access_token_lifetime_s": ACCESS_TOKEN_LIFETIME_S}
                )
            authorize_url = await relay.register(sandbox, oauth=oauth)
            subscription_id, receiver.secret = await relay.subscribe(receiver_url)
            _addresses(out, relay, sandbox, receiver_url, subscription_id)
            if authorize_url is not None:
                await _connect(out, relay, authorize_url)
            hints = (await relay.call("GET", f"/v1/accounts/{ACCOUNT}"))["status"]["hints"]
            _introduce(out, relay, hints)
            await relay.call("POST", f"/v1/subscriptions/{subscription_id}/test")
            office = BackOffice(http, control, random.Random(), list(catalogue["ids"]))  # noqa: S311
            made = await _show(office, receiver, stop, duration_s)
            hints = (await relay.call("GET", f"/v1/accounts/{ACCOUNT}"))["status"]["hints"]
            if oauth:
                oauth_counters = (await call(http, "GET", f"{control}/oauth"))["counters"]
    finally:
        await sandbox.close()
        await receiver_runner.cleanup()
    print(summary(receiver.received, elapsed_s=time.monotonic() - started, orders_made=made), file=out)
    _closing(out, hints, oauth_counters)
    return 0 if printer.count > 0 and printer.bad == 0 else 1


def _closing(out: TextIO, hints: dict[str, Any], oauth_counters: dict[str, Any] | None) -> None:
    """The lines after the summary: the hints' state and what was spent on them, and an OAuth run's counters."""
    if hints:
        spent = hints["requests_last_minute"]
        print(
            f"hints: {hints['state']}; Brightpearl requests in the last minute: {spent['hints']} on hints, "
            f"{spent['polls']} on polls",
            file=out,
        )
    if oauth_counters is not None:
        print(oauth_summary(oauth_counters, access_token_lifetime_s=ACCESS_TOKEN_LIFETIME_S), file=out)


def _demo_settings(settings: Settings, token: str) -> Settings:
    """``settings`` as the demo runs them: its token, loopback receivers allowed, the account's whole budget
    and retries seconds apart."""
    return settings.model_copy(
        update={
            "api_token": SecretStr(token),
            "allow_private_targets": True,
            "budget_share": 1.0,
            "retry_schedule_s": (1.0, 2.0, 5.0),
        }
    )


def _oauth_app_settings(settings: Settings, sandbox: SandboxServer) -> Settings:
    """``settings`` with the sandbox account's OAuth app as the relay's (whatever the environment says), and the
    whole of that app's own budget."""
    app = sandbox.account(ACCOUNT).oauth.app
    return settings.model_copy(
        update={
            "brightpearl_oauth_url": sandbox.oauth_url,
            "brightpearl_app_ref": app.client_id,
            "brightpearl_client_secret": SecretStr(app.client_secret),
            "brightpearl_dev_ref": app.dev_ref,
            "oauth_budget_share": 1.0,
        }
    )


class RelayApi:
    """The relay's HTTP API at ``url``, as the demo uses it with ``token``."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.token = token

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await call(self.http, method, f"{self.url}{path}", self.token, body)

    async def register(self, sandbox: SandboxServer, *, oauth: bool) -> str | None:
        """Register the sandbox account: with its private app's token, or (``oauth``) as one to connect through
        the relay's OAuth app, whose ``authorize_url`` is returned."""
        account = sandbox.account(ACCOUNT)
        credentials = (
            {"auth": "oauth"} if oauth else {"app_ref": account.app_ref, "account_token": account.account_token}
        )
        created = await self.call(
            "POST",
            "/v1/accounts",
            {
                "code": ACCOUNT,
                "base_url": sandbox.base_url(ACCOUNT),
                **credentials,
                "poll_interval_s": POLL_INTERVAL_S,
                "poll_intervals_s": SLOWER_POLLS_S,
            },
        )
        return str(created["authorize_url"]) if oauth else None

    async def subscribe(self, receiver_url: str) -> tuple[str, str]:
        """Subscribe ``receiver_url`` to every event of the account: the subscription's id and signing secret."""
        body = {"account": ACCOUNT, "url": receiver_url, "events": ["*"], "description": "relay demo"}
        subscription = await self.call("POST", "/v1/subscriptions", body)
        return str(subscription["id"]), str(subscription["secret"])


async def _connect(out: TextIO, relay: RelayApi, authorize_url: str) -> None:
    """Follow ``authorize_url`` as the account admin's browser would (Brightpearl's page, then its redirect to the
    relay's callback) and print what the callback page said; a RuntimeError when it did not connect."""
    print(f"authorize    {authorize_url}", file=out, flush=True)
    async with relay.http.get(authorize_url, allow_redirects=True) as page:
        title, message = callback_outcome(await page.text())
        status = page.status
    if status != 200:
        raise RuntimeError(f"connecting {ACCOUNT} through its authorize URL failed: {status} {title}: {message}")
    state = (await relay.call("GET", f"/v1/accounts/{ACCOUNT}"))["status"]["auth_state"]
    print(
        f"callback     {status} {title}: account {ACCOUNT} connected (auth_state {state}); access tokens live "
        f"{ACCESS_TOKEN_LIFETIME_S:g} s, refreshed as they run out",
        file=out,
        flush=True,
    )


def callback_outcome(page: str) -> tuple[str, str]:
    """The callback page's title and its message, as plain text."""

    def text_of(pattern: str) -> str:
        found = re.search(pattern, page, re.DOTALL)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found[1])).split()) if found else ""

    return text_of(r"<h1>(.*?)</h1>"), text_of(r'<p class="alert[^"]*"[^>]*>(.*?)</p>')


def oauth_summary(counters: dict[str, Any], *, access_token_lifetime_s: float) -> str:
    """The closing line of an OAuth run, from the sandbox's OAuth counters: how the account got its tokens, how
    often they were refreshed, and the API's 401s."""
    issued = counters["tokens_issued"]
    refused = counters["unauthorized"]
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(refused.items()))
    errors = ", ".join(f"{n} {error}" for error, n in sorted(counters["token_errors"].items()))
    refreshes = counters["refreshes"]
    return (
        f"oauth: {issued.get('authorization_code', 0)} authorization code exchanged, {refreshes} "
        f"{'refresh' if refreshes == 1 else 'refreshes'} (access tokens live {access_token_lifetime_s:g} s), "
        f"401s: {sum(refused.values())}"
        f"{f' ({reasons})' if reasons else ''}, token errors: {errors or 'none'}; "
        f"{counters['api_requests']} API requests with a Bearer token"
    )


def _addresses(out: TextIO, relay: RelayApi, sandbox: SandboxServer, receiver_url: str, subscription_id: str) -> None:
    """The opening lines: where each part listens."""
    print(f"relay API    {relay.url}   (token: {relay.token})", file=out)
    print(f"sandbox      {sandbox.base_url(ACCOUNT)}   (control: {sandbox.control_url})", file=out)
    print(f"receiver     {receiver_url}   subscribed to '*' as {subscription_id}", file=out, flush=True)


def _introduce(out: TextIO, relay: RelayApi, hints: dict[str, Any]) -> None:
    """The hints the relay subscribed, and what is about to happen."""
    print(
        f"hints        the sandbox's webhooks to {relay.url}/hooks/brightpearl/{ACCOUNT}/…: "
        f"subscribed {', '.join(hints.get('subscribed') or []) or 'none'}; "
        f"refused {', '.join(hints.get('refused') or []) or 'none'} (polled as asked)",
        file=out,
    )
    print(
        "a test ping first; then a product, a customer and orders appear and change, a goods-out note goes\n"
        "through its stages back and forth to shipped, another is edited and deleted (every kind of event);\n"
        "then random back-office activity. Each webhook appears here as it arrives\n",
        file=out,
        flush=True,
    )


async def _show(office: BackOffice, receiver: Receiver, stop: asyncio.Event, duration_s: float | None) -> int:
    """The back office at work until ``stop`` (or a few seconds before ``duration_s`` runs out), then a wait for
    the webhooks still to come; how many orders it made."""
    generator_stop = asyncio.Event()

    async def seen(event_type: str, count: int) -> None:
        await _arrived(receiver, generator_stop, {event_type: count}, deadline_s=ACT_WAIT_S)

    generator = asyncio.create_task(office.run(generator_stop, seen))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(duration_s - 4, 1) if duration_s else None)
    generator_stop.set()
    made = await generator
    wanted = dict.fromkeys(SHOWN_EVENT_TYPES, 1) | {"order.created": made}
    await _arrived(receiver, stop, wanted, deadline_s=SETTLE_S if not stop.is_set() else 0.5)
    return made


async def _arrived(receiver: Receiver, stop: asyncio.Event, wanted: dict[str, int], *, deadline_s: float) -> None:
    """Wait until the receiver has at least ``wanted[type]`` webhooks of each type, ``stop`` is set, or the
    deadline passes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not stop.is_set():
        counts = receiver.counts()
        if all(counts[event_type] >= n for event_type, n in wanted.items()):
            return
        await asyncio.sleep(0.1)


def summary(received: list[Received], *, elapsed_s: float, orders_made: int) -> str:
    """The closing lines: webhooks and signature verdicts, then how many webhooks of each event type arrived
    (every event the relay sends, those that did not arrive with 0)."""
    counts = Counter(item.event_type for item in received)
    verified = sum(1 for item in received if item.verified)
    lines = [
        "",
        f"summary: {len(received)} webhooks in {elapsed_s:.0f} s, {verified} signatures verified, "
        f"{len(received) - verified} BAD",
        f"  {'event type':<36}{'webhooks':>8}",
    ]
    for event_type in [*EVENT_TYPES, *sorted(set(counts) - set(EVENT_TYPES))]:
        note = f"   ({orders_made} orders made)" if event_type == "order.created" else ""
        lines.append(f"  {event_type:<36}{counts[event_type]:>8}{note}")
    return "\n".join(lines)
