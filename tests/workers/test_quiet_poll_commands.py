"""What a quiet poll costs Redis: the commands of one poll of an account that has not changed since the poll before,
counted by the server itself (``MONITOR``, this test's database alone), those Lua scripts run included, as
``INFO commandstats`` counts them for ``bench/accounts.py``.

A quiet poll is three round trips: it opens (the account, its plan, positions, status and dirty stock read; a claim
made a moment ago needs no renewal), reserves the requests it expects from the budget at its first search, and ends
(plan, status and unspent budget in one script). Brightpearl's clock is stepped by hand, so that what the polls read
is settled."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from subscriptions.core.models import Resource
from subscriptions.core.times import ms
from tests.harness import Harness, now
from tests.workers.test_idle_polls import ALL, Clock

MARKER = "quiet-poll-commands:end"
CONNECTING = {"SELECT", "CLIENT", "HELLO"}  # a new connection's setup, not the poll's

# what a quiet poll may cost, whatever it watches: issue 17 asks at most 5 commands a resource poll
MAX_ROUND_TRIPS = 3
MAX_COMMANDS = 18


@dataclass
class Commands:
    """The commands the server ran for one database: ``sent`` by clients, ``scripted`` by their Lua scripts."""

    sent: list[str] = field(default_factory=list)
    scripted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.sent) + len(self.scripted)

    def __str__(self) -> str:
        return f"sent {dict(Counter(self.sent))}, scripted {dict(Counter(self.scripted))}"


@contextlib.asynccontextmanager
async def commands_of(redis: Redis) -> AsyncIterator[Commands]:
    """What the server runs for ``redis``'s database until the block ends (other databases' commands, other
    tests', are left out)."""
    db = int(redis.connection_pool.connection_kwargs.get("db", 0))
    found = Commands()
    ready = asyncio.Event()

    async def watch() -> None:
        async with redis.monitor() as monitor:
            ready.set()
            while True:
                info = await monitor.next_command()
                name, *rest = info["command"].split(" ")
                if info["db"] != db or name.upper() in CONNECTING:
                    continue
                if name.upper() == "ECHO" and rest == [MARKER]:
                    return
                (found.scripted if info["client_type"] == "lua" else found.sent).append(name.upper())

    task = asyncio.create_task(watch())
    await asyncio.wait_for(ready.wait(), 5)
    try:
        yield found
    finally:
        await redis.echo(MARKER)  # the last command the monitor sees: everything before it has been counted
        await asyncio.wait_for(task, 10)


async def quiet_poll(harness: Harness, resources: Sequence[Resource]) -> Commands:
    """An account watching ``resources``, with records of each, polled until its changes have settled; then the
    commands of one more poll, in which nothing changed: it sends nothing and reads nothing but its searches, and
    its status says each resource is caught up as of now."""
    clock = Clock(harness)
    await harness.register(resources=resources)
    await harness.sandbox_call("POST", "/products", {"count": 3})
    await harness.sandbox_call("POST", "/contacts", {"count": 2})
    await harness.create_orders(2)
    for _ in range(4):
        clock.step(2)
        await harness.poll()
    clock.step(2)
    poller = harness.poller
    plan = await poller.polls.plan("acme")
    await poller.polls.save("acme", plan.model_copy(update={"due_ms": {}}), idle_ms=0, claim=None)
    (claim,) = await poller.polls.claim(now_ms=ms(now()), lease_ms=10_000, limit=1, among=["acme"])
    await harness.sandbox_call("DELETE", "/requests")
    events, before = await harness.bodies(), await harness.status()
    async with commands_of(harness.redis) as found:
        await poller.poll(claim)
    served = (await harness.sandbox_call("GET", "/requests"))["by_route"]
    assert served
    assert all("search" in route for route in served), served
    assert await harness.bodies() == events
    after = await harness.status()
    for resource in resources:
        assert after[f"{resource}:caught_up_at"] > before[f"{resource}:caught_up_at"]
    return found


@pytest.mark.parametrize("resources", [*((r,) for r in ALL), ALL], ids=[*ALL, "all"])
async def test_a_quiet_poll_costs_three_round_trips(harness: Harness, resources: Sequence[Resource]) -> None:
    found = await quiet_poll(harness, resources)
    assert len(found.sent) <= MAX_ROUND_TRIPS, found
    assert found.total <= MAX_COMMANDS, found


async def test_a_quiet_poll_of_all_five_resources_costs_at_most_five_commands_each(harness: Harness) -> None:
    found = await quiet_poll(harness, ALL)
    assert found.total / len(ALL) <= 5, found
