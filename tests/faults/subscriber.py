"""A subscriber that misbehaves on demand: answers 5xx, 410 or 429 with ``Retry-After``, hangs, resets the
connection, or answers slowly, then recovers.

One aiohttp server; each subscription gets its own path (``/hooks/{name}``) and secret. Every signature is
checked with the Standard Webhooks reference library. What it accepts (answers 2xx) goes to the case's
:class:`~tests.faults.ledger.Ledger`; what it refuses, drops or holds does not.
"""

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from tests.e2e import free_port
from tests.faults.ledger import Ledger

Kind = Literal["ok", "status", "hang", "reset"]


@dataclass(frozen=True)
class Answer:
    """How to answer one request."""

    kind: Kind = "ok"
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # "ok" after this long; "hang" for this long (or until released)


OK = Answer()


def refuse(status: int, **headers: str) -> Answer:
    return Answer("status", status, {k.replace("_", "-"): v for k, v in headers.items()})


HANG = Answer("hang", delay_s=30.0)
RESET = Answer("reset")


@dataclass
class Request:
    """A request the subscriber saw, whatever it answered."""

    webhook_id: str
    path: str
    at: float
    answer: Answer


class Subscriber:
    """Webhook endpoints answering as :attr:`behaviour` says, for one case."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.port = free_port()
        self.secrets: dict[str, str] = {}
        self.behaviour: Callable[[str, str], Answer] = lambda path, webhook_id: OK
        self.requests: list[Request] = []
        self.in_progress: Counter[str] = Counter()  # webhook-id -> requests being answered now
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def answer_all(self, answer: Answer) -> None:
        """Answer every request so from now on."""
        self.behaviour = lambda path, webhook_id: answer

    def attempts(self, webhook_id: str) -> list[Request]:
        return [r for r in self.requests if r.webhook_id == webhook_id]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._released.set()  # let hanging handlers end
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        raw = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        answer = self.behaviour(name, webhook_id)
        self.requests.append(Request(webhook_id, name, time.monotonic(), answer))
        self.in_progress[webhook_id] += 1
        try:
            return await self._answer(request, name, webhook_id, raw, answer)
        finally:
            self.in_progress[webhook_id] -= 1
            if self.in_progress[webhook_id] <= 0:
                del self.in_progress[webhook_id]

    async def _answer(
        self, request: web.Request, name: str, webhook_id: str, raw: bytes, answer: Answer
    ) -> web.StreamResponse:
        if answer.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), answer.delay_s)
            return web.Response(status=503, text="hung")  # the relay gave up long ago; never counted as delivered
        if answer.kind == "reset":
            reset(request)
            return web.Response(status=500)  # never written: the connection is gone
        if answer.kind == "status":
            return web.Response(status=answer.status, headers=answer.headers, text="subscriber told to refuse")
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(self.secrets[name]).verify(raw, headers)
            verified = True
        except (WebhookVerificationError, ValueError, KeyError):
            verified = False
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        self.ledger.arrived(webhook_id, body, verified=verified, path=name)
        return web.Response(status=answer.status)


def reset(request: web.Request) -> None:
    """Drop the connection with a TCP reset (linger 0, then abort): the client sees ECONNRESET, not an answer."""
    transport = request.transport
    if transport is None:
        return
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
