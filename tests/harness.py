"""Polling against the Brightpearl sandbox (a real HTTP server) and a real Redis, polls run by hand, so each test
can arrange what Brightpearl does between them."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from relay.sandbox.app import SandboxServer, start_sandbox
from subscriptions.core.models import AccountRecord, Resource, SubscriptionRecord
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.detectors import take_baselines
from workers.metrics import Metrics
from workers.poller import Poller, PollPolicy, client_for

ACCOUNT = "acme"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Harness:
    redis: Redis
    sandbox: SandboxServer
    http: aiohttp.ClientSession
    store: Store
    poller: Poller

    @property
    def control(self) -> str:
        return f"{self.sandbox.url}/_sandbox/accounts/acme"

    async def sandbox_call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.control}{path}", json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def create_orders(self, count: int = 1, **extra: Any) -> list[int]:
        return list((await self.sandbox_call("POST", "/orders", {"count": count, **extra}))["ids"])

    async def register(self, code: str = "acme", resources: Sequence[Resource] = ("orders",)) -> None:
        account = self.sandbox.account(code)
        record = AccountRecord(
            code=code,
            base_url=self.sandbox.base_url(code),
            app_ref=account.app_ref,
            auth="account_token",
            token=account.account_token,
            poll_interval_s=1,
            resources=list(resources),
            created_at=now(),
        )
        client = client_for(self.http, record, None)
        baseline = await take_baselines(client, record.resources, sweep_interval_s=3600, now_ms=0)
        await self.store.create_account(record, baseline.positions, 0, baseline.stock_figures)
        await self.store.create_subscription(
            SubscriptionRecord(
                id=f"sub_{code}",
                account=code,
                url="https://example.com/h",
                events=["*"],
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                created_at=now(),
                updated_at=now(),
            )
        )

    async def poll(self, code: str = ACCOUNT) -> None:
        """A poll now: every watched resource is made due first."""
        await self.poller.poll_now(code)

    async def emitted(self, code: str = "acme") -> list[int]:
        """Order ids of the order.created events stored, in the order they were stored."""
        page = await self.store.list_events(limit=1000, cursor=None, account=code, type_="order.created")
        return [int(e.resource_id) for e in reversed(page.items)]  # type: ignore[arg-type]

    async def bodies(self, event_type: str | None = None, code: str = "acme") -> list[dict[str, Any]]:
        """The bodies of the events stored, oldest first."""
        page = await self.store.list_events(limit=1000, cursor=None, account=code, type_=event_type)
        return [json.loads(e.body) for e in reversed(page.items)]

    async def status(self, code: str = "acme") -> dict[str, str]:
        return await self.store.account_status(code)


@pytest.fixture
async def harness(redis_client: Redis) -> AsyncIterator[Harness]:
    sandbox = await start_sandbox()
    async with aiohttp.ClientSession() as http:
        store = Store(redis_client)
        poller = Poller(
            store,
            DeliveryQueue(redis_client),
            redis_client,
            http,
            PollPolicy(overlap_s=60, budget_per_minute=200, page_size=7),
            Metrics(),
            clock=now,
            on_deliveries=lambda: None,
        )
        yield Harness(redis_client, sandbox, http, store, poller)
    await sandbox.close()
