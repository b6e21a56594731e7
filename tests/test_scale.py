"""Horizontal scale: three ``relay worker`` and two ``relay api`` processes over one Redis.

Six sandbox accounts are registered, and subscribed to, through the two API processes in turn; each asks for
its orders to be polled every second (the request budget stretches that to about 1.5 s). Every account has a
steady subscriber; every other account also a flaky one that answers 500 to the first attempt of every webhook
(retry schedule 1,1,1 s). For 15 s orders are created and their statuses changed in every account (an order's
status changes again only once its last change has arrived, and in a later second: see ``make_changes``). Then:

(a) Every change arrived, each exactly once at each subscriber under one webhook-id, the same id at both
    subscribers of an account, every signature verified by the Standard Webhooks reference library.

(b) One poller per account at a time. The relay sends Brightpearl no worker identity, so the sandbox works out
    who sent each request: the process owning the client socket of the request's connection (Linux /proc).
    Each account's requests, in the order they started, are cut into polls at each poll's first request (the
    orders search in ``createdOn`` order). Proven: every poll's requests came from one worker; no request of one
    worker was in flight while another's was; the API processes called Brightpearl only before the account's
    first poll (registration); the cuts match the polls each worker counted (``relay_polls_total``). A second
    worker polling an account during another's poll would put a request inside that poll, so this catches it
    unless the two polls' Brightpearl traffic did not overlap at all. Beside it, the poll lock
    ``relay:lock:poll:{code}`` is sampled every few ms: no sample taken within a poll's requests found the lock
    free, and no lock token was seen within the polls of two workers. Not observable here: the Redis-only parts
    of a poll (before its first request and after its last); the lock token fences those writes.

(c) Every delivery was attempted once per scheduled attempt: for every delivery, its ``attempt_count``, its list
    of attempts and the POSTs its subscriber saw for its webhook-id agree; steady deliveries took one attempt
    ([204]), flaky ones two ([500, 204]), the second no sooner than the retry delay less its 20 % jitter; and
    the attempts recorded, the POSTs received and the attempts the workers counted are the same number.

(d) The work was shared: every worker made polls and delivery attempts (its ``/metrics``), and each at least a tenth
    of the polls. The distribution is printed (``pytest -s``).
"""

import asyncio
import itertools
import random
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from relay.receiver import Received, Receiver
from relay.sandbox.account import SandboxAccount
from relay.sandbox.app import SandboxServer, create_sandbox_app
from relay.sandbox.throttle import RollingWindowThrottle
from subscriptions.store import keyspace
from tests.e2e import Process, Relay, free_port, relay_processes, wait_for

PROC_NET = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(not PROC_NET[0].exists(), reason="finding who sent a request needs Linux's /proc"),
]

ACCOUNTS = [f"shop{n}" for n in range(6)]
FLAKY_ACCOUNTS = set(ACCOUNTS[::2])
WORKERS = 3
STREAM_S = 15.0
TICK_S = 0.5
STATUS_CYCLE = (4, 5, 2, 3)  # sales-order statuses a change moves through (a new sales order has 3)
RETRY_DELAY_S = 1.0
RETRY_JITTER = 0.2  # the relay's retry delays vary by +-20 %
LOCK_SAMPLE_S = 0.003
# Accounts registered at once come due at once, and one worker's arq loop tends to take every poll of the batch;
# spaced out, the workers compete for each account's polls apart.
REGISTRATION_SPACING_S = 0.25

EventKey = tuple[str, int, int | None, int | None]  # event type, order id; after a status change: status, version


# --- who sent each Brightpearl request ---------------------------------------------------------------------


class Senders:
    """Names the process that sent a request to a server of this process: the owner of the client end of the
    request's TCP connection, found in /proc (the kernel's socket table, then each process's descriptors)."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}  # pid -> name
        self._by_connection: dict[tuple[int, int], str] = {}

    def of(self, request: web.Request) -> str:
        transport = request.transport
        assert transport is not None
        client_port = int(transport.get_extra_info("peername")[1])
        key = (id(transport), client_port)  # one lookup per connection: its client end never changes hands
        if key not in self._by_connection:
            self._by_connection[key] = self._owner(client_port, int(transport.get_extra_info("sockname")[1]))
        return self._by_connection[key]

    def _owner(self, client_port: int, server_port: int) -> str:
        inodes = {
            fields[9]
            for table in PROC_NET
            if table.exists()
            for fields in (line.split() for line in table.read_text().splitlines()[1:])
            if int(fields[1].rsplit(":", 1)[1], 16) == client_port
            and int(fields[2].rsplit(":", 1)[1], 16) == server_port
        }
        links = {f"socket:[{inode}]" for inode in inodes}
        for pid, name in self.names.items():
            with suppress(OSError):  # the process or one of its descriptors went away meanwhile
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with suppress(OSError):
                        if str(fd.readlink()) in links:
                            return name
        return "?"


@dataclass(frozen=True)
class BrightpearlCall:
    """One request the sandbox answered, and who sent it."""

    account: str
    sender: str  # "worker-0", "api-1", ...; "?" when no known process owned the connection
    path: str
    starts_poll: bool  # an orders poll's first request: the search in createdOn order
    started: float  # time.monotonic(), in the test process
    ended: float


@dataclass
class Poll:
    """An account's requests from one ``starts_poll`` request to the next."""

    account: str
    sender: str
    calls: list[BrightpearlCall]

    @property
    def started(self) -> float:
        return self.calls[0].started

    @property
    def ended(self) -> float:
        return max(call.ended for call in self.calls)


def tracing(calls: list[BrightpearlCall], senders: Senders) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A sandbox middleware appending every Brightpearl request to ``calls``."""

    @web.middleware
    async def trace(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if "account" not in request.match_info:  # the control API
            return await handler(request)
        sender, started = senders.of(request), time.monotonic()
        try:
            return await handler(request)
        finally:
            path = request.match_info.get("path", "")
            starts_poll = path == "order-service/order-search" and request.query.get("sort") == "createdOn.ASC"
            calls.append(
                BrightpearlCall(request.match_info["account"], sender, path, starts_poll, started, time.monotonic())
            )

    return trace


def polls_of(calls: Iterable[BrightpearlCall]) -> tuple[list[Poll], list[str]]:
    """Each account's worker requests cut into polls, and every sign of two pollers at once (or of the API
    polling): a poll with another process's request in it, requests of two processes in flight together, an API
    request after the account's first poll."""
    by_account: dict[str, list[BrightpearlCall]] = defaultdict(list)
    for call in calls:
        by_account[call.account].append(call)
    polls: list[Poll] = []
    problems: list[str] = []
    for account, account_calls in sorted(by_account.items()):
        ordered = sorted(account_calls, key=lambda c: c.started)
        ends: dict[str, float] = {}  # sender -> end of its latest request so far
        for call in ordered:
            busy = [s for s, end in ends.items() if s != call.sender and end > call.started]
            if busy:
                problems.append(f"{account}: {call.sender} sent {call.path} while {busy} had a request in flight")
            ends[call.sender] = max(ends.get(call.sender, 0.0), call.ended)
        worker_calls = [c for c in ordered if c.sender.startswith("worker")]
        first_poll = worker_calls[0].started if worker_calls else float("inf")
        problems += [
            f"{account}: {c.sender} sent {c.path} after the first poll"
            for c in ordered
            if c.sender.startswith("api") and c.started >= first_poll
        ]
        problems += [f"{account}: a request from an unknown process: {c.path}" for c in ordered if c.sender == "?"]
        for call in worker_calls:
            if call.starts_poll or not polls or polls[-1].account != account:
                polls.append(Poll(account, call.sender, [call]))
                if not call.starts_poll:
                    problems.append(
                        f"{account}: the first poll began with {call.path}, not the search in createdOn order"
                    )
            else:
                polls[-1].calls.append(call)
                if call.sender != polls[-1].sender:
                    problems.append(f"{account}: {call.sender} sent {call.path} inside a poll of {polls[-1].sender}")
    return polls, problems


@dataclass
class LockSamples:
    """The poll locks of every account read together, every few ms: (sent, answered, holder token by account)."""

    samples: list[tuple[float, float, dict[str, str | None]]] = field(default_factory=list)

    async def run(self, redis: Redis) -> None:
        names = [keyspace.poll_owner(code) for code in ACCOUNTS]
        while True:
            sent = time.monotonic()
            values = await redis.mget(names)
            self.samples.append((sent, time.monotonic(), dict(zip(ACCOUNTS, values, strict=True))))
            await asyncio.sleep(LOCK_SAMPLE_S)

    def check(self, polls: list[Poll]) -> tuple[int, list[str]]:
        """How many polls a sample fell within, and the problems: a sample within a poll finding the lock free,
        a lock token seen within the polls of two workers."""
        holders: dict[str, set[str]] = defaultdict(set)
        problems: list[str] = []
        covered = 0
        starts = [sample[0] for sample in self.samples]
        for poll in polls:
            inside = []  # samples sent and answered within the poll's requests: the lock must be held throughout
            for sample in self.samples[bisect_left(starts, poll.started) :]:
                if sample[0] > poll.ended:
                    break
                if sample[1] <= poll.ended:
                    inside.append(sample)
            covered += bool(inside)
            for _, _, tokens in inside:
                token = tokens[poll.account]
                if token is None:
                    problems.append(f"{poll.account}: the lock was free during a poll of {poll.sender}")
                else:
                    holders[token].add(poll.sender)
        problems += [f"lock token {t} seen in polls of {sorted(s)}" for t, s in holders.items() if len(s) > 1]
        return covered, problems


# --- the subscribers -----------------------------------------------------------------------------------------


@dataclass
class Subscribers:
    """One Receiver per subscription at ``/hooks/{name}``. Every POST is counted by webhook-id before anything
    else; a flaky subscriber answers 500 to the first attempt of every webhook."""

    receivers: dict[str, Receiver] = field(default_factory=dict)
    flaky: set[str] = field(default_factory=set)
    posts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    arrived: dict[str, set[EventKey]] = field(default_factory=lambda: defaultdict(set))  # by subscriber

    def add(self, name: str, secret: str, *, flaky: bool) -> None:
        receiver = Receiver(secret=secret)
        receiver.on_receive = lambda received: self.arrived[name].add(event_key(received))
        self.receivers[name] = receiver
        if flaky:
            self.flaky.add(name)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        webhook_id = request.headers.get("webhook-id", "")
        self.posts[name][webhook_id] += 1
        if name in self.flaky and self.posts[name][webhook_id] == 1:
            return web.Response(status=500, text="fails every first attempt")
        return await self.receivers[name].handle(request)


def event_key(received: Received) -> EventKey:
    data = received.body["data"]
    if received.event_type == "order.modified.order-status":
        after = int(data["changes"]["orderStatus"]["after"]["orderStatusId"])
        return received.event_type, int(data["id"]), after, int(data["resource"]["version"])
    return received.event_type, int(data["id"]), None, None


# --- the world ---------------------------------------------------------------------------------------------


@dataclass
class Scale:
    """The traced sandbox, its request trace, and the subscribers the relay delivers to."""

    sandbox: SandboxServer
    calls: list[BrightpearlCall]
    senders: Senders
    subscribers: Subscribers
    hooks_url: str
    http: aiohttp.ClientSession

    async def control(self, method: str, path: str, body: Any) -> Any:
        async with self.http.request(method, f"{self.sandbox.control_url}/accounts/{path}", json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    def account_body(self, code: str) -> dict[str, Any]:
        account = self.sandbox.account(code)
        return {
            "code": code,
            "base_url": self.sandbox.base_url(code),
            "app_ref": account.app_ref,
            "account_token": account.account_token,
            "poll_interval_s": 1,
            "resources": ["orders"],
        }


@asynccontextmanager
async def scale_world() -> AsyncIterator[Scale]:
    """A traced sandbox (no throttling: the relay's own budget is what is tested elsewhere) and the subscribers."""
    calls: list[BrightpearlCall] = []
    senders = Senders()
    app = create_sandbox_app([SandboxAccount(code, throttle=RollingWindowThrottle(limit=10**6)) for code in ACCOUNTS])
    app.middlewares.append(tracing(calls, senders))
    sandbox_runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    subscribers = Subscribers()
    hooks = web.Application()
    hooks.router.add_post("/hooks/{name}", subscribers.handle)
    hooks_runner = web.AppRunner(hooks, access_log=None)
    try:
        await sandbox_runner.setup()
        await web.TCPSite(sandbox_runner, "127.0.0.1", 0).start()
        await hooks_runner.setup()
        hooks_port = free_port()
        await web.TCPSite(hooks_runner, "127.0.0.1", hooks_port).start()
        sandbox = SandboxServer(sandbox_runner, f"http://127.0.0.1:{sandbox_runner.addresses[0][1]}")
        async with aiohttp.ClientSession() as http:
            yield Scale(sandbox, calls, senders, subscribers, f"http://127.0.0.1:{hooks_port}/hooks", http)
    finally:
        await hooks_runner.cleanup()
        await sandbox_runner.cleanup()


async def make_changes(world: Scale, rng: random.Random) -> dict[str, Counter[EventKey]]:
    """Orders made and statuses changed in every account for ``STREAM_S``; the events each account must send.

    A sales order's status changes again only once its last change has arrived, so the relay saw each state (a
    poller sees the state at each poll: two changes between polls are one change from its point of view). The
    next change may come within the same second, when Brightpearl's ``updatedOn`` does not move."""
    expected: dict[str, Counter[EventKey]] = {code: Counter() for code in ACCOUNTS}
    last_change: dict[str, dict[int, tuple[EventKey, datetime]]] = {code: {} for code in ACCOUNTS}  # and its stamp
    deadline = time.monotonic() + STREAM_S
    while time.monotonic() < deadline:
        for code in ACCOUNTS:
            order_type = rng.choice(["SO", "SO", "PO"])
            made = await world.control(
                "POST", f"{code}/orders", {"count": rng.choice([1, 1, 2]), "order_type": order_type}
            )
            for order_id in made["ids"]:
                expected[code][("order.created", order_id, None, None)] += 1
                if order_type == "SO":
                    stamp = datetime.fromisoformat(made["created_on"])
                    last_change[code][order_id] = (("order.created", order_id, None, None), stamp)
            arrived = world.subscribers.arrived[f"{code}-steady"]
            ready = [i for i, (key, _) in last_change[code].items() if key in arrived]
            for order_id in rng.sample(ready, min(2, len(ready))):
                status = last_change[code][order_id][0][2] or 3
                after = STATUS_CYCLE[(STATUS_CYCLE.index(status) + 1) % len(STATUS_CYCLE)]
                changed = await world.control("PUT", f"{code}/orders/{order_id}/status", {"status_id": after})
                key = ("order.modified.order-status", order_id, after, changed["version"])
                last_change[code][order_id] = (key, datetime.fromisoformat(changed["updated_on"]))
                expected[code][key] += 1
        await asyncio.sleep(TICK_S)
    return expected


# --- reading the relay -------------------------------------------------------------------------------------


async def worker_counts(http: aiohttp.ClientSession, worker: Process) -> tuple[float, float]:
    """(orders polls, delivery attempts) a worker counted, from its /metrics."""
    async with http.get(f"{worker.url}/metrics") as response:
        text = await response.text()
    polls = attempts = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "relay_polls_total" and sample.labels.get("resource") == "orders":
                polls += sample.value
            elif sample.name == "relay_delivery_attempts_total":
                attempts += sample.value
    return polls, attempts


async def all_deliveries(relay: Relay, api: Callable[[], str], sub_id: str) -> list[dict[str, Any]]:
    """Every delivery of a subscription, each with its attempts."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"subscription": sub_id, "limit": "1000"} | ({"cursor": cursor} if cursor else {})
        page = await relay.call("GET", f"/v1/deliveries?{urlencode(query)}", expect=200, api_url=api())
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    gate = asyncio.Semaphore(16)

    async def detail(summary: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            view = await relay.call("GET", f"/v1/deliveries/{summary['id']}", expect=200, api_url=api())
            return {**view, "listed_attempt_count": summary["attempt_count"]}

    return list(await asyncio.gather(*(detail(item) for item in items)))


async def backlog_empty(relay: Relay) -> bool:
    for status in ("pending", "retrying"):
        if (await relay.call("GET", f"/v1/deliveries?status={status}&limit=1", expect=200))["items"]:
            return False
    return True


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def start_processes(relay: Relay, senders: Senders) -> tuple[list[Process], list[Process]]:
    """Two API processes and the workers, started together; each named for :class:`Senders`."""
    async with asyncio.TaskGroup() as group:  # one failing to start cancels the others
        apis = [group.create_task(relay.start("api")), group.create_task(relay.start("api", free_port()))]
        workers = [group.create_task(relay.start("worker")) for _ in range(WORKERS)]
    for prefix, tasks in (("api", apis), ("worker", workers)):
        for n, task in enumerate(tasks):
            senders.names[task.result().proc.pid] = f"{prefix}-{n}"
    return [t.result() for t in apis], [t.result() for t in workers]


async def register(relay: Relay, world: Scale, api: Callable[[], str]) -> dict[str, str]:
    """Every account and its subscriptions, each call through the next API process; subscription ids by name."""
    sub_ids: dict[str, str] = {}
    for code in ACCOUNTS:
        await relay.call("POST", "/v1/accounts", world.account_body(code), expect=201, api_url=api())
        for kind in ("steady", "flaky") if code in FLAKY_ACCOUNTS else ("steady",):
            name = f"{code}-{kind}"
            body = {"account": code, "url": f"{world.hooks_url}/{name}", "events": ["order.*"]}
            sub = await relay.call("POST", "/v1/subscriptions", body, expect=201, api_url=api())
            world.subscribers.add(name, sub["secret"], flaky=kind == "flaky")
            sub_ids[name] = sub["id"]
        await asyncio.sleep(REGISTRATION_SPACING_S)
    return sub_ids


async def wait_for_every_change(relay: Relay, world: Scale, expected: dict[str, Counter[EventKey]]) -> None:
    """Until every change has arrived at every subscriber; on timeout, what is missing and what the relay has."""
    arrived = world.subscribers.arrived

    def missing() -> dict[str, list[EventKey]]:
        wanted = {name: set(expected[account_of(name)]) for name in world.subscribers.receivers}
        return {name: sorted(keys - arrived[name], key=str) for name, keys in wanted.items() if keys - arrived[name]}

    try:
        await wait_for(lambda: not missing(), 20, "every change at every subscriber")
    except AssertionError as error:
        lines = [f"{error}; missing: {missing()}"]
        for name, lost in missing().items():
            events = await relay.call("GET", f"/v1/events?account={account_of(name)}&limit=1000", expect=200)
            for key in lost:
                order = world.sandbox.account(account_of(name)).orders[key[1]]
                got = sorted((k for k in arrived[name] if k[1] == key[1]), key=str)
                stored = [
                    (e["type"], e["timestamp"], e["created_at"]) for e in events["items"] if e["resource_id"] == key[1]
                ]
                lines.append(
                    f"{name} {key}: arrived {got}; the relay stored {stored}; in the sandbox: status "
                    f"{order.status_id}, version {order.version}, updatedOn {order.updated_on}"
                )
        raise AssertionError("\n".join(lines)) from None


def account_of(subscriber: str) -> str:
    return subscriber.rsplit("-", 1)[0]


def check_changes(subscribers: Subscribers, expected: dict[str, Counter[EventKey]]) -> None:
    """(a) Every change arrived, once at each subscriber, signed, under one webhook-id."""
    ids_by_change: dict[tuple[str, EventKey], set[str]] = defaultdict(set)
    for name, receiver in subscribers.receivers.items():
        assert all(r.verified for r in receiver.received), f"{name}: a signature did not verify"
        twice = [i for i, n in Counter(r.webhook_id for r in receiver.received).items() if n > 1]
        assert twice == [], f"{name}: webhook-ids received more than once: {twice}"
        got = Counter(event_key(r) for r in receiver.received)
        assert got == expected[account_of(name)], f"{name}: not the changes made"
        for r in receiver.received:
            ids_by_change[(account_of(name), event_key(r))].add(r.webhook_id)
    assert all(len(ids) == 1 for ids in ids_by_change.values()), "one change came under two webhook-ids"


def check_polls(
    calls_before: list[BrightpearlCall],
    calls_after: list[BrightpearlCall],
    counted: list[tuple[float, float]],
    locks: LockSamples,
) -> tuple[list[Poll], int]:
    """(b) One poller per account at a time; the polls, and how many of them a lock sample fell within."""
    polls, problems = polls_of(calls_after)
    assert problems == [], "\n".join(problems[:20])
    covered, lock_problems = locks.check(polls)
    assert lock_problems == [], "\n".join(lock_problems[:20])
    started_before = Counter(p.sender for p in polls_of(calls_before)[0])
    started_after = Counter(p.sender for p in polls)
    for n, (polls_counted, _) in enumerate(counted):
        name = f"worker-{n}"
        # The calls were copied just before and just after the counts were read: each poll counted had begun
        # by then, and a poll begun may still have been under way (one per account at most).
        low, high = started_before[name] - len(ACCOUNTS), started_after[name]
        assert low <= polls_counted <= high, f"{name} counted {polls_counted} polls; the sandbox saw {low}..{high}"
    return polls, covered


async def check_deliveries(
    relay: Relay, api: Callable[[], str], sub_ids: dict[str, str], subscribers: Subscribers, attempts_counted: float
) -> int:
    """(c) Every delivery attempted once per scheduled attempt; how many POSTs the subscribers saw."""
    attempts_recorded = 0
    for name, sub_id in sub_ids.items():
        deliveries = await all_deliveries(relay, api, sub_id)
        posts = subscribers.posts[name]
        assert sorted(d["event_id"] for d in deliveries) == sorted(posts), f"{name}: deliveries != webhooks posted"
        for d in deliveries:
            codes = [a["status_code"] for a in d["attempts"]]
            assert d["status"] == "succeeded", d
            assert d["attempt_count"] == d["listed_attempt_count"] == len(codes) == posts[d["event_id"]], d
            assert codes == ([500, 204] if name in subscribers.flaky else [204]), d
            if len(codes) == 2:
                gap_s = seconds_between(d["attempts"][0]["at"], d["attempts"][1]["at"])
                assert gap_s >= RETRY_DELAY_S * (1 - RETRY_JITTER) - 0.01, f"retried after {gap_s} s: {d}"
            attempts_recorded += len(codes)
    posted = sum(sum(counter.values()) for counter in subscribers.posts.values())
    assert attempts_recorded == posted == attempts_counted, (attempts_recorded, posted, attempts_counted)
    return posted


# --- the test ----------------------------------------------------------------------------------------------


async def test_three_workers_and_two_apis_share_the_work_and_poll_each_account_once_at_a_time(
    redis_url: str, redis_client: Redis, tmp_path: Path
) -> None:
    began = time.monotonic()
    async with (
        scale_world() as world,
        relay_processes(redis_url, tmp_path, retry_schedule_s="1,1,1", budget_share="1") as relay,
    ):
        apis, workers = await start_processes(relay, world.senders)
        turn = itertools.count()

        def api() -> str:  # the API processes in turn, as a load balancer would
            return apis[next(turn) % len(apis)].url

        sub_ids = await register(relay, world, api)
        ready_s = time.monotonic() - began
        locks = LockSamples()
        sampler = asyncio.create_task(locks.run(redis_client))
        try:
            expected = await make_changes(world, random.Random(6))
            await wait_for_every_change(relay, world, expected)
            await wait_for(lambda: backlog_empty(relay), 15, "no delivery pending or retrying")
            await asyncio.sleep(1.5)  # anything sent twice would arrive now
        finally:
            sampler.cancel()
            with suppress(asyncio.CancelledError):
                await sampler
        gone = [
            f"{p.name} {p.url} exited with {p.proc.returncode}" for p in apis + workers if p.proc.returncode is not None
        ]
        assert gone == [], f"a process stopped during the test (not by it): {gone}"
        calls_before = list(world.calls)
        counted = list(await asyncio.gather(*(worker_counts(world.http, w) for w in workers)))
        calls_after = list(world.calls)
        settled_s = time.monotonic() - began

        check_changes(world.subscribers, expected)
        polls, covered = check_polls(calls_before, calls_after, counted, locks)
        posted = await check_deliveries(relay, api, sub_ids, world.subscribers, sum(a for _, a in counted))

        # (d) the work was shared
        print(f"\nready after {ready_s:.1f} s, settled after {settled_s:.1f} s")
        print(f"{sum(sum(c.values()) for c in expected.values())} changes, {posted} POSTs, {len(polls)} polls")
        print(f"polls with a lock sample within their requests: {covered}/{len(polls)} ({len(locks.samples)} samples)")
        for n, (polls_counted, attempts) in enumerate(counted):
            print(f"worker-{n}: {polls_counted:.0f} polls, {attempts:.0f} delivery attempts")
        for code in ACCOUNTS:
            print(f"{code} polled by", dict(sorted(Counter(p.sender for p in polls if p.account == code).items())))
        assert all(p > 0 and a > 0 for p, a in counted), f"a worker made no polls or no delivery attempts: {counted}"
        total = sum(p for p, _ in counted)
        # workers claim a few polls at a time from a shuffled handful: each takes a fair part (a third each on
        # average; under a tenth is several standard deviations away)
        assert all(p >= total / 10 for p, _ in counted), f"the polls were not shared: {counted}"


# --- the checks of (b) catch what they are meant to ----------------------------------------------------------

SEARCH, GET = "order-service/order-search", "order-service/order/1-3"


def call(sender: str, path: str, started: float, ended: float, account: str = "shop0") -> BrightpearlCall:
    return BrightpearlCall(account, sender, path, path == SEARCH, started, ended)


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ([call("api-0", SEARCH, 0, 1), call("worker-0", SEARCH, 2, 3), call("worker-1", SEARCH, 5, 6)], None),
        (
            [call("worker-0", SEARCH, 0, 1), call("worker-1", SEARCH, 2, 3), call("worker-0", GET, 4, 5)],
            "inside a poll",
        ),
        ([call("worker-0", SEARCH, 0, 3), call("worker-1", SEARCH, 2, 4)], "in flight"),
        ([call("worker-0", SEARCH, 0, 1), call("api-1", SEARCH, 2, 3)], "after the first poll"),
        ([call("worker-0", GET, 0, 1)], "the first poll began with"),
        ([call("?", SEARCH, 0, 1)], "unknown process"),
    ],
)
def test_the_poll_check_finds_two_pollers_at_once(calls: list[BrightpearlCall], problem: str | None) -> None:
    _, problems = polls_of(calls)
    assert problems == [] if problem is None else any(problem in p for p in problems), problems


def test_the_lock_check_finds_a_poll_without_the_lock_and_a_lock_shared_by_two_workers() -> None:
    polls, _ = polls_of([call("worker-0", SEARCH, 0, 1), call("worker-0", GET, 1, 2), call("worker-1", SEARCH, 5, 6)])
    held = LockSamples([(0.5, 0.6, {"shop0": "a"}), (3, 3.1, {"shop0": None}), (5.2, 5.3, {"shop0": "b"})])
    assert held.check(polls) == (2, [])
    free = LockSamples([(0.5, 0.6, {"shop0": "a"}), (1.2, 1.3, {"shop0": None})])
    assert free.check(polls)[1] == ["shop0: the lock was free during a poll of worker-0"]
    shared = LockSamples([(0.5, 0.6, {"shop0": "a"}), (5.2, 5.3, {"shop0": "a"})])
    assert shared.check(polls)[1] == ["lock token a seen in polls of ['worker-0', 'worker-1']"]
    late = LockSamples([(1.9, 2.1, {"shop0": None})])  # answered after the poll's last request: proves nothing
    assert late.check(polls) == (0, [])
