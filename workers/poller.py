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

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from subscriptions import keys
from subscriptions.due import DueSet
from subscriptions.errors import NotFound
from subscriptions.models import AccountRecord
from subscriptions.outbox import Fence, LostLease, NewEvent, Outbox
from subscriptions.store import Store
from workers.brightpearl.client import BrightpearlClient, Credentials
from workers.brightpearl.errors import AuthenticationFailed, BrightpearlError
from workers.brightpearl.search import MAX_PAGE_SIZE
from workers.brightpearl.timestamps import format_utc
from workers.budget import RequestBudget
from workers.cursor import CreationCursor
from workers.metrics import Metrics
from workers.orders import orders_baseline, poll_created_orders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    overlap_s: float = 60.0
    budget_per_minute: int = 100
    lease_s: float = 10.0  # a poll's claim and lock last this long unless renewed; a dead poller's end this fast
    auth_failure_backoff_s: float = 60.0
    busy_retry_s: float = 1.0
    page_size: int = MAX_PAGE_SIZE


def client_for(
    session: aiohttp.ClientSession,
    account: AccountRecord,
    budget: RequestBudget | None,
    page_size: int = MAX_PAGE_SIZE,
) -> BrightpearlClient:
    """A Brightpearl client for a stored account."""
    credentials = Credentials(account.base_url, account.app_ref, account.token, account.auth)
    return BrightpearlClient(session, credentials, budget=budget, page_size=page_size)


class Poller:
    """Runs polls; one per process, shared by its poll jobs."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
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

    async def poll(self, member: str) -> None:
        """Poll ``{account}:{resource}`` once, then schedule its next poll."""
        code, _, resource = member.partition(":")
        token = secrets.token_hex(16)
        lock = self.redis.lock(keys.poll_lock(code), timeout=self.policy.lease_s, blocking=False)
        if not await lock.acquire(token=token):
            # another resource of this account is being polled: come back shortly
            await self.polls.schedule(
                [member], due=self.clock() + timedelta(seconds=self.policy.busy_retry_s), only_existing=True
            )
            return
        keeper = asyncio.create_task(self._keep(lock, member))
        try:
            await self._poll_locked(code, resource, member, Fence(keys.poll_lock(code), token))
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            with contextlib.suppress(LockError):
                await lock.release()

    async def _keep(self, lock: Lock, member: str) -> None:
        """Renew the lock and the poll's claim while the poll runs."""
        while True:
            await asyncio.sleep(self.policy.lease_s / 3)
            await lock.reacquire()
            await self.polls.schedule(
                [member], due=self.clock() + timedelta(seconds=self.policy.lease_s), only_existing=True
            )

    async def _poll_locked(self, code: str, resource: str, member: str, fence: Fence) -> None:
        try:
            account = await self.store.get_account(code)
        except NotFound:
            await self.polls.remove([member])
            return
        if resource not in account.resources:
            await self.polls.remove([member])
            return
        started = self.clock()
        client = client_for(self.session, account, self.budget(code), self.policy.page_size)
        next_due = started + timedelta(seconds=account.poll_interval_s)
        status = {"last_poll_at": format_utc(started), f"{resource}:last_poll_at": format_utc(started)}
        try:
            if resource == "orders":
                await self._poll_orders(client, account, fence)
            # the other resources are detected by the pollers of a later issue; their cursors wait
            status |= {
                "last_success_at": format_utc(started),
                f"{resource}:caught_up_at": format_utc(started),
                "last_error": "",
            }
            self.metrics.polls.labels(resource, "ok").inc()
        except LostLease:
            log.warning("poll of %s lost its lock; another poller carries on", member)
            self.metrics.polls.labels(resource, "lost_lock").inc()
            return
        except BrightpearlError as error:
            log.warning("poll of %s failed: %s", member, error)
            status |= {"last_error": str(error), "last_error_at": format_utc(self.clock())}
            self.metrics.polls.labels(resource, "error").inc()
            if isinstance(error, AuthenticationFailed):
                next_due = self.clock() + timedelta(
                    seconds=max(account.poll_interval_s, self.policy.auth_failure_backoff_s)
                )
        finally:
            self.metrics.brightpearl_requests.labels(resource).inc(client.requests_made)
        await self.store.update_account_status(code, status)
        await self.polls.schedule([member], due=next_due, only_existing=True)

    async def _poll_orders(self, client: BrightpearlClient, account: AccountRecord, fence: Fence) -> None:
        cursor_key = keys.cursor(account.code, "orders")

        async def commit(events: list[NewEvent], cursor: CreationCursor) -> None:
            def write_cursor(pipe: Pipeline) -> None:
                pipe.set(cursor_key, cursor.to_json())

            subscriptions = await self.store.account_subscriptions(account.code) if events else []
            created = await self.outbox.commit(events, subscriptions, now=self.clock(), fence=fence, also=write_cursor)
            for event in events:
                self.metrics.events.labels(event.type).inc()
            if created:
                self.on_deliveries()

        stored = await self.store.get_cursor(account.code, "orders")
        if stored is None:  # never baselined (an account stored by an older version): nothing before now is new
            await commit([], await orders_baseline(client))
            return
        await poll_created_orders(
            client,
            account.code,
            CreationCursor.from_json(stored),
            overlap_ms=int(self.policy.overlap_s * 1000),
            commit=commit,
        )
