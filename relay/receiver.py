"""A webhook receiver that verifies every signature with the Standard Webhooks reference library.

The demo prints what it receives; tests use it as the subscriber, telling it to fail some requests first.
It checks signatures with ``standardwebhooks``, written by others, not with the relay's own code.
"""

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    webhook_id: str
    event_type: str
    verified: bool
    body: dict[str, Any]
    headers: dict[str, str]
    at_monotonic: float


@dataclass
class Receiver:
    """Collects webhooks; answers 2xx unless told to fail the next ``fail_next`` requests."""

    secret: str | None = None
    fail_next: int = 0
    fail_status: int = 500
    received: list[Received] = field(default_factory=list)
    failures_sent: int = 0
    on_receive: Callable[[Received], None] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures_sent += 1
            return web.Response(status=self.fail_status, text="receiver told to fail")
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(raw, headers)
                verified = True
            except (WebhookVerificationError, ValueError):
                verified = False
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        item = Received(
            headers.get("webhook-id", ""), str(body.get("type", "?")), verified, body, headers, time.monotonic()
        )
        self.received.append(item)
        if self.on_receive is not None:
            self.on_receive(item)
        return web.Response(status=204)

    def by_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.event_type == event_type]

    def counts(self) -> Counter[str]:
        """How many webhooks of each event type arrived."""
        return Counter(r.event_type for r in self.received)
