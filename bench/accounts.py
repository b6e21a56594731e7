"""How many Brightpearl accounts one worker carries: poll gaps as Brightpearl sees them, worker CPU and memory,
Redis bytes and commands, change-to-arrival, for N accounts polled every ``--interval-s``.

    .venv/bin/python bench/accounts.py [--accounts 50,200,500,1000] [--interval-s 10] [--settle-s 30]
        [--quiet-s 20] [--measure-s 60] [--workers 1] [--find-max]
        [--max-accounts 4000] [--max-total-s 3600] [--private-redis]

Each size gets fresh everything: the sandbox in a process of its own (``bench/accounts_sandbox.py``: the sandbox's
app, keeping when each search was answered), the timed receiver (``bench/timed_receiver.py``), an empty Redis
database (claimed as the other benches do; ``--private-redis``: a redis-server of the run's own, so that ``INFO
commandstats`` counts the relay's commands alone), one ``relay api`` and ``--workers`` ``relay worker`` processes. N
accounts are made through the sandbox's control API, each with 50 products, 5 contacts and 5 orders, then registered
through the relay's API: all five resources, ``poll_interval_s`` ``--interval-s``, hints off, one subscription each
(``events: ["*"]``) to the receiver at ``/hook/{account}``. The sandbox's request cap is lifted while they register
and put back to Brightpearl's 200 a minute before the accounts settle (``--settle-s``); then for ``--measure-s``:

- **poll gap**: for every account and resource, the seconds between consecutive searches of that resource the
  sandbox answered (searches less than 1 s apart are one poll: a poll may page); p50/p99/max over all of them;
- **worker CPU**: user + system seconds of each worker process, from /proc, over the window (summed in the JSON,
  each in the table, to show how ``--workers`` spreads the accounts); RSS summed at its end; the sandbox's CPU
  beside it (when it nears 100 % the sandbox, not the worker, is the limit);
- **requests/min/account**: every Brightpearl request the sandbox answered in the window;
- **CPU µs per resource poll**: worker CPU over the polls the workers counted (``relay_polls_total``, all
  outcomes, summed over their /metrics); **Redis commands per resource poll**: the ``INFO commandstats`` calls
  over the same polls (server-wide: on the shared server other clients' commands are in it, so it is printed
  only with ``--private-redis``);
- **a quiet poll**: first, for ``--quiet-s`` before any order is made (every account settled, nothing changing),
  worker CPU and Redis commands (``INFO commandstats``, Lua scripts' commands included, every client's: the
  claims, the API's and the deliveries' too) over the resource polls counted: what a poll costs when nothing
  changed, with the commands it is made of;
- **Redis bytes per account**: ``MEMORY USAGE key SAMPLES 0`` summed over the database's keys when the accounts
  have settled (before any order is made), over N; the largest kinds of key are printed beside it;
- **after a bulk import**: at the end, ``BULK_ACCOUNTS`` accounts (all of them when fewer) are each given
  ``PRODUCTS`` new products in one control call (one second); once every one of them has a snapshot (the relay read
  it), they are polled ``BULK_SETTLE_INTERVALS`` intervals more; Redis bytes per account is then the settled figure
  plus what those accounts' own keys added, over their number (the largest kinds of key added are printed). The
  delivery history of the import's webhooks (events, deliveries, their attempts and indexes, kept
  ``RELAY_RETENTION_S`` whatever the account) is printed beside it, per account, not in it;
- **change-to-arrival**: one order per account every 30 s (spread evenly over the 30 s), made through the
  control API, until the receiver got the webhook of that order (its first arrival); p50/p99.

A size passes when the poll gap p99 stays within 10 % of the interval. ``--find-max`` grows from the first size
(doubling) until a size fails or ``--max-accounts`` is reached, then bisects between the largest pass and the
smallest failure (to within 10 %), while ``--max-total-s`` allows. Each size prints a table by resource; the run
ends with a table of every size and, as its last line, one JSON object (``max_accounts`` is 0 when no size passed).
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rig import CLAIM_KEY, ROOT, cpu_s, free_port, process, redis_database, rss_mb
from bench.world import (
    TOKEN,
    RelayProcess,
    TimedReceivers,
    command_line,
    markdown_table,
    percentile,
    private_redis,
    relay_process,
    wait_until,
)
from subscriptions.core.models import RESOURCES

PRODUCTS, CONTACTS, ORDERS = 50, 5, 5  # each account's catalogue, made before the relay registers it
ORDER_EVERY_S = 30.0  # one order per account this often while measuring
SAME_POLL_S = 1.0  # searches of one resource closer than this are one poll (a poll may page)
PASS_RATIO = 1.1  # a size passes when its poll gap p99 is within 10 % of the interval
BRIGHTPEARL_LIMIT = 200  # requests a minute per account, Brightpearl's cap (the sandbox's default)
UNTHROTTLED = 10**9
ACCOUNT_IN_KEY = re.compile(r"acct\d{5}")  # the bench's account codes (account_code)
SETUP_CONCURRENCY = 16  # control and API requests in flight while making and registering accounts
BULK_ACCOUNTS = 100  # accounts given a bulk import of PRODUCTS products at the end
BULK_SETTLE_INTERVALS = 3  # intervals after the import was read before its bytes are counted


@dataclass
class Figures:
    """What one size measured."""

    accounts: int
    workers: int
    interval_s: float
    gaps_by_resource: dict[str, list[float]]
    worker_cpu_s_each: list[float]  # by worker process
    sandbox_cpu_s: float
    window_s: float
    worker_rss_mb: float
    requests: int  # Brightpearl requests the sandbox answered in the window
    polls: int  # resource polls the workers counted in the window
    searches: int  # resource searches the sandbox answered in the window
    redis_commands: int
    redis_commands_private: bool
    redis_bytes_by_kind: Counter[str]
    quiet_cpu_s: float  # worker CPU over the quiet window, before any order
    quiet_polls: int
    quiet_commands: Counter[str]  # by command, over the quiet window (meaningful with a private Redis)
    bulk_accounts: int  # accounts given a bulk import at the end
    bulk_bytes_by_kind: Counter[str]  # what their own keys added, by kind, their delivery history aside
    bulk_history_bytes: int  # what the delivery history of the import's webhooks added, every key's
    arrivals_s: list[float]
    orders_made: int
    registration_s: float
    # what the relay itself says of its polling at the end of the window (see ``reported``)
    said: dict[str, Any] = field(default_factory=dict)

    @property
    def worker_cpu_s(self) -> float:
        return sum(self.worker_cpu_s_each)

    @property
    def gaps(self) -> list[float]:
        return [gap for gaps in self.gaps_by_resource.values() for gap in gaps]

    @property
    def gap_p99_s(self) -> float:
        return percentile(self.gaps, 99)

    @property
    def passed(self) -> bool:
        return self.gap_p99_s <= self.interval_s * PASS_RATIO

    @property
    def cpu_us_per_poll(self) -> float:
        return self.worker_cpu_s / self.polls * 1e6 if self.polls else math.nan

    @property
    def commands_per_poll(self) -> float | None:
        return self._per_poll(self.redis_commands, self.polls)

    @property
    def quiet_cpu_us_per_poll(self) -> float:
        return self.quiet_cpu_s / self.quiet_polls * 1e6 if self.quiet_polls else math.nan

    @property
    def quiet_commands_per_poll(self) -> float | None:
        return self._per_poll(self.quiet_commands.total(), self.quiet_polls)

    def _per_poll(self, commands: int, polls: int) -> float | None:
        """Redis commands a poll; None when they are not the relay's alone (a shared server) or nothing was polled."""
        return commands / polls if self.redis_commands_private and polls else None

    @property
    def bytes_per_account_after_bulk(self) -> float:
        if not self.bulk_accounts:
            return math.nan
        settled = self.redis_bytes_by_kind.total() / self.accounts
        return settled + self.bulk_bytes_by_kind.total() / self.bulk_accounts

    @property
    def requests_per_min_per_account(self) -> float:
        return self.requests / self.accounts / (self.window_s / 60)

    def summary(self) -> dict[str, Any]:
        commands, quiet = self.commands_per_poll, self.quiet_commands_per_poll
        return {
            "accounts": self.accounts,
            "passed": self.passed,
            "gap_p50_s": round(percentile(self.gaps, 50), 3),
            "gap_p99_s": round(self.gap_p99_s, 3),
            "gap_max_s": round(max(self.gaps, default=math.nan), 3),
            "worker_cpu_pct": round(self.worker_cpu_s / self.window_s * 100, 1),
            "worker_cpu_pct_each": [round(cpu / self.window_s * 100, 1) for cpu in self.worker_cpu_s_each],
            "sandbox_cpu_pct": round(self.sandbox_cpu_s / self.window_s * 100, 1),
            "cpu_us_per_resource_poll": whole(self.cpu_us_per_poll),
            "rss_mb": round(self.worker_rss_mb, 1),
            "requests_per_min_per_account": round(self.requests_per_min_per_account, 1),
            "redis_bytes_per_account": whole(self.redis_bytes_by_kind.total() / self.accounts),
            "redis_commands_per_resource_poll": None if commands is None else round(commands, 1),
            "cpu_us_per_quiet_resource_poll": whole(self.quiet_cpu_us_per_poll),
            "redis_commands_per_quiet_resource_poll": None if quiet is None else round(quiet, 1),
            "redis_bytes_per_account_after_bulk_import": whole(self.bytes_per_account_after_bulk),
            "bulk_import_history_bytes_per_account": round(self.bulk_history_bytes / max(1, self.bulk_accounts)),
            "arrival_p50_s": round(percentile(self.arrivals_s, 50), 3),
            "arrival_p99_s": round(percentile(self.arrivals_s, 99), 3),
            "arrived": f"{len(self.arrivals_s)}/{self.orders_made}",
            "polls": self.polls,
            "searches": self.searches,
            "registration_s": round(self.registration_s, 1),
            **self.said,
        }


def whole(value: float) -> float:
    """``value`` rounded to a whole number (NaN stays NaN: nothing was measured)."""
    return value if math.isnan(value) else round(value)


# --- the pieces of one run -----------------------------------------------------------------------------------


def account_code(n: int) -> str:
    return f"acct{n:05d}"


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None, token: bool = False) -> Any:
    """One JSON request; anything but a 2xx ends the run with what was answered."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with http.request(method, url, json=body, headers=headers, timeout=timeout) as answer:
        payload = await answer.json(content_type=None)
        if answer.status >= 300:
            raise SystemExit(f"{method} {url}: {answer.status} {payload}")
        return payload


async def bounded(jobs: list[Any], concurrency: int) -> list[Any]:
    """Await the coroutines in ``jobs``, at most ``concurrency`` at once; their results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def make_account(http: aiohttp.ClientSession, control: str, code: str) -> dict[str, Any]:
    """A sandbox account with its catalogue; what the control API says of it (credentials, base URL)."""
    account: dict[str, Any] = await call(http, "POST", f"{control}/accounts", {"code": code})
    await call(http, "POST", f"{control}/accounts/{code}/products", {"count": PRODUCTS})
    await call(http, "POST", f"{control}/accounts/{code}/contacts", {"count": CONTACTS})
    await call(http, "POST", f"{control}/accounts/{code}/orders", {"count": ORDERS})
    return account


async def register(
    http: aiohttp.ClientSession, relay: RelayProcess, account: dict[str, Any], interval_s: float, hook: str
) -> None:
    """The account registered with the relay (every resource, hints off) and one subscription to everything."""
    registration = {
        "code": account["code"],
        "base_url": account["base_url"],
        "app_ref": account["app_ref"],
        "account_token": account["account_token"],
        "resources": list(RESOURCES),
        "poll_interval_s": interval_s,
        "hints": False,
    }
    await call(http, "POST", f"{relay.url}/v1/accounts", registration, token=True)
    subscription = {"account": account["code"], "url": f"{hook}/{account['code']}", "events": ["*"]}
    await call(http, "POST", f"{relay.url}/v1/subscriptions", subscription, token=True)


def poll_starts(times: list[float]) -> list[float]:
    """When each poll began: its first search (searches closer than ``SAME_POLL_S`` are one poll's)."""
    return [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] >= SAME_POLL_S]


def poll_gaps(searches: dict[str, dict[str, list[float]]], start: float, end: float) -> dict[str, list[float]]:
    """The gaps between consecutive polls of each account's resources that began within [start, end], by
    resource."""
    gaps: dict[str, list[float]] = {resource: [] for resource in RESOURCES}
    for by_resource in searches.values():
        for resource, times in by_resource.items():
            starts = [t for t in poll_starts(sorted(times)) if start <= t <= end]
            gaps[resource] += [b - a for a, b in itertools.pairwise(starts)]
    return gaps


async def polls_counted(http: aiohttp.ClientSession, workers: list[RelayProcess]) -> int:
    """``relay_polls_total`` summed over its labels and over the workers."""
    total = 0.0
    for worker in workers:
        async with http.get(f"{worker.url}/metrics") as answer:
            text = await answer.text()
        for line in text.splitlines():
            if line.startswith("relay_polls_total{"):
                total += float(line.rsplit(" ", 1)[1])
    return round(total)


async def reported(http: aiohttp.ClientSession, relay: RelayProcess) -> dict[str, Any]:
    """What the relay says of its polling, as an operator would read it: the backlog metrics of the API's
    ``/metrics`` and, over every account's status, the actual poll intervals and the accounts warned that the
    workers cannot keep up."""
    async with http.get(f"{relay.url}/metrics") as answer:
        text = await answer.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    actual: list[float] = []
    warned = 0
    cursor = ""
    for _ in range(100):  # pages of 1,000: enough for 100,000 accounts
        page = await call(http, "GET", f"{relay.url}/v1/accounts?limit=1000{cursor}", token=True)
        for item in page["items"]:
            for lane in item["status"]["resources"].values():
                if lane.get("actual_poll_interval_s") is not None:
                    actual.append(float(lane["actual_poll_interval_s"]))
            warned += any("cannot keep up" in warning for warning in item["warnings"])
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    return {
        "said_polls_due": samples.get("relay_polls_due"),
        "said_oldest_due_poll_age_s": samples.get("relay_oldest_due_poll_age_seconds"),
        "said_actual_interval_p50_s": round(percentile(actual, 50), 2) if actual else None,
        "said_actual_interval_max_s": round(max(actual), 2) if actual else None,
        "said_accounts_warned": warned,
    }


async def redis_calls(client: aioredis.Redis) -> Counter[str]:
    """Commands the Redis server has run (every client's, their scripts' included), by command, from
    ``INFO commandstats``."""
    stats = await client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})


def key_kind(key: str) -> str:
    """A key with its account code and ids written as placeholders: which kind of key it is."""
    return re.sub(r"\d+", "#", ACCOUNT_IN_KEY.sub("{account}", key))


async def redis_bytes(client: aioredis.Redis, only: re.Pattern[str] | None = None) -> Counter[str]:
    """``MEMORY USAGE`` (exact: ``SAMPLES 0``) of the database's keys, the claim marker left out, by kind of key;
    with ``only``, of the keys it finds a match in."""
    keys = [
        key async for key in client.scan_iter(count=1000) if key != CLAIM_KEY and (only is None or only.search(key))
    ]
    sizes: Counter[str] = Counter()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        for key, size in zip(chunk, await pipe.execute(), strict=True):
            sizes[key_kind(key)] += int(size or 0)
    return sizes


async def quiet_window(
    http: aiohttp.ClientSession, client: aioredis.Redis, workers: list[RelayProcess], duration_s: float
) -> tuple[float, int, Counter[str]]:
    """The workers' CPU seconds, the resource polls they counted and the Redis commands run, by command, over
    ``duration_s`` in which nothing changes."""
    calls, polls = await redis_calls(client), await polls_counted(http, workers)
    cpu = sum(cpu_s(w.pid) for w in workers)
    await asyncio.sleep(duration_s)
    cpu = sum(cpu_s(w.pid) for w in workers) - cpu
    polls = await polls_counted(http, workers) - polls
    return cpu, polls, await redis_calls(client) - calls


async def product_snapshots(client: aioredis.Redis) -> Counter[str]:
    """How many product snapshots each account has (one pass over the keys)."""
    found: Counter[str] = Counter()
    async for key in client.scan_iter(match="relay:snap:*:products:*", count=1000):
        found[key.split(":")[2]] += 1
    return found


def is_history(kind: str) -> bool:
    """Whether a kind of key is delivery history: events, deliveries and their attempts and indexes."""
    return kind.startswith(("relay:event", "relay:deliver"))


async def bulk_import(
    http: aiohttp.ClientSession, control: str, client: aioredis.Redis, codes: list[str], interval_s: float
) -> tuple[Counter[str], int]:
    """``PRODUCTS`` new products for each of ``codes``, each account's in one control call; once the relay has read
    them all and ``BULK_SETTLE_INTERVALS`` intervals have passed, what the Redis keys of those accounts grew by, by kind
    of key, their delivery history aside, and what the delivery history grew by (every key's)."""
    theirs = re.compile("|".join(map(re.escape, codes)))
    own_before, every_before = await redis_bytes(client, theirs), await redis_bytes(client)
    snapshots_before = await product_snapshots(client)
    await bounded([call(http, "POST", f"{control}/accounts/{code}/products", {"count": PRODUCTS}) for code in codes], 8)

    async def all_read() -> bool:
        now = await product_snapshots(client)
        return all(now[code] >= snapshots_before[code] + PRODUCTS for code in codes)

    if not await wait_until(all_read, timeout_s=20 * interval_s + 60, every_s=1.0):
        print("(the relay had not read every product of the bulk import when its bytes were counted)", flush=True)
    await asyncio.sleep(BULK_SETTLE_INTERVALS * interval_s)
    own_after, every_after = await redis_bytes(client, theirs), await redis_bytes(client)
    own = Counter({kind: size - own_before[kind] for kind, size in own_after.items() if not is_history(kind)})
    history = sum(size - every_before[kind] for kind, size in every_after.items() if is_history(kind))
    return own, history


async def make_orders(
    http: aiohttp.ClientSession, control: str, codes: list[str], duration_s: float
) -> dict[tuple[str, int], float]:
    """One order per account every ``ORDER_EVERY_S``, the accounts' turns spread evenly over it, for
    ``duration_s``; when each control request was sent, by (account, order id)."""
    made: dict[tuple[str, int], float] = {}
    started = time.monotonic()
    pending: set[asyncio.Task[None]] = set()

    async def one(code: str) -> None:
        sent = time.monotonic()
        answer = await call(http, "POST", f"{control}/accounts/{code}/orders", {"count": 1})
        made[(code, int(answer["ids"][0]))] = sent

    rounds = max(1, math.ceil(duration_s / ORDER_EVERY_S))
    spacing_s = ORDER_EVERY_S / len(codes)
    schedule = sorted((r * ORDER_EVERY_S + i * spacing_s, code) for r in range(rounds) for i, code in enumerate(codes))
    for at, code in schedule:
        if at >= duration_s:
            break
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        task = asyncio.create_task(one(code))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=60)
    return made


# --- one size --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_url_for(private: bool) -> Iterator[str]:
    if private:
        with private_redis() as url:
            yield url
    else:
        with redis_database() as url:
            yield url


@contextlib.asynccontextmanager
async def sandbox_process() -> AsyncIterator[tuple[str, int]]:
    """``bench/accounts_sandbox.py`` on a free port; its URL and process id."""
    port = free_port()
    with process([sys.executable, str(ROOT / "bench" / "accounts_sandbox.py"), str(port)], port=port) as child:
        yield f"http://127.0.0.1:{port}", child.pid


async def measure(args: argparse.Namespace, accounts: int) -> Figures:
    """Everything fresh, ``accounts`` accounts registered and settled, then the window measured."""
    codes = [account_code(n) for n in range(accounts)]
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_url_for(args.private_redis))
        receivers = stack.enter_context(TimedReceivers())
        async with sandbox_process() as (sandbox_url, sandbox_pid), aiohttp.ClientSession() as http:
            relay = stack.enter_context(relay_process("api", redis_url))
            workers = [stack.enter_context(relay_process("worker", redis_url)) for _ in range(args.workers)]
            control = f"{sandbox_url}/_sandbox"
            made_accounts = await bounded([make_account(http, control, code) for code in codes], SETUP_CONCURRENCY)
            began = time.monotonic()
            await call(http, "PUT", f"{sandbox_url}/_bench/throttle", {"limit": UNTHROTTLED})
            hook = receivers.urls("/hook")[0]
            jobs = [register(http, relay, account, args.interval_s, hook) for account in made_accounts]
            await bounded(jobs, SETUP_CONCURRENCY)
            registration_s = time.monotonic() - began
            await call(http, "PUT", f"{sandbox_url}/_bench/throttle", {"limit": BRIGHTPEARL_LIMIT})
            print(f"{accounts} accounts registered in {registration_s:.1f} s; settling {args.settle_s:g} s", flush=True)
            await asyncio.sleep(args.settle_s)

            client = aioredis.Redis.from_url(redis_url, decode_responses=True)
            try:
                stored = await redis_bytes(client)
                quiet_cpu, quiet_polls, quiet_calls = await quiet_window(http, client, workers, args.quiet_s)
                calls_before = await redis_calls(client)
                polls_before = await polls_counted(http, workers)
                cpu_before = [cpu_s(w.pid) for w in workers]
                sandbox_before = cpu_s(sandbox_pid)
                start = time.monotonic()
                made = await make_orders(http, control, codes, args.measure_s)
                await asyncio.sleep(max(0.0, start + args.measure_s - time.monotonic()))
                end = time.monotonic()
                cpu = [cpu_s(w.pid) - before for w, before in zip(workers, cpu_before, strict=True)]
                sandbox_cpu = cpu_s(sandbox_pid) - sandbox_before
                polls = await polls_counted(http, workers) - polls_before
                calls = (await redis_calls(client) - calls_before).total()
                rss = sum(rss_mb(w.pid) for w in workers)
                said = await reported(http, relay)
                logged = await call(http, "GET", f"{sandbox_url}/_bench/searches?since={start - 2 * args.interval_s}")
                arrived: dict[tuple[str, int], float] = {}

                async def all_arrived() -> bool:
                    for when, path, _, order_id in await receivers.arrivals(http):
                        arrived.setdefault((path.rpartition("/")[2], order_id), when)
                    return set(made) <= set(arrived)

                await wait_until(all_arrived, timeout_s=3 * args.interval_s + 30, every_s=1.0)
                bulk_codes = codes[:BULK_ACCOUNTS]
                bulk, history = await bulk_import(http, control, client, bulk_codes, args.interval_s)
            finally:
                await client.aclose()
    requests = sum(1 for times in logged["requests"].values() for t in times if start <= t <= end)
    searches = sum(1 for by in logged["searches"].values() for ts in by.values() for t in ts if start <= t <= end)
    return Figures(
        accounts=accounts,
        workers=args.workers,
        interval_s=args.interval_s,
        gaps_by_resource=poll_gaps(logged["searches"], start, end),
        worker_cpu_s_each=cpu,
        sandbox_cpu_s=sandbox_cpu,
        window_s=end - start,
        worker_rss_mb=rss,
        requests=requests,
        polls=polls,
        searches=searches,
        redis_commands=calls,
        redis_commands_private=args.private_redis,
        redis_bytes_by_kind=stored,
        quiet_cpu_s=quiet_cpu,
        quiet_polls=quiet_polls,
        quiet_commands=quiet_calls,
        bulk_accounts=len(bulk_codes),
        bulk_bytes_by_kind=bulk,
        bulk_history_bytes=history,
        arrivals_s=[arrived[key] - sent for key, sent in made.items() if key in arrived],
        orders_made=len(made),
        registration_s=registration_s,
        said=said,
    )


def finite(value: Any) -> Any:
    """``value`` with NaN (a figure with nothing to measure, e.g. no gap in a short window) as null: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


# --- reporting and the search ------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.2f}"


def resource_table(figures: Figures) -> str:
    rows = [
        [resource, len(gaps), seconds(percentile(gaps, 50)), seconds(percentile(gaps, 99)), seconds(max(gaps))]
        for resource, gaps in figures.gaps_by_resource.items()
        if gaps
    ]
    every = figures.gaps
    if every:
        rows.append(["all", len(every), *map(seconds, (percentile(every, 50), figures.gap_p99_s, max(every)))])
    return markdown_table(["resource", "gaps", "gap p50 s", "gap p99 s", "gap max s"], rows)


SUMMARY_HEADERS = [
    "accounts",
    "workers",
    "gap p50/p99/max s",
    "within 10 %",
    "worker CPU % (each)",
    "sandbox CPU %",
    "CPU µs/poll",
    "Redis cmds/poll",
    "worker RSS MB",
    "req/min/account",
    "Redis B/account",
    "quiet poll µs / cmds",
    "B/account after bulk import",
    "arrival p50/p99 s",
    "arrived",
]


def summary_row(figures: Figures) -> list[object]:
    s = figures.summary()
    commands = s["redis_commands_per_resource_poll"]
    return [
        s["accounts"],
        figures.workers,
        f"{s['gap_p50_s']:.2f} / {s['gap_p99_s']:.2f} / {s['gap_max_s']:.2f}",
        "yes" if figures.passed else "no",
        " + ".join(f"{pct:.0f}" for pct in s["worker_cpu_pct_each"]),
        f"{s['sandbox_cpu_pct']:.0f}",
        f"{s['cpu_us_per_resource_poll']:,.0f}",
        "n/a (shared Redis)" if commands is None else f"{commands:.1f}",
        f"{s['rss_mb']:.0f}",
        f"{s['requests_per_min_per_account']:.1f}",
        f"{s['redis_bytes_per_account']:,.0f}",
        f"{s['cpu_us_per_quiet_resource_poll']:,.0f} / "
        + (
            "n/a"
            if s["redis_commands_per_quiet_resource_poll"] is None
            else f"{s['redis_commands_per_quiet_resource_poll']:.1f}"
        ),
        f"{s['redis_bytes_per_account_after_bulk_import']:,.0f}",
        f"{s['arrival_p50_s']:.2f} / {s['arrival_p99_s']:.2f}",
        s["arrived"],
    ]


async def run_size(args: argparse.Namespace, accounts: int, results: dict[int, Figures]) -> Figures:
    print(f"\n## {accounts} accounts, {args.workers} worker(s), interval {args.interval_s:g} s", flush=True)
    figures = await measure(args, accounts)
    results[accounts] = figures
    print(resource_table(figures))
    print(markdown_table(SUMMARY_HEADERS, [summary_row(figures)]))
    largest = figures.redis_bytes_by_kind.most_common(6)
    per_account = ", ".join(f"{kind} {size / accounts:,.0f}" for kind, size in largest)
    print(f"Redis bytes per account by key, the largest kinds: {per_account}", flush=True)
    if figures.quiet_polls:
        made_of = ", ".join(
            f"{name} {calls / figures.quiet_polls:.2f}" for name, calls in figures.quiet_commands.most_common(8)
        )
        print(f"A quiet resource poll's Redis commands (every client's), the most frequent: {made_of}", flush=True)
    added = ", ".join(
        f"{kind} {size / figures.bulk_accounts:,.0f}" for kind, size in figures.bulk_bytes_by_kind.most_common(6)
    )
    print(f"Redis bytes per account added by a bulk import of {PRODUCTS} products, the largest kinds: {added}")
    history = figures.bulk_history_bytes / max(1, figures.bulk_accounts)
    print(f"and the delivery history of its {PRODUCTS} webhooks (kept RELAY_RETENTION_S): {history:,.0f} per account")
    return figures


def next_size(passed_by_size: dict[int, bool], max_accounts: int) -> int | None:
    """The next size ``--find-max`` tries, given which sizes passed: double the largest pass until one fails (or
    the bound), then the middle of the largest pass and the smallest failure until they are within 10 % of each
    other; None when there is nothing left to try."""
    passed = [n for n, ok in passed_by_size.items() if ok]
    failed = [n for n, ok in passed_by_size.items() if not ok]
    low = max(passed, default=0)
    if not failed:
        if low >= max_accounts:
            return None
        return min(max_accounts, low * 2)
    high = min(failed)
    if low == 0:
        return max(1, high // 2) if high > 1 else None
    if high - low <= max(1, low // 10):
        return None
    return (low + high) // 2


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", default="50,200", help="sizes to run, comma-separated (--find-max: the first)")
    parser.add_argument("--interval-s", type=float, default=10.0, help="every account's poll_interval_s")
    parser.add_argument("--settle-s", type=float, default=30.0, help="polling before the window")
    parser.add_argument("--quiet-s", type=float, default=20.0, help="the quiet window, before any order")
    parser.add_argument("--measure-s", type=float, default=60.0, help="the window (at least 60 in a real run)")
    parser.add_argument("--workers", type=int, default=1, help="relay worker processes")
    parser.add_argument("--find-max", action="store_true", help="grow, then bisect, to the largest passing size")
    parser.add_argument("--max-accounts", type=int, default=4000, help="--find-max goes no further")
    parser.add_argument("--max-total-s", type=float, default=3600.0, help="--find-max starts no size after this")
    parser.add_argument("--private-redis", action="store_true", help="a redis-server of its own (exact commandstats)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.accounts.split(",")]
    print(command_line("accounts.py", args), flush=True)
    if args.measure_s < 60:
        print(f"(a {args.measure_s:g} s window: a smoke run; a measurement takes at least 60 s)", flush=True)
    began = time.monotonic()
    results: dict[int, Figures] = {}
    if args.find_max:
        size: int | None = sizes[0]
        while size is not None and size not in results and time.monotonic() - began < args.max_total_s:
            await run_size(args, size, results)
            size = next_size({n: f.passed for n, f in results.items()}, args.max_accounts)
    else:
        for size in sizes:
            await run_size(args, size, results)
    ordered = [results[n] for n in sorted(results)]
    print(f"\n{command_line('accounts.py', args)}")
    print(markdown_table(SUMMARY_HEADERS, [summary_row(f) for f in ordered]))
    passed = [f for f in ordered if f.passed]
    best = passed[-1] if passed else ordered[0]
    print(
        f"largest size within 10 % of the {args.interval_s:g} s interval: "
        + (f"{best.accounts} accounts" if passed else "none of the sizes run")
    )
    report = {
        "max_accounts": best.accounts if passed else 0,
        "interval_s": args.interval_s,
        "workers": args.workers,
        **{k: v for k, v in best.summary().items() if k not in ("accounts", "passed")},
        "sizes": [f.summary() for f in ordered],
    }
    print(json.dumps(finite(report)))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # the child processes were stopped as their blocks unwound
        sys.exit(130)
