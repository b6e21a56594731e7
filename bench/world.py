"""What the delivery benchmarks (latency, fan-out, backlog, cost) share beside ``bench/rig.py``: the relay's
commands as processes with their ports, the timed receiver as a process that can be stopped and started again,
nearest-rank percentiles, markdown tables and the command line that made a run.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from bench.rig import ROOT, free_port, process, wait_port
from subscriptions.core.envelope import NewEvent, resource_event
from subscriptions.core.models import SubscriptionRecord
from subscriptions.core.signing import new_secret

RELAY = str(ROOT / ".venv" / "bin" / "relay")
TOKEN = "bench-admin-token-0123456789abcdefg"  # noqa: S105 - the bench relay's admin token, on loopback only
ENCRYPTION_KEY = Fernet.generate_key().decode()  # as in production: stored Brightpearl tokens encrypted
RECORDED_ORDER = ROOT / "tests" / "fixtures" / "recorded" / "order_get_one.yml.0.txt"
ACCOUNT = "acme"
EVENT_AT = datetime(2026, 11, 26, 10, tzinfo=UTC)  # every bench event happened then


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``values`` (sorted or not); NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; numbers (and cells starting with a digit) are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def numeric(column: int) -> bool:
        return all(row[column][:1].isdigit() or row[column][:1] in "-+~" for row in cells) and bool(cells)

    right = [numeric(i) for i in range(len(headers))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    rule = (("-" * (w + 1)) + (":" if r else "-") for w, r in zip(widths, right, strict=True))
    lines.append("|" + "|".join(rule) + "|")
    for row in cells:
        padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
        lines.append("| " + " | ".join(padded) + " |")
    return "\n".join(lines)


async def wait_until(condition: Callable[[], Awaitable[bool] | bool], timeout_s: float, every_s: float = 0.05) -> bool:
    """Check ``condition`` every ``every_s`` until it holds (True) or ``timeout_s`` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    for _ in itertools.count():
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return True
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(every_s)
    return False


def command_line(script: str, args: argparse.Namespace) -> str:
    """The command that reproduces this run: every option spelled out, defaults included."""
    parts = [".venv/bin/python", f"bench/{script}"]
    for name, value in vars(args).items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value not in (False, None):
            parts += [flag, ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)]
    return "$ " + " ".join(parts)


def recorded_order() -> dict[str, Any]:
    """A real order as Brightpearl's GET answers it (about 3 KB of JSON), from the recorded exchanges."""
    text = RECORDED_ORDER.read_text()
    order: dict[str, Any] = json.loads(text[text.index("\n{") :])["response"][0]
    return order


def order_event(n: int, order: dict[str, Any]) -> NewEvent:
    """The ``order.created`` event of order ``n``, carrying ``order`` as its resource, as a poll detects it."""
    return resource_event(ACCOUNT, "order.created", n, {**order, "id": n}, EVENT_AT)


def subscription(n: int, url: str, now: datetime, **options: Any) -> SubscriptionRecord:
    """Subscription ``n`` of the bench account to every event, at ``url``."""
    return SubscriptionRecord(
        id=f"sub_bench{n:021d}",  # as long as a real id (sub_ + 26 characters)
        account=ACCOUNT,
        url=url,
        events=["*"],
        secret=new_secret(),
        created_at=now,
        updated_at=now,
        **options,
    )


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of this run's own on a free loopback port, no persistence; yields its database 0's URL. Its
    ``INFO memory`` counts nothing but what the run writes (the shared server's counts every session's)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with tempfile.TemporaryDirectory(prefix="relay-bench-redis-") as directory:
        server = subprocess.Popen([*args, "--dir", directory], stdout=subprocess.DEVNULL)  # noqa: S603
        try:
            wait_port(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(10)


@dataclass
class RelayProcess:
    """``relay run``, ``relay api`` or ``relay worker`` running as a child process."""

    child: subprocess.Popen[bytes]
    port: int  # the API's port (run, api) or the worker's /healthz and /metrics port (worker)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.child.pid


@contextlib.contextmanager
def relay_process(command: str, redis_url: str, port: int | None = None, **settings: str) -> Iterator[RelayProcess]:
    """``relay {command}`` on the bench database with ``settings`` as RELAY_ variables, stopped at the end of the
    block (SIGTERM, so that it drains as in production); on ``port`` when given (its URL is then known before it
    starts, as ``RELAY_PUBLIC_URL`` needs)."""
    port = port or free_port()
    env = {
        "RELAY_REDIS_URL": redis_url,
        "RELAY_API_TOKEN": TOKEN,
        "RELAY_PORT": str(port),
        "RELAY_WORKER_PORT": str(port if command == "worker" else free_port()),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "RELAY_LOG_LEVEL": "WARNING",
        **{f"RELAY_{k.upper()}": v for k, v in settings.items()},
    }
    with process([RELAY, command], env=env, port=port) as child:
        yield RelayProcess(child, port)


class TimedReceivers:
    """``bench/timed_receiver.py`` on fixed ports, in a process that can be stopped and started again (the
    receiver down, then back on the same ports)."""

    def __init__(self, count: int = 1) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.child: subprocess.Popen[bytes] | None = None

    def urls(self, path: str = "/hook") -> list[str]:
        return [f"http://127.0.0.1:{port}{path}" for port in self.ports]

    def start(self) -> None:
        args = [sys.executable, str(ROOT / "bench" / "timed_receiver.py"), *map(str, self.ports)]
        self.child = subprocess.Popen(args, cwd=ROOT)  # noqa: S603 - our own script
        for port in self.ports:
            wait_port(port)

    def stop(self) -> None:
        """Stop the process: its ports refuse connections from now on, and what it recorded is gone."""
        if self.child is None:
            return
        self.child.terminate()
        try:
            self.child.wait(10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        self.child = None

    async def arrivals(self, session: aiohttp.ClientSession) -> list[tuple[float, str, str, Any]]:
        async with session.get(f"http://127.0.0.1:{self.ports[0]}/_arrivals") as answer:
            return [tuple(a) for a in (await answer.json())["arrivals"]]

    async def count(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"http://127.0.0.1:{self.ports[0]}/_arrivals?count=1") as answer:
            return int((await answer.json())["count"])

    async def forget(self, session: aiohttp.ClientSession) -> None:
        async with session.delete(f"http://127.0.0.1:{self.ports[0]}/_arrivals") as answer:
            answer.raise_for_status()

    def __enter__(self) -> "TimedReceivers":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
