"""One fault case's world: the Brightpearl sandbox, a misbehaving subscriber, the relay as real ``relay api`` and
``relay worker`` processes, and the ledger of changes made against webhooks received.

Changes are made through the sandbox's control API and entered in the ledger as they are made, so the ledger
knows exactly which events must come. Every wait has a deadline.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from relay.sandbox.app import SandboxServer, start_sandbox
from tests.e2e import Process, Relay, relay_processes, wait_for
from tests.faults.ledger import ChangeKey, Ledger
from tests.faults.subscriber import Subscriber

EVENTS = ["order.created", "order.modified.order-status", "contact.created", "contact.modified"]
# what an order made through the control API starts as, and the statuses it is moved to after
SO_STATUS = 3
NEXT_STATUSES = (4, 5)

# Fault cases want failures retried soon, attempts ended soon, and orders polled every second (the whole
# budget of the account is the relay's: nothing else uses the sandbox).
FAST = {"retry_schedule_s": "1,1,2,3", "delivery_timeout_s": "2", "budget_share": "1"}


@dataclass
class Rig:
    sandbox: SandboxServer
    subscriber: Subscriber
    relay: Relay
    ledger: Ledger
    http: aiohttp.ClientSession
    account: str = "acme"
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # path name -> the subscription
    statuses: dict[int, int] = field(default_factory=dict)  # order id -> its status now
    contact_emails: dict[int, str | None] = field(default_factory=dict)  # contact id -> email set (None: as made)

    # --- the sandbox ------------------------------------------------------------------------------------------

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """A call to ``/_sandbox/accounts/{account}{path}`` that must succeed; its JSON answer."""
        url = f"{self.sandbox.control_url}/accounts/{self.account}{path}"
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
            return await response.json()

    async def fault(self, kind: str, **options: Any) -> None:
        await self.control("POST", "/faults", {"kind": kind, **options})

    def _made(self, *keys: ChangeKey) -> None:
        first, *others = list(self.subscriptions) or [""]
        self.ledger.made(*keys, path=first)
        for path in others:
            self.ledger.expect_also(*keys, path=path)

    async def create_orders(self, count: int = 1) -> list[int]:
        made: list[int] = []
        while len(made) < count:  # the control API makes up to 1000 a call
            ids = (await self.control("POST", "/orders", {"count": min(1000, count - len(made))}))["ids"]
            made += ids
            self._made(*(("order.created", i) for i in ids))
        self.statuses.update(dict.fromkeys(made, SO_STATUS))
        return made

    async def change_status(self, order_id: int) -> bool:
        """Move an order to its next status; False when it has none left."""
        current = self.statuses[order_id]
        later = [s for s in NEXT_STATUSES if s > current]
        if not later:
            return False
        await self.control("PUT", f"/orders/{order_id}/status", {"status_id": later[0]})
        self.statuses[order_id] = later[0]
        self._made(("order.modified.order-status", order_id, later[0]))
        return True

    async def create_contacts(self, count: int = 1) -> list[int]:
        ids = list((await self.control("POST", "/contacts", {"count": count}))["ids"])
        self.contact_emails.update(dict.fromkeys(ids))
        self._made(*(("contact.created", i) for i in ids))
        return ids

    async def change_contact(self, contact_id: int, n: int) -> None:
        email = f"c{contact_id}-{n}@example.com"
        await self.control("PATCH", f"/contacts/{contact_id}", {"email": email})
        self.contact_emails[contact_id] = email
        self._made(self._contact_key(contact_id))

    def changeable_orders(self) -> list[int]:
        """Orders with a status left to move to, whose current state the relay has already reported.

        A poller sees states, not transitions: an order made and moved on between two polls is first seen in
        its later state, and the state in between is rightly never reported. So a case changes a record again
        only once its last change has arrived; then every change it makes must come as exactly one event.
        """
        ready = []
        for order_id, status in self.statuses.items():
            if status == NEXT_STATUSES[-1]:
                continue
            last = ("order.created", order_id)
            if status != SO_STATUS:
                last = ("order.modified.order-status", order_id, status)
            if self.ledger.seen(last):
                ready.append(order_id)
        return ready

    async def keep_changing(self, duration_s: float, every_s: float = 0.25, contacts: bool = False) -> None:
        """Make changes for ``duration_s``: new orders, status changes of earlier ones (and contacts)."""
        deadline = time.monotonic() + duration_s
        n = 0
        while time.monotonic() < deadline:
            n += 1
            await self.create_orders(1 + n % 3)
            ready = self.changeable_orders()
            if ready:
                await self.change_status(ready[(n * 7) % len(ready)])
            if contacts:
                await self._change_contacts(n)
            await asyncio.sleep(every_s)

    async def _change_contacts(self, n: int) -> None:
        if n % 2:
            await self.create_contacts(1)
            return
        ready = [c for c in self.contact_emails if self.ledger.seen(self._contact_key(c))]
        if ready:
            await self.change_contact(ready[n % len(ready)], n)

    def _contact_key(self, contact_id: int) -> ChangeKey:
        """The contact's last change: made, or given its current email."""
        email = self.contact_emails[contact_id]
        return ("contact.created", contact_id) if email is None else ("contact.modified", contact_id, email)

    # --- the relay --------------------------------------------------------------------------------------------

    async def start(self, workers: int = 1) -> list[Process]:
        """Start ``relay api`` and ``workers`` ``relay worker`` processes at once; the workers."""
        started = await asyncio.gather(self.relay.start("api"), *(self.relay.start("worker") for _ in range(workers)))
        return list(started[1:])

    async def register(
        self, resources: tuple[str, ...] = ("orders",), poll_interval_s: float = 1, **extra: Any
    ) -> None:
        account = self.sandbox.account(self.account)
        body = {
            "code": self.account,
            "base_url": self.sandbox.base_url(self.account),
            "app_ref": account.app_ref,
            "account_token": account.account_token,
            "poll_interval_s": poll_interval_s,
            "resources": list(resources),
            **extra,
        }
        await self.relay.call("POST", "/v1/accounts", body, expect=201)

    async def subscribe(self, name: str = "main", **options: Any) -> dict[str, Any]:
        body = {"account": self.account, "url": self.subscriber.url(name), "events": EVENTS, **options}
        sub: dict[str, Any] = await self.relay.call("POST", "/v1/subscriptions", body, expect=201)
        self.subscriber.secrets[name] = sub["secret"]
        self.subscriptions[name] = sub
        return sub

    async def account_status(self) -> dict[str, Any]:
        return dict((await self.relay.call("GET", f"/v1/accounts/{self.account}", expect=200))["status"])

    async def delivery_of(self, webhook_id: str, name: str = "main") -> dict[str, Any]:
        """The delivery of one event to one subscription, with its attempts."""
        sub = self.subscriptions[name]["id"]
        page = await self.relay.call("GET", f"/v1/deliveries?event_id={webhook_id}&subscription={sub}", expect=200)
        (summary,) = page["items"]
        return dict(await self.relay.call("GET", f"/v1/deliveries/{summary['id']}", expect=200))

    async def count_deliveries(self, status: str, name: str = "main") -> int:
        """How many of a subscription's deliveries have ``status`` (paging through them all)."""
        sub = self.subscriptions[name]["id"]
        total, cursor = 0, ""
        while True:
            page = await self.relay.call(
                "GET", f"/v1/deliveries?subscription={sub}&status={status}&limit=1000{cursor}", expect=200
            )
            total += len(page["items"])
            if not page["next_cursor"]:
                return total
            cursor = f"&cursor={page['next_cursor']}"

    async def wait_for_polls(self, timeout_s: float = 20) -> None:
        """Until the account has been polled successfully since now."""
        since = datetime.now(UTC)

        async def polled() -> bool:
            ok = (await self.account_status()).get("last_success_at")
            return bool(ok) and datetime.fromisoformat(ok) > since

        await wait_for(polled, timeout_s, "a successful poll")


@contextlib.asynccontextmanager
async def fault_rig(
    ledger: Ledger, redis_url: str, logs: Path, *, hints: bool = False, **settings: str
) -> AsyncIterator[Rig]:
    """A sandbox, a subscriber and the relay's processes (not yet started) over ``redis_url``; with ``hints``, the
    relay's public URL is its API's, where the sandbox sends its webhooks."""
    sandbox = await start_sandbox()
    subscriber = Subscriber(ledger)
    await subscriber.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            relay_processes(redis_url, logs, hints=hints, **{**FAST, **settings}) as relay,
        ):
            yield Rig(sandbox, subscriber, relay, ledger, http)
    finally:
        await subscriber.stop()
        await sandbox.close()
