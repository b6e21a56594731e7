"""Helpers for end-to-end tests: the relay as real processes, the sandbox, and a receiver, all on loopback."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from relay.receiver import Receiver
from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.models import AccountRecord, SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store.records import Store

TOKEN = "e2e-admin-token-0123456789abcdefghij"


def subscription_to(url: str, sub_id: str, **fields: Any) -> SubscriptionRecord:
    """Subscription ``sub_id`` of account ``acme`` to every event at ``url``, with a fresh secret, made now."""
    now = datetime.now(UTC)
    return SubscriptionRecord(
        id=sub_id,
        account="acme",
        url=url,
        events=["*"],
        secret=new_secret(),
        created_at=now,
        updated_at=now,
        **fields,
    )


def account_record(code: str, created_at: datetime | None = None) -> AccountRecord:
    """Account ``code`` watching orders at a Brightpearl nobody answers (port 9): for tests of the API alone."""
    return AccountRecord(
        code=code,
        base_url=f"http://127.0.0.1:9/public-api/{code}",
        app_ref=f"{code}_relay",
        auth="account_token",
        token="t",
        poll_interval_s=5,
        resources=["orders"],
        created_at=created_at or datetime.now(UTC),
    )


async def register_unpolled(store: Store, code: str, created_at: datetime | None = None) -> None:
    """Store account ``code`` as registered, its first poll so far off that no worker ever polls it."""
    await store.create_account(account_record(code, created_at), {}, first_poll_ms=2**50)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(condition: Callable[[], Awaitable[bool] | bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    url: str = ""  # where it serves /healthz: the API, or a worker's /metrics

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Relay:
    """``relay api`` and ``relay worker`` processes sharing one Redis database."""

    env: dict[str, str]
    logs: Path
    api_url: str = ""
    processes: list[Process] = field(default_factory=list)
    http: aiohttp.ClientSession | None = None

    async def start(self, command: str, port: int | None = None) -> Process:
        """Start ``relay api`` (on ``port``; default the API port of ``env``) or ``relay worker`` (its /metrics on
        ``port``; default a free one) and wait until it is healthy. Several may start at once."""
        env = dict(self.env)
        if command == "worker":
            env["RELAY_WORKER_PORT"] = str(port or free_port())
        elif port is not None:
            env["RELAY_PORT"] = str(port)
        served = env["RELAY_WORKER_PORT" if command == "worker" else "RELAY_PORT"]
        log = self.logs / f"{command}-{served}.log"
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "relay", command, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        health = f"http://127.0.0.1:{served}"
        process = Process(command, proc, log, health)
        self.processes.append(process)

        async def healthy() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"relay {command} exited with {proc.returncode}:\n{process.output()}")
            try:
                assert self.http is not None
                async with self.http.get(f"{health}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(healthy, 20, f"relay {command} to be healthy")
        return process

    def kill(self, process: Process) -> None:
        process.proc.send_signal(signal.SIGKILL)

    async def call(
        self, method: str, path: str, body: Any = None, expect: int | None = None, api_url: str | None = None
    ) -> Any:
        """Call the API (at ``api_url`` when there are several) with the admin token; its JSON answer."""
        assert self.http is not None
        async with self.http.request(
            method, (api_url or self.api_url) + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            payload = await response.json(content_type=None)
            if expect is not None:
                assert response.status == expect, payload
            return payload

    async def stop(self) -> None:
        for process in self.processes:
            if process.proc.returncode is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.proc.wait(), 10)
            if process.proc.returncode is None:
                process.proc.kill()
                await process.proc.wait()


@contextlib.asynccontextmanager
async def relay_processes(
    redis_url: str, logs: Path, *, hints: bool = False, public: bool = False, **settings: str
) -> AsyncIterator[Relay]:
    """``relay api`` / ``relay worker`` processes as ``Relay.start`` starts them; with ``hints`` or ``public``, their
    ``RELAY_PUBLIC_URL`` is the API's own loopback URL, where the sandbox sends its webhooks and Brightpearl's
    authorize page sends the browser back (``/oauth/callback``)."""
    port = free_port()
    if hints or public:
        settings = {"public_url": f"http://127.0.0.1:{port}", **settings}
    env = {
        **os.environ,
        "RELAY_REDIS_URL": redis_url,
        "RELAY_API_TOKEN": TOKEN,
        "RELAY_PORT": str(port),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **{f"RELAY_{k.upper()}": v for k, v in settings.items()},
    }
    relay = Relay(env, logs, api_url=f"http://127.0.0.1:{port}")
    async with aiohttp.ClientSession() as http:
        relay.http = http
        try:
            yield relay
        finally:
            await relay.stop()


@dataclass
class World:
    """The sandbox and a receiver the relay delivers to."""

    sandbox: SandboxServer
    receiver: Receiver
    receiver_url: str
    http: aiohttp.ClientSession

    async def create_orders(self, count: int = 1, account: str = "acme", **extra: Any) -> list[int]:
        async with self.http.post(
            f"{self.sandbox.url}/_sandbox/accounts/{account}/orders", json={"count": count, **extra}
        ) as response:
            assert response.status < 300, await response.text()
            return list((await response.json())["ids"])

    async def control(self, method: str, path: str, body: Any = None, account: str = "acme") -> Any:
        """Call the sandbox's control API for ``account`` (``path`` after ``/_sandbox/accounts/{account}``)."""
        url = f"{self.sandbox.url}/_sandbox/accounts/{account}{path}"
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json(content_type=None)

    async def fault(self, **fault: Any) -> None:
        async with self.http.post(f"{self.sandbox.url}/_sandbox/accounts/acme/faults", json=fault) as response:
            assert response.status < 300, await response.text()

    def account_body(self, code: str = "acme", poll_interval_s: float = 1) -> dict[str, Any]:
        account = self.sandbox.account(code)
        return {
            "code": code,
            "base_url": self.sandbox.base_url(code),
            "app_ref": account.app_ref,
            "account_token": account.account_token,
            "poll_interval_s": poll_interval_s,
        }


@contextlib.asynccontextmanager
async def world() -> AsyncIterator[World]:
    sandbox = await start_sandbox()
    receiver = Receiver()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield World(sandbox, receiver, f"http://127.0.0.1:{port}/hooks", http)
    finally:
        await runner.cleanup()
        await sandbox.close()
