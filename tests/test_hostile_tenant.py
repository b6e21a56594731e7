"""A hostile tenant holds everything the API lets it, and another account's webhooks still go at once.

The issue's attack, end to end against the relay's API and worker in one process (real Redis, real HTTP over
loopback): an account-scoped key makes as many subscriptions as it may, each to one of eight receivers that
never answer, each with a 300 s timeout and a concurrency cap of 1,000; it sends as many test pings as it may and
more, and its account's orders fan out to every one of those subscriptions. On the relay before the account cap,
every worker slot went to it and another account's ping waited almost five minutes.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from relay.receiver import Receiver
from relay.service import bound_port, running
from relay.settings import Settings
from subscriptions.core.envelope import NewEvent, event_body
from tests.e2e import TOKEN, register_unpolled, wait_for

HANGING_RECEIVERS = 8


@dataclass
class Hanging:
    """Receivers that accept every request and never answer."""

    ports: list[int]
    open_now: int = 0
    most_open: int = 0
    requests: int = 0


@pytest.fixture
async def hanging() -> AsyncIterator[Hanging]:
    state = Hanging([])

    async def never(request: web.Request) -> web.Response:
        state.requests += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            await asyncio.Event().wait()
        finally:
            state.open_now -= 1
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_post("/{tail:.*}", never)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    for _ in range(HANGING_RECEIVERS):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        state.ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


async def call(http: aiohttp.ClientSession, method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_another_accounts_ping_arrives_at_once_while_an_attacker_holds_all_it_may(
    redis_url: str, hanging: Hanging
) -> None:
    victim = Receiver()
    receiver_runner = web.AppRunner(victim.app(), access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    settings = Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        allow_private_targets=True,  # the receivers are on loopback; what is tested here is starvation
        _env_file=None,  # type: ignore[call-arg]
    )
    try:
        async with running(settings, api=True, worker=True, api_port=0) as parts, aiohttp.ClientSession() as http:
            assert parts.api is not None
            assert parts.runtime is not None
            api, store = parts.api_url, parts.api.store
            for code in ("evil", "good"):
                await register_unpolled(store, code)
            keys = {}
            for code in ("evil", "good"):
                status, created = await call(http, "POST", f"{api}/v1/api-keys", TOKEN, {"account": code})
                assert status == 201
                keys[code] = created["key"]

            # the attacker: every subscription it may have, each to a receiver that hangs for 300 s
            subs, refused = [], 0
            for n in range(settings.max_subscriptions_per_account + 5):
                port = hanging.ports[n % HANGING_RECEIVERS]
                body = {
                    "account": "evil",
                    "url": f"http://127.0.0.1:{port}/sink-{n}",
                    "events": ["*"],
                    "timeout_s": 300,
                    "max_concurrency": 1000,
                }
                status, created = await call(http, "POST", f"{api}/v1/subscriptions", keys["evil"], body)
                if status == 201:
                    subs.append(created["id"])
                else:
                    assert status == 429
                    refused += 1
            assert (len(subs), refused) == (settings.max_subscriptions_per_account, 5)
            pings = await asyncio.gather(
                *(call(http, "POST", f"{api}/v1/subscriptions/{sub}/test", keys["evil"]) for sub in subs)
            )
            assert sorted(status for status, _ in pings).count(202) == settings.test_pings_per_minute
            # ... and its own orders fan out to all of them (it can make orders in its Brightpearl account)
            records = [await store.get_subscription(sub) for sub in subs]
            stamp = "2026-12-03T10:00:00Z"
            events = [
                NewEvent(f"evt_evil_{n}", "order.created", "evil", n, stamp, event_body("order.created", stamp, {}))
                for n in range(30)
            ]
            await parts.runtime.queue.commit(events, records, now=datetime.now(UTC))
            parts.runtime.dispatcher.wake()
            account_cap = settings.account_in_flight()
            await wait_for(lambda: hanging.open_now >= account_cap, 20, "the attacker to hold all it may")

            # the other account's ping
            good = {"account": "good", "url": f"http://127.0.0.1:{bound_port(receiver_runner)}/h", "events": ["*"]}
            status, sub = await call(http, "POST", f"{api}/v1/subscriptions", keys["good"], good)
            assert status == 201
            victim.secret = sub["secret"]
            asked = time.monotonic()
            status, _ = await call(http, "POST", f"{api}/v1/subscriptions/{sub['id']}/test", keys["good"])
            assert status == 202
            await wait_for(lambda: len(victim.received) == 1, 10, "the other account's ping")
            waited_s = time.monotonic() - asked
            assert waited_s < 3, f"the ping took {waited_s:.1f} s"
            assert victim.received[0].verified
            assert hanging.most_open <= account_cap  # the attacker never held more than its account's share
    finally:
        await receiver_runner.cleanup()
