"""One poll of one account: read each due resource's changes, commit events with the cursor, plan the next poll.

Polls run as arq jobs on any worker process, one job for each claim of an account's poll
(``subscriptions.store.polls``). The claim is the poll's one owner: the job renews its lease while it works, and its
token fences every commit, so a poller that lost its claim (paused past the lease) cannot write a stale cursor
over a newer one, nor the account's plan.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

import aiohttp
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenKeyError
from subscriptions.core.errors import LostLease, NotFound
from subscriptions.core.models import RESOURCES, AccountRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.polls import Claim, PollPlan, Polls
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError
from workers.brightpearl.search import MAX_PAGE_SIZE
from workers.brightpearl.timestamps import format_utc
from workers.budget import Budgets, Priority, RequestBudget
from workers.context import PollContext
from workers.detectors import DETECTORS, Detector
from workers.metrics import Metrics
from workers.plan import average_cost, effective_intervals, next_due_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    overlap_s: float = 60.0
    budget_per_minute: int = 100
    lease_s: float = 10.0  # a poll's claim lasts this long unless renewed; a dead poller's ends this fast
    auth_failure_backoff_s: float = 60.0
    page_size: int = MAX_PAGE_SIZE
    sweep_interval_s: float = 3600.0
    brightpearl_timeout_s: float = 30.0  # RELAY_BRIGHTPEARL_TIMEOUT_S: one request's longest wait
    status_sweep_interval_s: float = 300.0


def client_for(
    session: aiohttp.ClientSession,
    account: AccountRecord,
    budget: RequestBudget | None,
    page_size: int = MAX_PAGE_SIZE,
    priority: Priority = "high",
    *,
    timeout_s: float = 30.0,
) -> BrightpearlClient:
    """A Brightpearl client for a stored account."""
    credentials = Credentials(account.base_url, account.app_ref, account.token, account.auth)
    return BrightpearlClient(
        session, credentials, budget=budget, page_size=page_size, priority=priority, timeout_s=timeout_s
    )


MAX_DROPPED_SHOWN = 20  # ids a lane's status lists of its last drops

PRIORITIES: dict[str, Priority] = {"orders": "high"}  # the rest "normal"; the stock sweep "low"


class Poller:
    """Runs polls; one per process, shared by its poll jobs."""

    def __init__(
        self,
        store: Store,
        queue: DeliveryQueue,
        redis: "Redis",
        session: aiohttp.ClientSession,
        policy: PollPolicy,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        on_deliveries: Callable[[], None],
    ) -> None:
        self.store = store
        self.queue = queue
        self.redis = redis
        self.polls = Polls(redis)
        self.session = session
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.on_deliveries = on_deliveries

    @property
    def budgets(self) -> Budgets:
        """The accounts' request budgets, at the policy's requests a minute."""
        return Budgets(self.redis, self.policy.budget_per_minute, self.clock)

    async def poll(self, claim: Claim) -> None:
        """Poll the due resources of the account ``claim`` took, then schedule the account's next poll; nothing,
        if the claim was taken over before the job started (another poller has the account)."""
        if not await self._renew(claim):
            log.debug("poll of %s: its claim was taken over; the poller holding it carries on", claim.code)
            return
        keeper = asyncio.create_task(self._keep(claim))
        try:
            await self._poll_claimed(claim)
        except TokenKeyError as error:  # RELAY_ENCRYPTION_KEY cannot decrypt the account's token: a person must act
            await self._report_unreadable_token(claim, error)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def poll_now(self, code: str) -> None:
        """Poll an account now, every watched resource made due first, claimed as the scheduler claims it (tests
        and benchmarks run polls by hand); nothing if a poll of it is under way."""
        plan = await self.polls.plan(code)
        now_ms = ms(self.clock())
        await self.polls.save(code, plan.model_copy(update={"due_ms": {}}), idle_ms=now_ms, claim=None)
        lease_ms = int(self.policy.lease_s * 1000)
        for claim in await self.polls.claim(now_ms=now_ms, lease_ms=lease_ms, limit=1, among=[code]):
            await self.poll(claim)

    async def _renew(self, claim: Claim) -> bool:
        return await self.polls.renew(claim, until_ms=ms(self.clock()) + int(self.policy.lease_s * 1000))

    async def _keep(self, claim: Claim) -> None:
        """Renew the claim's lease while the poll runs, until it is found taken over."""
        while True:
            await asyncio.sleep(self.policy.lease_s / 3)
            if not await self._renew(claim):
                log.warning("poll of %s lost its claim; its writes are refused from now on", claim.code)
                return

    async def _poll_claimed(self, claim: Claim) -> None:
        code = claim.code
        try:
            account = await self.store.get_account(code)
        except NotFound:
            await self.polls.remove(code)
            return
        watched = [r for r in RESOURCES if r in account.resources and r in DETECTORS]
        plan = await self.polls.plan(code)
        plan.interval_s = effective_intervals(
            account.intervals_s(watched), self.policy.budget_per_minute, plan.requests_per_poll
        )
        due: dict[str, int] = {r: plan.due_ms.get(r, 0) for r in watched}
        for resource in watched:  # in priority order: orders first
            now_ms = ms(self.clock())
            if due[resource] > now_ms:
                continue
            due[resource] = next_due_ms(due[resource], now_ms, int(plan.interval_s[resource] * 1000))
            outcome = await self._poll_resource(account, resource, DETECTORS[resource], claim, plan)
            if outcome == "lost":
                return
            if outcome == "unauthorized":  # a person must act: no use asking every second
                backoff = timedelta(seconds=max(account.poll_interval_s, self.policy.auth_failure_backoff_s))
                due = dict.fromkeys(watched, ms(self.clock() + backoff))
                break
        plan.due_ms = due
        idle_ms = ms(self.clock() + timedelta(seconds=account.poll_interval_s))
        if not await self.polls.save(code, plan, idle_ms=idle_ms, claim=claim):
            log.warning("poll of %s lost its claim before it ended; the poller holding it schedules it", code)

    async def _report_unreadable_token(self, claim: Claim, error: TokenKeyError) -> None:
        """Say why an account cannot be polled where the API shows its state, and try it again later, not at once."""
        log.error("poll of %s: %s", claim.code, error)
        now = self.clock()
        await self.polls.report(claim, {"last_error": str(error), "last_error_at": format_utc(now)})
        retry_ms = ms(now + timedelta(seconds=self.policy.auth_failure_backoff_s))
        plan = (await self.polls.plan(claim.code)).postponed(retry_ms)
        await self.polls.save(claim.code, plan, idle_ms=retry_ms, claim=claim)

    async def _lane_error(self, code: str, resource: str, error: BrightpearlError) -> dict[str, str]:
        """The status fields of a lane's failed poll: its error, its kind, when, and since when the lane has
        failed without a success between (kept from the run's first error; a success clears it)."""
        at = format_utc(self.clock())
        since = await cast(
            Awaitable[str | None], self.redis.hget(keyspace.account_status(code), f"{resource}:error_since")
        )
        fields = {
            "last_error": str(error),
            "last_error_at": at,
            f"{resource}:last_error": str(error),
            f"{resource}:last_error_kind": error.kind,
            f"{resource}:last_error_at": at,
        }
        if not since:
            fields[f"{resource}:error_since"] = at
        return fields

    async def _lane_dropped(self, code: str, resource: str, dropped: list[int]) -> dict[str, str]:
        """The status fields of ids Brightpearl refused alone: how many so far, the last ones, when."""
        before = await cast(
            Awaitable[str | None], self.redis.hget(keyspace.account_status(code), f"{resource}:dropped_ids")
        )
        return {
            f"{resource}:dropped_ids": str(int(before or 0) + len(dropped)),
            f"{resource}:last_dropped_ids": ",".join(map(str, sorted(set(dropped))[:MAX_DROPPED_SHOWN])),
            f"{resource}:last_dropped_at": format_utc(self.clock()),
        }

    async def _poll_resource(
        self, account: AccountRecord, resource: str, detector: Detector, claim: Claim, plan: PollPlan
    ) -> Literal["ok", "error", "unauthorized", "lost"]:
        """Poll one resource, recording the outcome in the account's status and the metrics, and what the poll
        cost in ``plan``."""
        started = self.clock()
        budget = self.budgets.of(account.code)
        timeout_s = self.policy.brightpearl_timeout_s
        priority = PRIORITIES.get(resource, "normal")
        client = client_for(self.session, account, budget, self.policy.page_size, priority, timeout_s=timeout_s)
        sweep_client = client_for(self.session, account, budget, self.policy.page_size, "low", timeout_s=timeout_s)
        status = {"last_poll_at": format_utc(started), f"{resource}:last_poll_at": format_utc(started)}
        outcome: Literal["ok", "error", "unauthorized", "lost"] = "ok"
        ctx = PollContext(
            client,
            account,
            self.redis,
            self.store,
            self.queue,
            claim.fence,
            int(self.policy.overlap_s * 1000),
            self.clock,
            self.metrics,
            self.on_deliveries,
            budget,
            sweep_client,
            self.policy.sweep_interval_s,
            self.policy.status_sweep_interval_s,
        )
        try:
            await detector(ctx)
            status |= {
                "last_success_at": format_utc(started),
                f"{resource}:caught_up_at": format_utc(started),
                "last_error": "",
                f"{resource}:error_since": "",
            }
        except LostLease:
            log.warning("poll of %s lost its claim; another poller carries on", account.code)
            outcome = "lost"
        except BrightpearlError as error:
            log.warning("poll of %s %s failed (%s): %s", account.code, resource, error.kind, error)
            status |= await self._lane_error(account.code, resource, error)
            self.metrics.brightpearl_errors.labels(resource, error.kind).inc()
            outcome = "unauthorized" if isinstance(error, AuthenticationFailed) else "error"
        finally:
            requests = client.requests_made + sweep_client.requests_made
            self.metrics.brightpearl_requests.labels(resource).inc(requests)
            self.metrics.brightpearl_throttles.inc(client.throttles_met + sweep_client.throttles_met)
        dropped = client.dropped_ids + sweep_client.dropped_ids
        if dropped:
            self.metrics.brightpearl_dropped_ids.labels(resource).inc(len(dropped))
            status |= await self._lane_dropped(account.code, resource, dropped)
        plan.requests_per_poll[resource] = average_cost(plan.requests_per_poll.get(resource), requests)
        self.metrics.polls.labels(resource, outcome).inc()
        if outcome != "lost":
            await self.polls.report(claim, status)
        return outcome
