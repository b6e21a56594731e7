"""What the benchmarks share: a Redis database of their own (by URL, or as an asyncio client), free ports, a
minimal receiver in its own process, and the relay's worker as a real process.

A benchmark claims an empty Redis database (1-15) with a marker, as the tests do, and empties only that one
afterwards. The receiver is the smallest aiohttp app that answers 204 and counts what it got; it runs in a
process of its own, as a subscriber would, so that it does not share the relay's core.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
REDIS_BASE = os.environ.get("RELAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CLAIM_KEY = "relay-bench:claimed"
DATABASES = range(1, 16)  # the databases a benchmark may claim, as the tests do; 0 is left alone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """The URL of an empty Redis database claimed for this run; emptied afterwards."""
    for db in DATABASES:
        client = redis.Redis.from_url(f"{REDIS_BASE}/{db}")
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True, ex=3600):
                break
        finally:
            client.close()
    else:
        raise SystemExit(f"no empty Redis database among 1-15 at {REDIS_BASE}")
    try:
        yield f"{REDIS_BASE}/{db}"
    finally:
        client = redis.Redis.from_url(f"{REDIS_BASE}/{db}")
        try:
            client.flushdb()
        finally:
            client.close()


@contextlib.asynccontextmanager
async def claimed_database(base_url: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client of an empty database claimed with a marker key (as the tests do), emptied when done."""
    for db in DATABASES:
        client = aioredis.Redis.from_url(f"{base_url}/{db}", decode_responses=True)
        if await client.dbsize() == 0 and await client.set(CLAIM_KEY, os.getpid(), nx=True, ex=600):
            break
        await client.aclose()
    else:
        raise SystemExit(f"no empty Redis database among {list(DATABASES)} at {base_url}")
    try:
        yield client
    finally:
        await client.flushdb()  # only we wrote here: it was empty and claimed when we began
        await client.aclose()


async def clear_keeping_claim(client: aioredis.Redis) -> None:
    """Empty a claimed database (between a benchmark's scenarios) but keep the marker, so nobody else takes it
    meanwhile."""
    async for key in client.scan_iter(count=1000):
        if key != CLAIM_KEY:
            await client.unlink(key)


def wait_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on port {port} after {timeout_s} s")


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped (SIGTERM, then SIGKILL) when the block ends."""
    child = subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=ROOT)  # noqa: S603
    try:
        if port is not None:
            wait_port(port)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def receiver(port: int) -> Iterator[str]:
    """The minimal receiver (``bench/receiver.py``) on ``port``; yields its URL."""
    with receiver_process(port) as (url, _):
        yield url


@contextlib.contextmanager
def receiver_process(port: int) -> Iterator[tuple[str, int]]:
    """The minimal receiver on ``port``; yields its URL and its process id."""
    with process([sys.executable, str(ROOT / "bench" / "receiver.py"), str(port)], port=port) as child:
        yield f"http://127.0.0.1:{port}/hook", child.pid


def redis_pid(redis_url: str) -> int:
    """The process id of the Redis server at ``redis_url`` (it says so itself)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


@contextlib.asynccontextmanager
async def worker(redis_url: str, **settings: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``relay worker`` as a process of its own, with ``settings`` as RELAY_ variables."""
    port = free_port()
    env = {
        "RELAY_REDIS_URL": redis_url,
        "RELAY_WORKER_PORT": str(port),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_LOG_LEVEL": "WARNING",
        **{f"RELAY_{k.upper()}": v for k, v in settings.items()},
    }
    with process([str(ROOT / ".venv" / "bin" / "relay"), "worker"], env=env, port=port) as child:
        await asyncio.sleep(0)
        yield child


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
