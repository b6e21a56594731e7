"""One poll of one resource of one account: lock the account, read changes, commit events with the cursor.

Polls run as arq jobs on any worker process. A Redis lock per account makes sure one poller at a time works
on an account, across every process; the lock's token fences the commit, so a poller that lost its lock
(paused past the lock's lifetime) cannot write a stale cursor over a newer one.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from subscriptions import keys
from subscriptions.due import DueSet, ms
from subscriptions.errors import LostLease, NotFound
from subscriptions.fence import Fence
from subscriptions.models import RESOURCES, AccountRecord
from subscriptions.queue import DeliveryQueue
from subscriptions.store import Store
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError
from workers.brightpearl.search import MAX_PAGE_SIZE
from workers.brightpearl.timestamps import format_utc, from_ms
from workers.budget import Priority, RequestBudget
from workers.context import PollContext
from workers.detectors import DETECTORS, Detector
from workers.metrics import Metrics
from workers.plan import effective_intervals, next_due_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    overlap_s: float = 60.0
    budget_per_minute: int = 100
    lease_s: float = 10.0  # a poll's claim and lock last this long unless renewed; a dead poller's end this fast
    auth_failure_backoff_s: float = 60.0
    busy_retry_s: float = 1.0
    page_size: int = MAX_PAGE_SIZE
    sweep_interval_s: float = 3600.0


def client_for(
    session: aiohttp.ClientSession,
    account: AccountRecord,
    budget: RequestBudget | None,
    page_size: int = MAX_PAGE_SIZE,
    priority: Priority = "high",
) -> BrightpearlClient:
    """A Brightpearl client for a stored account."""
    credentials = Credentials(account.base_url, account.app_ref, account.token, account.auth)
    return BrightpearlClient(session, credentials, budget=budget, page_size=page_size, priority=priority)


COST_SMOOTHING = 0.3
PRIORITIES: dict[str, Priority] = {"orders": "high"}  # the rest "normal"; the stock sweep "low"


class Poller:
    """Runs polls; one per process, shared by its poll jobs."""

    def __init__(
        self,
        store: Store,
        outbox: DeliveryQueue,
        redis: "Redis",
        session: aiohttp.ClientSession,
        policy: PollPolicy,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        on_deliveries: Callable[[], None],
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.redis = redis
        self.polls = DueSet(redis, keys.POLLS)
        self.session = session
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.on_deliveries = on_deliveries

    def budget(self, code: str) -> RequestBudget:
        return RequestBudget(
            self.redis, code, self.policy.budget_per_minute, now_ms=lambda: int(self.clock().timestamp() * 1000)
        )

    async def poll(self, code: str) -> None:
        """Poll the due resources of one account, then schedule the account's next poll."""
        token = secrets.token_hex(16)
        lock = self.redis.lock(keys.poll_lock(code), timeout=self.policy.lease_s, blocking=False)
        if not await lock.acquire(token=token):
            # another poller is on this account (its poll outlived the claim's lease): leave it to that one
            log.debug(
                "poll of %s: another poller holds the account, trying again in %s s", code, self.policy.busy_retry_s
            )
            await self.polls.schedule(
                [code], due=self.clock() + timedelta(seconds=self.policy.busy_retry_s), only_existing=True
            )
            return
        keeper = asyncio.create_task(self._keep(lock, code))
        try:
            await self._poll_locked(code, Fence(keys.poll_lock(code), token))
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            with contextlib.suppress(LockError):
                await lock.release()

    async def _keep(self, lock: Lock, code: str) -> None:
        """Renew the lock and the poll's claim while the poll runs."""
        while True:
            await asyncio.sleep(self.policy.lease_s / 3)
            await lock.reacquire()
            await self.polls.schedule(
                [code], due=self.clock() + timedelta(seconds=self.policy.lease_s), only_existing=True
            )

    async def _poll_locked(self, code: str, fence: Fence) -> None:
        try:
            account = await self.store.get_account(code)
        except NotFound:
            await self.polls.remove([code])
            return
        watched = [r for r in RESOURCES if r in account.resources and r in DETECTORS]
        dues = await self.store.resource_dues(code)
        status = await self.store.account_status(code)
        costs: dict[str, float] = {
            r: float(status[f"{r}:requests_per_poll"]) for r in watched if status.get(f"{r}:requests_per_poll")
        }
        intervals = effective_intervals(account.intervals_s(watched), self.policy.budget_per_minute, costs)
        await self.store.update_account_status(
            code, {f"{r}:effective_interval_s": str(i) for r, i in intervals.items()}
        )
        for resource in watched:  # in priority order: orders first
            now_ms, due_ms = ms(self.clock()), dues.get(resource, 0)
            if due_ms > now_ms:
                continue
            dues[resource] = next_due_ms(due_ms, now_ms, int(intervals[resource] * 1000))
            outcome = await self._poll_resource(account, resource, DETECTORS[resource], fence, costs.get(resource))
            if outcome == "lost":
                return
            if outcome == "unauthorized":  # a person must act: no use asking every second
                backoff = timedelta(seconds=max(account.poll_interval_s, self.policy.auth_failure_backoff_s))
                dues = dict.fromkeys(watched, ms(self.clock() + backoff))
                break
        await self.store.set_resource_dues(code, {r: dues.get(r, 0) for r in watched})
        upcoming = [dues.get(r, 0) for r in watched]
        fallback = self.clock() + timedelta(seconds=account.poll_interval_s)
        await self.polls.schedule([code], due=from_ms(min(upcoming)) if upcoming else fallback, only_existing=True)

    async def _poll_resource(
        self, account: AccountRecord, resource: str, detector: Detector, fence: Fence, cost: float | None
    ) -> Literal["ok", "error", "unauthorized", "lost"]:
        """Poll one resource, recording the outcome in the account's status and the metrics."""
        started = self.clock()
        budget = self.budget(account.code)
        client = client_for(self.session, account, budget, self.policy.page_size, PRIORITIES.get(resource, "normal"))
        sweep_client = client_for(self.session, account, budget, self.policy.page_size, "low")
        status = {"last_poll_at": format_utc(started), f"{resource}:last_poll_at": format_utc(started)}
        outcome: Literal["ok", "error", "unauthorized", "lost"] = "ok"
        ctx = PollContext(
            client,
            account,
            self.redis,
            self.store,
            self.outbox,
            fence,
            int(self.policy.overlap_s * 1000),
            self.clock,
            self.metrics,
            self.on_deliveries,
            budget,
            sweep_client,
            self.policy.sweep_interval_s,
        )
        try:
            await detector(ctx)
            status |= {
                "last_success_at": format_utc(started),
                f"{resource}:caught_up_at": format_utc(started),
                "last_error": "",
            }
        except LostLease:
            log.warning("poll of %s lost its lock; another poller carries on", account.code)
            outcome = "lost"
        except BrightpearlError as error:
            log.warning("poll of %s %s failed: %s", account.code, resource, error)
            status |= {"last_error": str(error), "last_error_at": format_utc(self.clock())}
            outcome = "unauthorized" if isinstance(error, AuthenticationFailed) else "error"
        finally:
            requests = client.requests_made + sweep_client.requests_made
            self.metrics.brightpearl_requests.labels(resource).inc(requests)
            self.metrics.brightpearl_throttles.inc(client.throttles_met + sweep_client.throttles_met)
        # a running average of what a poll of this resource costs, for planning the intervals
        average = requests if cost is None else COST_SMOOTHING * requests + (1 - COST_SMOOTHING) * cost
        status[f"{resource}:requests_per_poll"] = f"{average:.2f}"
        self.metrics.polls.labels(resource, outcome).inc()
        if outcome != "lost":
            await self.store.update_account_status(account.code, status)
        return outcome
